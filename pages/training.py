"""Train: a new network, a search for its settings, or fine-tuning on your samples, shown live.

Runs happen on the server's one TrainingRunner (training_runner.py), each in a process of its
own that the runner looks after from a background thread; this page starts them and, while one
is under way, polls its state twice a second in a fragment. A run's model is saved in the runs
folder and is used by the app only once the user presses "Use this model"; the shipped
model_params.pkl is never written, and one button brings it back.
"""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from digits.app import insights
from digits.app.training_runner import (
    PAGE_EPOCHS,
    TRAINING_SERIES,
    VALIDATION_SERIES,
    RunnerError,
    RunState,
    TrainingRunner,
    finetune_job,
    runs_dir,
    training_job,
    tuning_job,
)
from digits.app.user_store import StoreError, UserStore
from digits.data.mnist import N_CLASSES, Mnist
from digits.training import tuning
from digits.training.evaluation import DrawnCheck, accuracy, predict_proba_batched
from digits.training.finetune import (
    MIN_SAMPLES,
    FinetuneConfig,
    n_held_out,
    needed_to_hold_out,
)
from digits.training.trainer import TrainConfig
from layers import ACTIVATIONS
from model_loader import ModelFileError, load_params
from network import Classifier
from optimizers import OPTIMIZERS
from pages.shared import (
    TRAINING_COLOUR,
    VALIDATION_COLOUR,
    default_story,
    mnist_test_set,
    model_name,
    model_path,
    shipped_model_path,
)

# How often the live panel asks the runner for news while a run is under way.
POLL_SECONDS = 0.5
# While a run is under way the panel reruns every POLL_SECONDS, and a rerun slowed by the
# training makes Streamlit show its own "Running… Stop" beside the panel's Stop (which stops
# only the rerun): the panel's is the one Stop.
ONE_STOP_CSS = "<style>[data-testid='stStatusWidget'] { visibility: hidden; }</style>"
# Drawn test digits a finished run and the model in use are compared on: enough to tell them
# apart, few enough to draw in seconds once per server.
DRAWN_CHECK_SIZE = 500
# Streamlit fits a chart's title, legend and axes into this height as well as its plot: 400
# leaves the plot about 230 px, where 260 left it a strip of 90.
CHART_HEIGHT = 400
CURVE_COLOURS = {TRAINING_SERIES: TRAINING_COLOUR, VALIDATION_SERIES: VALIDATION_COLOUR}
BATCH_SIZES = [32, 64, 128, 256, 512]
# Training images for a run: all of them, or a subset for a quick try.
SUBSETS = {
    "all": None,
    "20,000": 20_000,
    "5,000 (quick)": 5_000,
    "1,000 (a few seconds)": 1_000,
}
SEARCH_SUBSETS = {
    "5,000": 5_000,
    "10,000": 10_000,
    "20,000": 20_000,
    "1,000 (a few seconds)": 1_000,
}
FLASH = "train_flash"
TABS = ["New model", "Search settings", "Fine-tune on your samples"]
TAB = "train-tab"
# The New model form's widgets by session-state key, with their first values. Set here rather
# than in the widgets, so that "Use these settings" may change them.
_d = TrainConfig()
FORM_DEFAULTS = {
    "tr-epochs": PAGE_EPOCHS,
    "tr-batch": _d.batch_size,
    "tr-lr": _d.lr,
    "tr-wd": _d.weight_decay,
    "tr-optimizer": _d.optimizer,
    "tr-hidden": ", ".join(map(str, _d.hidden)),
    "tr-activation": _d.activation,
    "tr-seed": _d.seed,
    "tr-subset": next(iter(SUBSETS)),
    "tr-augment": _d.augment,
    "tr-drawn": _d.drawn,
}


@st.cache_resource(show_spinner=False)
def get_runner(folder: str) -> TrainingRunner:
    """The server's one runner for this runs folder: one run at a time across all sessions."""
    return TrainingRunner(folder)


