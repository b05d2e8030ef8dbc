"""The main page: draw, upload or pick a digit and watch the network read it."""

from __future__ import annotations

import hashlib

import altair as alt
import numpy as np
import streamlit as st
from PIL import Image

from canvas import drawing_pad
from digits.app.logic import (
    EMPTY_PROMPT,
    NETWORK_VIEW_SCALE,
    NOT_A_DIGIT,
    CurrentInput,
    Reading,
    enlarge,
    mnist_input,
    network_view,
    preview,
    probability_frame,
    read_digit,
    stage_gallery,
    with_article,
)
from digits.app.number import DigitReading, annotated, number_text, read_number
from digits.app.user_store import StoreError, UserStore, original_png
from digits.data.mnist import N_CLASSES, DatasetError
from digits.data.pad import CANVAS_SIDE, NUMBER_PAD_HEIGHT, NUMBER_PAD_WIDTH, NUMBER_PEN_WIDTH
from digits.data.preprocess import FILE_EXTENSIONS, ImageError, load_image, preprocess
from network import Classifier
from pages.shared import (
    CURRENT_INPUT,
    NUMBER_PAD,
    OTHER_COLOUR,
    SAMPLE_KEY,
    TAB_DRAW,
    TAB_KEY,
    TAB_MNIST,
    TAB_NUMBER,
    TAB_UPLOAD,
    TOP_COLOUR,
    UPLOAD_KEY,
    classifier_or_stop,
    mnist_test_set,
)

# Each digit's bar gets this many pixels of height, so all ten labels fit on the axis.
BAR_STEP = 20
# What the number pad asks for when empty.
NUMBER_PROMPT = "Write a number of up to about ten digits on the pad, side by side."
# Each digit's 28x28 input on a number's card, enlarged to fit the card.
NUMBER_VIEW_SCALE = 3


def probability_chart(proba: np.ndarray) -> alt.Chart:
    """A horizontal bar per digit, 0 at the top, the most probable one highlighted."""
    return (
        alt.Chart(probability_frame(proba))
        .mark_bar()
        .encode(
            x=alt.X(
                "probability:Q",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%", title="probability"),
            ),
            y=alt.Y("digit:N", sort=None, title=None),
            color=alt.when(alt.datum.top)
            .then(alt.value(TOP_COLOUR))
            .otherwise(alt.value(OTHER_COLOUR)),
            tooltip=["digit:N", alt.Tooltip("probability:Q", format=".1%")],
        )
        .properties(height=alt.Step(BAR_STEP))
    )


def show_reading(reading: Reading, key: str, with_view: bool = True, original=None) -> None:
    """The prediction, its confidence, all ten probabilities and what the network saw.

    `key` keeps the widgets of several readings on one page apart; `with_view` False leaves
    out the network's view, for an input the page already shows as it is. With the user's
    `original` (canvas RGBA array or uploaded image), the user can say whether it was right.
    """
    if reading.proba is not None:
        # A horizontal container, unlike columns, keeps the two side by side on a phone.
        with st.container(horizontal=True):
            if reading.status == NOT_A_DIGIT:
                st.metric("Prediction", "not a digit")
                st.metric("Leans to", f"{reading.digit} ({reading.confidence_text()})")
            else:
                st.metric("Prediction", str(reading.digit))
                st.metric("Confidence", reading.confidence_text())
        if not reading.is_sure:
            st.warning(reading.message())
        if original is not None:
            teach_buttons(reading, original, key)
        st.altair_chart(probability_chart(reading.proba), width="stretch")
        if with_view:
            st.markdown("**What the network sees**")
            view = network_view(reading.preprocessed)
            # At its own width, so the browser does not resample the crisp pixels.
            st.image(
                view,
                caption=f"28x28 pixels, enlarged {NETWORK_VIEW_SCALE}x",
                width=view.width,
            )
    else:
        st.warning(reading.message())
    stages = reading.preprocessed.stages
    if len(stages) > 1 and st.toggle("Show the preprocessing steps", key=f"{key}-steps"):
        # A wrapping row rather than columns, which would stack one per line on a phone.
        with st.container(horizontal=True):
            for name, image in stage_gallery(stages):
                st.image(image, caption=name, width=image.width)


def _digit_image(reading: Reading) -> np.ndarray:
    """The network input (28, 28) of a reading that found a digit."""
    image = reading.preprocessed.image
    assert image is not None, "the teach buttons only show for a reading with a digit"
    return image


def _save_answer(reading: Reading, original, key: str, right: bool) -> None:
    """Store the user's answer as a sample; remembers it (or the error) for teach_buttons."""
    label = reading.digit if right else st.session_state[f"{key}-true-{reading.digit}"]
    image = _digit_image(reading)
    digest = hashlib.sha1(image.tobytes()).hexdigest()
    try:
        UserStore().add(
            label,
            image,
            original_png(original),
            prediction=reading.digit,
            source=key,
        )
    except StoreError as exc:
        st.session_state[f"{key}-taught"] = (digest, None, str(exc))
    else:
        st.session_state[f"{key}-taught"] = (digest, label, "")


