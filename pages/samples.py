"""Your samples: the digits you taught the app, to look through, delete and export."""

from __future__ import annotations

import streamlit as st

from digits.app.logic import enlarge
from digits.app.user_store import StoreError, UserStore
from digits.data.mnist import IMAGE_SIDE, N_CLASSES

# Each 28x28 input is shown three times larger, pixels kept square: 84 px, a row of 7 on a phone.
TILE_SCALE = 3
# The newest samples shown at once; a gallery of thousands would slow every rerun.
SHOWN = 120
PICK = "sample-pick-"
FLASH = "samples_flash"
# The picked samples the user pressed Delete for, awaiting a yes.
CONFIRM = "samples_confirm_delete"


def read_wrong(sample) -> bool:
    """Whether the network misread the sample (False when its reading was not recorded)."""
    return sample.prediction is not None and sample.prediction != sample.label


def picked(samples) -> list[int]:
    """Ids of the samples whose tick box is on."""
    return [s.id for s in samples if st.session_state.get(f"{PICK}{s.id}")]


def delete(store: UserStore, ids: list[int]) -> None:
    """Delete the samples `ids` and leave a message for the next run to show."""
    try:
        removed = store.delete(ids)
    except StoreError as exc:
        st.session_state[FLASH] = ("error", str(exc))
        return
    st.session_state.pop(CONFIRM, None)
    for i in ids:
        st.session_state.pop(f"{PICK}{i}", None)
    st.session_state[FLASH] = ("success", f"Deleted {removed} sample{'s' * (removed != 1)}.")


def tile(sample) -> None:
    """One sample: its 28x28 input, what it is, what the network read, and a tick box."""
    with st.container(border=True, width="content", gap="small"):
        st.image(enlarge(sample.image, TILE_SCALE), width=IMAGE_SIDE * TILE_SCALE)
        read = "" if sample.prediction is None else f" · read {sample.prediction}"
        text = f"**{sample.label}**{read}"
        st.markdown(
            f":red[{text}]" if read_wrong(sample) else text, help=f"#{sample.id}, {sample.created}"
        )
        st.checkbox("Pick", key=f"{PICK}{sample.id}")


def introduction() -> None:
    """The title, what the page keeps, and the message left by the last delete."""
    st.title("Your samples")
    st.write(
        "Each time you answer **Right** or **Wrong, it was…** under a prediction, your drawing "
        "is kept here with its true digit. Fine-tune the network on them on the Train page."
    )
    flash = st.session_state.pop(FLASH, None)
    if flash is not None:
        getattr(st, flash[0])(flash[1])


def summary(samples) -> None:
    """How many samples there are, how many were read wrong, and how many of each digit."""
    wrong = sum(map(read_wrong, samples))
    with st.container(horizontal=True):
        st.metric("Samples", len(samples))
        st.metric("Read wrong", wrong)
    counts = [sum(s.label == d for s in samples) for d in range(N_CLASSES)]
    st.caption("Per digit: " + ", ".join(f"{d}: {n}" for d, n in enumerate(counts) if n))


def shown_samples(samples) -> list:
    """The filter control, and the newest samples it lets through, at most SHOWN."""
    view = st.segmented_control(
        "Show", ["All", "Read wrong"], default="All", key="samples-view", width="content"
    )
    shown = [s for s in samples if view != "Read wrong" or read_wrong(s)]
    shown = shown[::-1][:SHOWN]  # newest first
    if len(shown) == SHOWN:
        st.caption(f"The newest {SHOWN} are shown; the export has them all.")
    return shown


def confirm_delete(store: UserStore, ids: list[int]) -> None:
    """Ask once more before deleting: a deleted sample cannot be brought back."""
    n = len(ids)
    with st.container(border=True):
        st.warning(
            f"Delete {n} sample{'s' * (n != 1)} for good? A deleted sample cannot be brought back.",
            icon=":material/warning:",
        )
        with st.container(horizontal=True):
            st.button(
                f"Yes, delete {n}", type="primary", on_click=delete, args=(store, ids),
                icon=":material/delete:",
            )  # fmt: skip
            st.button("Cancel", on_click=st.session_state.pop, args=(CONFIRM, None))


def actions(store: UserStore, samples) -> None:
    """The buttons to delete the picked samples (after a confirmation) and to export them all."""
    ids = picked(samples)
    if ids and st.session_state.get(CONFIRM) == ids:
        confirm_delete(store, ids)
        return
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button(
            f"Delete {len(ids)} picked" if ids else "Delete picked",
            icon=":material/delete:",
            disabled=not ids,
            on_click=st.session_state.__setitem__,
            args=(CONFIRM, ids),
        )
        try:
            archive = store.export_zip()
        except StoreError as exc:
            st.error(str(exc))
        else:
            st.download_button(
                "Export all (zip of PNGs + CSV)",
                archive,
                file_name="digit-samples.zip",
                mime="application/zip",
                icon=":material/download:",
                on_click="ignore",
            )


def main() -> None:
    """The page: a summary, the filter and actions, then a gallery of the samples."""
    introduction()
    store = UserStore()
    try:
        samples = store.samples()
    except StoreError as exc:
        st.error(str(exc))
        return
    if not samples:
        st.info(
            "No samples yet: draw a digit on the main page and answer Right or Wrong under its "
            "prediction."
        )
        return

    summary(samples)
    shown = shown_samples(samples)
    actions(store, samples)
    with st.container(horizontal=True, gap="small"):
        for sample in shown:
            tile(sample)


main()