def parse_hidden(text: str) -> tuple[int, ...]:
    """ "128, 64" -> (128, 64); raises ValueError with a sentence for the user."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(
            "Hidden layers must be positive whole numbers separated by commas, such as 128, 64."
        )
    return tuple(int(p) for p in parts)


def train_form_config() -> TrainConfig:
    """The settings of the New model form, from session state (the form's widgets' keys)."""
    state = st.session_state
    return TrainConfig(
        epochs=int(state["tr-epochs"]),
        batch_size=int(state["tr-batch"]),
        lr=float(state["tr-lr"]),
        weight_decay=float(state["tr-wd"]),
        optimizer=state["tr-optimizer"],
        hidden=parse_hidden(state["tr-hidden"]),
        activation=state["tr-activation"],
        augment=bool(state["tr-augment"]),
        drawn=bool(state["tr-drawn"]),
        seed=int(state["tr-seed"]),
        limit=SUBSETS[state["tr-subset"]],
    )


def start(runner: TrainingRunner, kind: str, job, config: dict) -> None:
    """Start a run and rerun the page (its forms now disabled), or say why it cannot start."""
    try:
        runner.start(kind, job, config)
    except RunnerError as exc:
        st.warning(str(exc))
    else:
        st.rerun()


def model_in_use(runner: TrainingRunner) -> None:
    """The model the app reads now and, for one of the user's runs, the way back to the shipped
    one."""
    path = model_path()
    try:
        params = load_params(path)
    except ModelFileError as exc:
        st.warning(f"The app has no usable model now: {exc}")
    else:
        sizes = "-".join(map(str, params["sizes"]))
        accuracy = params.get("test_accuracy")
        score = f", {accuracy:.2%} on the MNIST test set" if accuracy is not None else ""
        st.caption(
            f"In use: {model_name(path)}, a {sizes} network{score}, trained {trained_when(params)}."
        )
    if path != shipped_model_path():
        st.button(
            "Back to the shipped model",
            icon=":material/undo:",
            on_click=use_shipped,
            args=(runner,),
            help="Your runs stay in the runs folder; you can use any of them again.",
        )


def trained_when(params: dict) -> str:
    """The model file's date, readable: "on 2026-11-22 at 02:29 UTC"."""
    try:
        date = datetime.datetime.fromisoformat(params["date"])
    except (KeyError, TypeError, ValueError):
        return "on an unknown date"
    return date.strftime("on %Y-%m-%d at %H:%M UTC")


def use_shipped(runner: TrainingRunner) -> None:
    runner.use_shipped()
    st.session_state[FLASH] = ("success", f"The app now uses {model_name(model_path())}.")


def use(runner: TrainingRunner, run_file) -> None:
    try:
        runner.use_model(run_file)
    except (RunnerError, ModelFileError) as exc:
        st.session_state[FLASH] = ("error", str(exc))
        return
    st.session_state[FLASH] = (
        "success",
        f"The app now uses {model_name(model_path())}; the shipped model stays as it is, and "
        "“Back to the shipped model” returns to it.",
    )


@st.cache_resource(show_spinner=f"Drawing {DRAWN_CHECK_SIZE} test digits to compare the models on…")
def drawn_check() -> DrawnCheck:
    """Drawn test digits to compare models on, made once per server."""
    images, labels = mnist_test_set()
    no_training = Mnist(images[:0], labels[:0], images, labels)
    return DrawnCheck.make(no_training, DRAWN_CHECK_SIZE)


@st.cache_data(max_entries=16, show_spinner=False)
def model_scores(path: str, mtime_ns: int, size: int) -> dict[str, str]:
    """A model's column of the comparison table; mtime_ns and size only key the cache."""
    params = load_params(path)
    proba = Classifier(params).predict_proba
    images, labels = mnist_test_set()
    on_mnist = accuracy(predict_proba_batched(proba, images), labels)
    return {
        "MNIST test digits": f"{on_mnist:.2%}",
        f"{DRAWN_CHECK_SIZE} drawn test digits": f"{drawn_check().accuracy(proba):.1%}",
        "trained": trained_when(params).removeprefix("on "),
    }


def compare_with_model_in_use(run_file: Path) -> None:
    """The finished run's model beside the one the app uses, on the same test digits."""
    columns = {}
    for title, path in (("in use", model_path()), ("this run", run_file)):
        try:
            columns[title] = model_scores(str(path), *insights.file_version(path))
        except ModelFileError as exc:
            columns[title] = {"MNIST test digits": str(exc)}
    st.table(pd.DataFrame(columns))