def teach_buttons(reading: Reading, original, key: str) -> None:
    """Buttons "Right" and "Wrong, it was N" under a prediction; an answer becomes a sample."""
    digest = hashlib.sha1(_digit_image(reading).tobytes()).hexdigest()
    taught = st.session_state.get(f"{key}-taught")
    if taught is not None and taught[0] == digest:
        if taught[2]:
            st.error(taught[2])
        else:
            st.success(
                f"Saved as {with_article(taught[1])} in your samples: fine-tuning on them "
                "teaches the network your handwriting.",
                icon=":material/school:",
            )
        return
    others = [d for d in range(N_CLASSES) if d != reading.digit]
    args = (reading, original, key)
    with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
        st.button(
            "Right",
            key=f"{key}-right",
            icon=":material/check:",
            on_click=_save_answer,
            args=(*args, True),
        )
        true = st.session_state.get(f"{key}-true-{reading.digit}")
        st.button(
            "Wrong" if true is None else f"Wrong, it was {true}",
            key=f"{key}-wrong",
            icon=":material/close:",
            on_click=_save_answer,
            args=(*args, False),
            disabled=true is None,
            help="Pick the right digit beside it first." if true is None else None,
        )
        # Keyed by the prediction, so a new prediction brings new choices; empty until the user
        # picks, as a guessed digit would turn one stray click into a wrongly labelled sample.
        st.selectbox(
            "The right digit",
            others,
            index=None,
            placeholder="It was…",
            key=f"{key}-true-{reading.digit}",
            label_visibility="collapsed",
            width=110,
        )


def draw_tab(classifier: Classifier, is_open: bool) -> CurrentInput | None:
    """The canvas and, beside it, the reading of the drawing after every stroke."""
    pad, result = st.columns([1, 1.2])
    with pad:
        drawing = drawing_pad()  # always rendered, so the drawing survives a tab switch
    if not is_open:
        return None
    with result:
        if drawing is None:
            st.info(EMPTY_PROMPT)
            return None
        reading = read_digit(classifier, preprocess(drawing))
        show_reading(reading, key="canvas", original=drawing)
    return CurrentInput("canvas", reading.preprocessed)


def _forget_removed_upload() -> None:
    """The user took the file out of the uploader: stop showing it."""
    if st.session_state.get("upload") is None:
        st.session_state.pop(UPLOAD_KEY, None)


def upload_tab(classifier: Classifier, is_open: bool) -> CurrentInput | None:
    """A file uploader for a photo or scan of one digit, and its reading."""
    upload = st.file_uploader(
        "A photo, scan or screenshot of one digit",
        type=list(FILE_EXTENSIONS),
        key="upload",
        on_change=_forget_removed_upload,
    )
    if upload is not None:
        st.session_state[UPLOAD_KEY] = (upload.name, upload.getvalue())
    kept = st.session_state.get(UPLOAD_KEY)
    if kept is None or not is_open:
        return None
    name, data = kept
    if upload is None:  # back from another page, which empties the uploader
        with st.container(horizontal=True, vertical_alignment="center"):
            st.caption(f"Showing `{name}`, uploaded before; drop another file to replace it.")
            st.button("Remove", icon=":material/close:", on_click=st.session_state.pop,
                      args=(UPLOAD_KEY, None))  # fmt: skip
    try:
        image = load_image(data)
    except ImageError as exc:
        st.error(str(exc))
        return None
    reading = read_digit(classifier, preprocess(image))
    original, result = st.columns([1, 1.2])
    # Framed, so a blank white (or black) image still shows where it is, above its name.
    original.container(border=True, width="content").image(
        preview(image, CANVAS_SIDE), caption=name
    )
    with result:
        show_reading(reading, key="upload", original=image)
    return CurrentInput("upload", reading.preprocessed, name=name)


def number_tab(classifier: Classifier, is_open: bool) -> CurrentInput | None:
    """A wide pad (or an upload) for a number of several digits, read digit by digit."""
    drawing = drawing_pad(NUMBER_PAD, NUMBER_PAD_WIDTH, NUMBER_PAD_HEIGHT, NUMBER_PEN_WIDTH)
    upload = st.file_uploader(
        "Or a photo or scan of a number",
        type=list(FILE_EXTENSIONS),
        key="number-upload",
    )
    if not is_open:
        return None
    if upload is not None:
        try:
            image: Image.Image | np.ndarray = load_image(upload.getvalue())
        except ImageError as exc:
            st.error(str(exc))
            return None
        source = ("number-upload", upload.name)
    elif drawing is not None:
        image, source = drawing, ("number", "")
    else:
        st.info(NUMBER_PROMPT)
        return None
    digits = read_number(classifier, image)
    text = number_text(digits)
    if text is None:
        st.warning("No digits found: the pad or image has no strokes that look like digits.")
        return None
    st.metric("Number", text)
    if "?" in text:
        st.warning(
            "A “?” is a piece the network is not sure of, or that is not a digit: write it "
            "again, apart from its neighbours."
        )
    st.image(annotated(image, digits), caption="Each digit found, with its reading")
    show_inputs = st.toggle("Show each digit's 28x28 input", key="number-inputs")
    with st.container(horizontal=True, gap="small"):
        for i, digit in enumerate(digits):
            digit_card(digit, i, source[0], show_inputs)
    # The other pages look inside the first digit read.
    first = next((d for d in digits if d.reading.has_digit), None)
    if first is None:
        return None
    return CurrentInput("number", first.reading.preprocessed, name=source[1])


