"""What the pages share: the model and test set loaded once per server, colours, session keys.

The draw page shares what it read with the other pages through st.session_state:

    st.session_state[CURRENT_INPUT]  ("current_input")
        digits.app.logic.CurrentInput for the input shown in the open tab (its source, the
        preprocessed 28x28 image with its stages, and the true label for MNIST digits), or
        None while that tab has nothing to read.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import streamlit as st

from canvas import PEN_WIDTH_KEY, pen_width_key
from digits.app import insights
from digits.app.insights import file_version
from digits.app.logic import CurrentInput, mnist_input
from digits.app.training_runner import chosen_model, runs_dir
from digits.data.mnist import (
    DATA_DIR,
    DRAWN_PATH,
    DatasetError,
    find_file,
    load_drawn_training_set,
    read_idx,
)
from digits.training.checkpoint import history_path
from digits.training.trainer import DataStory, TrainConfig
from model_loader import MODEL_PATH, ModelFileError, load_classifier
from network import Classifier

MODEL_ENV = "DIGITS_MODEL"
CURRENT_INPUT = "current_input"
# The main page, which the others link back to.
DRAW_PAGE = Path(__file__).with_name("draw.py")
# The "Why?" page, which Inside and Weights link to: its view and unit go in the query string.
EXPLAIN_PAGE = Path(__file__).with_name("explain.py")
VIEW_PARAM, UNIT_PARAM, UNIT_VIEW = "view", "unit", "unit"
# The draw page's tabs, and the session-state keys of the open one and of the MNIST digit on show.
TAB_DRAW, TAB_NUMBER, TAB_UPLOAD, TAB_MNIST = "Draw", "Number", "Upload", "MNIST test digit"
TAB_KEY = "source_tab"
SAMPLE_KEY = "mnist_sample_index"
# The MNIST digit the Inside and Why pages show to a learner who has drawn nothing yet.
EXAMPLE_KEY = "inside_example_index"
# The upload on show, (name, bytes): the uploader itself forgets its file on another page.
UPLOAD_KEY = "upload_kept"
# How the pages name where the current input came from.
SOURCES = {
    "canvas": "your drawing",
    "number": "the first digit of your number",
    "upload": "the uploaded image",
    "mnist": "the MNIST digit",
}
# Widgets whose values outlive a visit to another page (see keep_widget_state).
# The number pad's name: its widgets' keys start with it.
NUMBER_PAD = "number"
KEPT_WIDGETS = (PEN_WIDTH_KEY, pen_width_key(NUMBER_PAD), TAB_KEY)

# The most probable digit's bar stands out in Streamlit's accent red; the rest stay grey.
TOP_COLOUR, OTHER_COLOUR = "#FF4B4B", "#A3A8B8"
# Every page draws training curves in the grey and validation curves in the red.
TRAINING_COLOUR, VALIDATION_COLOUR = OTHER_COLOUR, TOP_COLOUR


def keep_widget_state() -> None:
    """Keep KEPT_WIDGETS' values on every page, so the draw page finds them as it left them.

    Streamlit drops a widget's value at the end of any run that does not show the widget;
    a value the script has set itself is kept, so app.py, which runs before every page,
    sets each one to itself.
    """
    for key in KEPT_WIDGETS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def shipped_model_path() -> Path:
    """The model that comes with the app: $DIGITS_MODEL if set, else model_params.pkl."""
    return Path(os.environ.get(MODEL_ENV) or MODEL_PATH)


def model_path() -> Path:
    """The model file the app serves: the run the user chose on the Train page, else the
    shipped model."""
    return chosen_model(runs_dir()) or shipped_model_path()


def model_name(path: Path) -> str:
    """How every page names a model file: the shipped one, or one of the user's runs."""
    if path == shipped_model_path():
        return f"the shipped model (`{path.name}`)"
    return f"your model `{path.stem}`"


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _cached_classifier(path: str, mtime_ns: int, size: int) -> Classifier:
    """The classifier in `path`; mtime_ns and size only key the cache, so a new file is re-read."""
    return load_classifier(path)


def classifier_or_stop() -> Classifier:
    """The model, loaded once per server and file version; a bad file stops the page with a fix."""
    path = model_path()
    try:
        # A missing file's (0, 0) is loaded all the same: load_classifier() says what is wrong.
        return _cached_classifier(str(path), *file_version(path))
    except ModelFileError as exc:
        fix = ""
        if path != shipped_model_path():
            fix = " (You chose it on the Train page, where you can go back to the shipped model.)"
        elif path.resolve() != MODEL_PATH:
            fix = f" ({MODEL_ENV} points there; `python train.py --output {path}` writes it.)"
        st.error(f"The model could not be loaded: {exc}{fix}")
        st.stop()


@st.cache_resource(show_spinner="Loading the MNIST test set…")
def mnist_test_set() -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test images (10000, 28, 28) uint8 and labels (10000,), read once per server."""
    # Only the two test files: the training set would quadruple the time and the memory.
    images = read_idx(find_file(DATA_DIR, "t10k-images-idx3-ubyte"))
    labels = read_idx(find_file(DATA_DIR, "t10k-labels-idx1-ubyte"))
    return images, labels


@st.cache_data(show_spinner=False, max_entries=4)
def _cached_history(path: str, mtime_ns: int, size: int) -> insights.History | None:
    """The parsed history file; mtime_ns and size only key the cache to the file's version."""
    return insights.read_history(path)


def cached_history(file: Path) -> insights.History | None:
    """The history file `file` (None if missing), parsed once per version; ValueError if bad."""
    return _cached_history(str(file), *file_version(file))


@st.cache_data(show_spinner=False)
def default_story() -> DataStory | None:
    """What a model trained with the default recipe learns from; None without the drawn set."""
    try:
        sources = load_drawn_training_set(DRAWN_PATH)["source"]
    except DatasetError:
        return None
    story = DataStory.of(TrainConfig().to_dict(), 0)
    # As drawn_for does: only the drawings of the digits trained on.
    return dataclasses.replace(story, drawn=int((sources < story.train).sum()))


def model_story(path: Path) -> DataStory | None:
    """What the model in `path` learnt from, as its history file records it (else None)."""
    try:
        history = cached_history(history_path(path))
    except ValueError:
        return None
    return None if history is None else history.story


def describe(current) -> str:
    """Where the current input came from, in a few words."""
    text = SOURCES.get(current.source, current.source)
    if current.name:
        text += f" {current.name}"
    if current.label is not None:
        text += f" (true label {current.label})"
    return text


def current_or_example() -> CurrentInput:
    """The input last drawn, uploaded or picked; with none, a random MNIST test digit."""
    current = st.session_state.get(CURRENT_INPUT)
    if current is not None and current.preprocessed.has_digit:
        return current
    if current is not None:
        st.warning(current.preprocessed.reason)
    images, labels = mnist_test_set()
    # One example per session, so the page does not change under the learner on every visit.
    index = st.session_state.setdefault(
        EXAMPLE_KEY, int(np.random.default_rng().integers(len(images)))
    )
    with st.container(horizontal=True, vertical_alignment="center"):
        st.info(f"Nothing drawn yet, so here is MNIST test digit #{index}. Draw your own:")
        st.page_link(
            st.Page(DRAW_PAGE, default=True), label="Go to the drawing pad", icon=":material/draw:"
        )
    return CurrentInput("mnist", mnist_input(images[index]), f"#{index}", int(labels[index]))