def use_settings(trial: tuning.Trial) -> None:
    """Copy a trial's settings into the New model form."""
    st.session_state["tr-lr"] = trial.lr
    st.session_state["tr-wd"] = trial.weight_decay
    st.session_state["tr-epochs"] = trial.epochs
    st.session_state[FLASH] = (
        "success",
        "The New model tab now has the best settings; pick the training images there and start.",
    )


def new_model_form(runner: TrainingRunner, busy: bool) -> None:
    for key, value in FORM_DEFAULTS.items():
        st.session_state.setdefault(key, value)
    story = default_story()
    if story is not None:
        st.caption(
            f"With all training images and the drawn digits, as for the shipped model, a new "
            f"model learns from {story.sentence()}."
        )
    with st.form("train-form", border=False):
        left, right = st.columns(2)
        left.number_input(
            "Epochs", 1, 200, key="tr-epochs",
            help="Passes over all the training images; each takes a few seconds.",
        )  # fmt: skip
        left.selectbox(
            "Batch size", BATCH_SIZES, key="tr-batch",
            help="Images per weight update: larger batches are faster per image, noisier less.",
        )  # fmt: skip
        left.number_input(
            "Learning rate", 0.0001, 1.0, step=0.01, format="%.4f", key="tr-lr",
            help="How far each update moves the weights, at its peak; it then decays to 0.",
        )  # fmt: skip
        left.number_input(
            "Weight decay", 0.0, 0.01, step=1e-4, format="%.5f", key="tr-wd",
            help="Pulls every weight a little towards 0, so no single pixel decides alone.",
        )  # fmt: skip
        left.selectbox(
            "Optimizer", sorted(OPTIMIZERS), key="tr-optimizer",
            help="How gradients become updates: sgd with momentum; rmsprop and adam per weight.",
        )  # fmt: skip
        right.text_input(
            "Hidden layers", key="tr-hidden",
            help="Units in each hidden layer, first to last, between the 784 pixels and 10 digits.",
        )  # fmt: skip
        right.selectbox(
            "Activation", list(ACTIVATIONS), key="tr-activation",
            help="What each hidden unit does to its sum: relu keeps positives, zeroes the rest.",
        )  # fmt: skip
        right.number_input(
            "Seed", 0, 2**31 - 1, key="tr-seed",
            help="Fixes the random start and the shuffling: the same seed trains the same model.",
        )  # fmt: skip
        right.selectbox(
            "Training images",
            list(SUBSETS),
            key="tr-subset",
            help="How many MNIST digits it learns from: a subset is quicker and holds out a "
            "tenth as many for validation.",
        )
        right.checkbox(
            "Augmentation",
            key="tr-augment",
            help="Random turns, slants, shifts and stroke widths, new every epoch.",
        )
        right.checkbox(
            "Drawn digits too",
            key="tr-drawn",
            help="Add the same MNIST digits drawn the way people draw them, as the app reads "
            "them (data/drawn/): the network then misreads fewer of your drawings.",
        )
        submitted = st.form_submit_button(
            "Start training", type="primary", icon=":material/play_arrow:", disabled=busy
        )
    if submitted:
        try:
            config = train_form_config()
        except ValueError as exc:
            st.error(str(exc))
            return
        start(runner, "training", training_job(config), config.to_dict())


def search_form(runner: TrainingRunner, busy: bool) -> None:
    n_settings = len(tuning.candidates(10**6, np.random.default_rng(0)))
    st.caption(
        f"Tries random settings of learning rate, weight decay and epochs (out of {n_settings}), "
        "each a short run scored on the validation images, never the test set. The other "
        "settings come from the New model tab."
    )
    with st.form("search-form", border=False):
        left, right = st.columns(2)
        left.slider(
            "Trials", 2, n_settings, tuning.DEFAULT_TRIALS, key="se-trials",
            help="Short runs to try, each with other settings; the best is offered at the end.",
        )  # fmt: skip
        right.selectbox(
            "Training images per trial", list(SEARCH_SUBSETS), key="se-subset",
            help="Fewer make each trial quicker and its score rougher.",
        )  # fmt: skip
        submitted = st.form_submit_button(
            "Start search", type="primary", icon=":material/search:", disabled=busy
        )
    if submitted:
        try:
            base = dataclasses.replace(
                train_form_config(), limit=SEARCH_SUBSETS[st.session_state["se-subset"]]
            )
        except ValueError as exc:
            st.error(str(exc))
            return
        budget = int(st.session_state["se-trials"])
        start(runner, "search", tuning_job(base, budget), {**base.to_dict(), "trials": budget})