def digit_card(digit: DigitReading, index: int, source: str, show_input: bool) -> None:
    """One digit of a number: its reading and confidence, its input, and "it was N"."""
    with st.container(border=True, width=110, gap="small"):
        st.markdown(f"**{digit.text}** · {digit.confidence:.0%}")
        if not digit.reading.has_digit:
            st.caption("no digit")
            return
        if show_input:
            view = enlarge(_digit_image(digit.reading), NUMBER_VIEW_SCALE)
            st.image(view, width=view.width)
        key = f"{source}-{index}-{hashlib.sha1(_digit_image(digit.reading).tobytes()).hexdigest()}"
        saved = st.session_state.get(f"{key}-saved")
        if saved is not None:
            if saved[1]:
                st.error(saved[1])
            else:
                st.caption(f"Saved as {with_article(saved[0])}.")
            return
        st.selectbox(
            "It was",
            range(N_CLASSES),
            index=None,
            placeholder="Was",
            key=f"{key}-true",
            label_visibility="collapsed",
        )
        true = st.session_state.get(f"{key}-true")
        st.button(
            "Save",
            key=f"{key}-save",
            on_click=_save_digit,
            args=(digit, key, source),
            disabled=true is None,
            help="Pick the digit it was first." if true is None else "Keep it in your samples.",
        )


def _save_digit(digit: DigitReading, key: str, source: str) -> None:
    """Store one digit of a number with the label the user picked, as a sample."""
    label = st.session_state[f"{key}-true"]
    try:
        UserStore().add(
            label,
            _digit_image(digit.reading),
            original_png(digit.ink),
            prediction=digit.reading.digit,
            source=source,
        )
    except StoreError as exc:
        st.session_state[f"{key}-saved"] = (label, str(exc))
    else:
        st.session_state[f"{key}-saved"] = (label, "")


def mnist_tab(classifier: Classifier, is_open: bool) -> CurrentInput | None:
    """A random MNIST test digit with its true label and the network's reading."""
    picked = st.button("Random MNIST test digit", icon=":material/casino:")
    if not is_open:
        return None
    try:
        images, labels = mnist_test_set()
    except DatasetError as exc:
        st.error(str(exc))
        return None
    if picked:
        st.session_state[SAMPLE_KEY] = int(np.random.default_rng().integers(len(images)))
    index = st.session_state.get(SAMPLE_KEY)
    if index is None:
        st.caption(
            f"Pick one of the {len(images):,} test digits, which the network never trained on."
        )
        return None
    label = int(labels[index])
    reading = read_digit(classifier, mnist_input(images[index]))
    digit, result = st.columns([1, 1.2])
    with digit:
        st.metric("True label", str(label))
        if reading.digit == label:
            st.success("Read right", icon=":material/check:")
        elif reading.digit is not None:
            st.error(f"Read wrong: the network says {reading.digit}", icon=":material/close:")
        # The stored image is the network's input as it is: this is what the network sees.
        view = network_view(reading.preprocessed)
        st.image(
            view,
            caption=f"MNIST test digit #{index}, each pixel enlarged {NETWORK_VIEW_SCALE}x",
            width=view.width,
        )
    with result:
        show_reading(reading, key="mnist", with_view=False)
    return CurrentInput("mnist", reading.preprocessed, name=f"#{index}", label=label)


def main() -> None:
    """The main page: the three ways to give the network a digit, one per tab."""
    st.title("Digit recognizer")
    st.write(
        "Draw a digit and a neural network written from scratch in NumPy reads it after "
        "every stroke."
    )
    classifier = classifier_or_stop()
    tabs = [TAB_DRAW, TAB_NUMBER, TAB_UPLOAD, TAB_MNIST]
    # Rerun on a tab switch, so that `.open` says which tab's input to read and share (with
    # on_change set, tabs track their state: `.open` is True or False, never None).
    draw, number, upload, sample = st.tabs(tabs, key=TAB_KEY, on_change="rerun")
    with draw:
        from_canvas = draw_tab(classifier, bool(draw.open))
    with number:
        from_number = number_tab(classifier, bool(number.open))
    with upload:
        from_upload = upload_tab(classifier, bool(upload.open))
    with sample:
        from_mnist = mnist_tab(classifier, bool(sample.open))
    # At most one is set: only the open tab reads its input.
    st.session_state[CURRENT_INPUT] = from_canvas or from_number or from_upload or from_mnist


main()