def finetune_form(runner: TrainingRunner, busy: bool) -> None:
    try:
        images, labels = UserStore().arrays()
    except StoreError as exc:
        st.error(str(exc))
        return
    if len(labels) < MIN_SAMPLES:
        st.info(
            f"You have taught the app {len(labels)} digit{'s' * (len(labels) != 1)}; teach it at "
            f"least {MIN_SAMPLES} first: draw on the main page and answer Right or Wrong under "
            "each prediction."
        )
        return
    counts = ", ".join(
        f"{(labels == d).sum()} × {d}" for d in range(N_CLASSES) if (labels == d).any()
    )
    f = FinetuneConfig()
    held, needed = n_held_out(labels, f.holdout), needed_to_hold_out(f.holdout)
    if held:
        holdout = (
            f"{held} of them are held out (about {f.holdout:.0%} of each digit with {needed} or "
            "more) to show how it reads digits of yours it never saw."
        )
    else:
        holdout = (
            f"None can be held out yet: with {needed} samples of one digit, one is kept out to "
            "show how it reads digits of yours it never saw."
        )
    st.caption(
        f"Starts from the model in use and mixes your {len(labels)} samples ({counts}) into "
        f"MNIST's training images, so it learns your hand without forgetting MNIST. {holdout} "
        "It reports how it reads the samples it trained on either way."
    )
    with st.form("finetune-form", border=False):
        left, right = st.columns(2)
        left.number_input(
            "Epochs", 1, 20, f.epochs, key="ft-epochs",
            help="Passes over MNIST with your samples mixed in; more teach your hand harder.",
        )  # fmt: skip
        right.number_input(
            "Learning rate", 0.0001, 0.1, f.lr, 0.001, format="%.4f", key="ft-lr",
            help="Small, so the network adjusts what it knows instead of starting over.",
        )  # fmt: skip
        submitted = st.form_submit_button(
            "Start fine-tuning", type="primary", icon=":material/school:", disabled=busy
        )
    if submitted:
        try:
            params = load_params(model_path())
        except ModelFileError as exc:
            st.error(str(exc))
            return
        config = dataclasses.replace(
            f, epochs=int(st.session_state["ft-epochs"]), lr=float(st.session_state["ft-lr"])
        )
        details = {"finetune": dataclasses.asdict(config), "samples": len(labels),
                   "start_from": str(model_path())}  # fmt: skip
        start(runner, "fine-tuning", finetune_job(params, images, labels, config), details)


def curve_chart(rows: pd.DataFrame, metric: str, epochs: int | None) -> alt.Chart:
    """The training and validation curves of one metric; x spans `epochs` (None: the data)."""
    data = rows[rows["metric"] == metric]
    colour = alt.Color(
        "series:N",
        title=None,
        scale=alt.Scale(domain=list(CURVE_COLOURS), range=list(CURVE_COLOURS.values())),
        legend=alt.Legend(orient="bottom"),
    )
    domain = alt.Undefined if epochs is None else [0, epochs]
    x = alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=domain),
              axis=alt.Axis(tickMinStep=1))  # fmt: skip
    if metric == "loss":
        # The first batches' loss is ten times the last epochs': only a log axis shows both.
        ticks = insights.log_ticks(data["value"])
        y = alt.Y("value:Q", title="loss (log scale)", scale=alt.Scale(type="log"),
                  axis=alt.Axis(format=".2~g", values=ticks or alt.Undefined))  # fmt: skip
    else:
        y = alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False),
                  axis=alt.Axis(format="%"))  # fmt: skip
    lines = alt.Chart(data).mark_line().encode(x=x, y=y, color=colour)
    dots = (
        alt.Chart(data[data["series"] == VALIDATION_SERIES])
        .mark_point(filled=True, size=40)
        .encode(x=x, y=y, color=colour, tooltip=["epoch:Q", alt.Tooltip("value:Q", format=".4f")])
    )
    return (lines + dots).properties(height=CHART_HEIGHT, title=metric.capitalize())


def show_curves(state: RunState) -> None:
    """Loss and accuracy side by side (stacked on a phone)."""
    rows = pd.DataFrame(state.curve_rows(), columns=["epoch", "series", "metric", "value"])
    if rows.empty:
        return
    # While the run is under way the axis spans all its epochs, so the curves grow across it.
    epochs = state.epochs if state.active else None
    with st.container(horizontal=True):
        for metric in ("loss", "accuracy"):
            st.altair_chart(curve_chart(rows, metric, epochs), width="stretch")


def show_trials(state: RunState) -> None:
    if not state.trials:
        return
    table = pd.DataFrame([t.row() for t in state.trials])
    table.index = range(1, len(table) + 1)
    st.dataframe(
        table,
        column_config={
            "lr": st.column_config.NumberColumn("learning rate", format="%g"),
            "weight_decay": st.column_config.NumberColumn("weight decay", format="%g"),
            "val_accuracy": st.column_config.ProgressColumn(
                "validation accuracy", format="percent", min_value=0.0, max_value=1.0
            ),
            "seconds": st.column_config.NumberColumn("seconds", format="%.1f"),
        },
    )


def live_run(runner: TrainingRunner) -> None:
    """The run under way: progress, Stop, live curves; polled by its fragment."""
    state = runner.snapshot()
    if not state.active:
        st.rerun()  # the whole page: polling stops and the result gets its buttons
    st.subheader(f"{state.kind.capitalize()} under way")
    text = f"{state.message} · {state.elapsed:.0f} s"
    st.progress(state.progress, text=text)
    if state.status == "stopping":
        st.caption("Stopping after the current step…")
    else:
        st.button("Stop", icon=":material/stop:", on_click=runner.stop)
    show_curves(state)
    show_trials(state)


def finished_run(runner: TrainingRunner, state: RunState) -> None:
    """The last run's outcome, with "Use this model" or "Use these settings"."""
    if state.status == "idle":
        st.caption("No run yet on this server.")
        return
    st.subheader(f"Last {state.kind} run")
    took = f"{state.elapsed:.0f} s"
    if state.status == "failed":
        st.error(state.message)
    elif state.status == "stopped":
        st.warning(f"Stopped after {took}. " + " ".join(state.summary))
    else:
        st.success(f"Finished in {took}. " + " ".join(state.summary))
    show_curves(state)
    show_trials(state)
    top = tuning.best(list(state.trials))
    if state.kind == "search" and top is not None:
        st.button("Use these settings", icon=":material/tune:", on_click=use_settings, args=(top,))
    if state.model_file is not None and state.model_file.exists():
        if model_path() == state.model_file:
            st.caption(f"The app uses this model, {model_name(state.model_file)}.")
        else:
            compare_with_model_in_use(state.model_file)
            st.button(
                "Use this model",
                type="primary",
                icon=":material/check_circle:",
                on_click=use,
                args=(runner, state.model_file),
                help=f"Saved as `{state.model_file}`; the shipped model is never changed.",
            )


def main() -> None:
    st.title("Train the network")
    runner = get_runner(str(runs_dir()))
    flash = st.session_state.pop(FLASH, None)
    if flash is not None:
        getattr(st, flash[0])(flash[1])
    with st.container(horizontal=True, vertical_alignment="center"):
        model_in_use(runner)
    state = runner.snapshot()
    # Keyed, so the open tab survives a message appearing above it.
    new, search, fine = st.tabs(TABS, key=TAB)
    with new:
        new_model_form(runner, state.active)
    with search:
        search_form(runner, state.active)
    with fine:
        finetune_form(runner, state.active)
    st.divider()
    if state.active:
        st.html(ONE_STOP_CSS)
        st.fragment(live_run, run_every=POLL_SECONDS)(runner)
    else:
        finished_run(runner, state)


main()
