"""Evaluation: the model on the 10,000 MNIST test digits, its confusions and its mistakes."""

from __future__ import annotations

from typing import cast

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from PIL import ImageColor

from digits.app import insights
from digits.data.mnist import IMAGE_SIDE, N_CLASSES, DatasetError
from digits.training.evaluation import reliability
from network import Classifier
from pages.shared import TOP_COLOUR, classifier_or_stop, mnist_test_set, model_path

# Mistakes are shown at 3x (84 px), sample predictions at 2x (56 px): both wrap on a phone.
MISTAKE_SCALE, SAMPLE_SCALE = 3, 2
MISTAKES_SHOWN = 30
SAMPLES_SHOWN = 24
TOP_K = 3
FRAME = 3
# The app's accent red; a "#RRGGBB" colour has no alpha.
WRONG_RGB = cast(tuple[int, int, int], ImageColor.getrgb(TOP_COLOUR))
# Pixels per confusion-matrix cell: ten cells and the axes are 330 px, narrower than a phone.
CELL = IMAGE_SIDE
# Correct cells are a quiet grey; the others go from white (no mistakes) to dark red (most).
CORRECT_COLOUR, EMPTY_COLOUR, MOST_COLOUR = "#E4E7EE", "#FFFFFF", "#A50F15"
TRUE_KEY, PREDICTED_KEY, CHART_KEY = "eval_true", "eval_predicted", "eval_confusion"
SAMPLE_SEED_KEY = "eval_sample_seed"
CELL_PARAM = "cell"


@st.cache_data(show_spinner="Reading the 10,000 test digits…", max_entries=4)
def results_on_test_set(path: str, mtime_ns: int, size: int, _classifier: Classifier):
    """The classifier's results on the MNIST test set; path, mtime_ns and size key the cache."""
    images, labels = mnist_test_set()
    return insights.evaluate(_classifier, images, labels)


def confusion_chart(confusion: np.ndarray, picked: tuple[int | None, int | None]) -> alt.Chart:
    """Counts with true digits down and predictions across; a click selects a cell."""
    frame = insights.confusion_frame(confusion)
    true, predicted = picked
    frame["picked"] = (frame["true"] == true) & (frame["predicted"] == predicted)
    click = alt.selection_point(name=CELL_PARAM, fields=["true", "predicted"], on="click")
    worst = max(int(frame["mistakes"].max()), 1)
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:O", title="read as", axis=alt.Axis(orient="top", labelAngle=0)),
        y=alt.Y("true:O", title="true digit"),
    )
    cells = (
        base.mark_rect()
        .encode(
            color=alt.when(alt.datum.correct)
            .then(alt.value(CORRECT_COLOUR))
            .otherwise(
                alt.Color(
                    "mistakes:Q",
                    # Lab, not Vega's default HCL, which tints a white end salmon.
                    scale=alt.Scale(
                        domain=[0, worst], range=[EMPTY_COLOUR, MOST_COLOUR], interpolate="lab"
                    ),
                    legend=None,
                )
            ),
            stroke=alt.when(alt.datum.picked).then(alt.value("black")).otherwise(alt.value(None)),
            strokeWidth=alt.when(alt.datum.picked).then(alt.value(3)).otherwise(alt.value(0)),
            tooltip=["true:O", alt.Tooltip("predicted:O", title="read as"), "count:Q"],
        )
        .add_params(click)
    )
    labels = (
        base.transform_filter(alt.datum.count > 0)
        .mark_text(fontSize=10)
        .encode(
            text="count:Q",
            color=alt.when(alt.datum.mistakes > worst / 2)
            .then(alt.value("white"))
            .otherwise(alt.value("black")),
        )
    )
    return (cells + labels).properties(width=alt.Step(CELL), height=alt.Step(CELL))


def pick_from_chart() -> None:
    """Copy a clicked confusion-matrix cell into the two digit pickers."""
    points = st.session_state[CHART_KEY]["selection"][CELL_PARAM]
    if points:
        st.session_state[TRUE_KEY] = int(points[0]["true"])
        st.session_state[PREDICTED_KEY] = int(points[0]["predicted"])


def any_digit(value: int | None) -> str:
    """A picker's digit as text, "any" for no filter."""
    return "any" if value is None else str(value)


def digit_tile(image: np.ndarray, scale: int, wrong: bool) -> np.ndarray:
    """A test digit as an RGB tile, framed in red when the network got it wrong."""
    tile = insights.upscale(insights.grey_rgb(image), scale)
    return insights.framed(tile, FRAME, WRONG_RGB) if wrong else tile


def test_set_or_stop():
    """The MNIST test images and labels, or an error and a stop when they cannot be read."""
    try:
        return mnist_test_set()
    except DatasetError as exc:
        st.error(str(exc))
        st.stop()


def sample_predictions(result, images: np.ndarray, labels: np.ndarray) -> None:
    """A random handful of test digits with the network's answers, reshuffled by a button."""
    st.subheader("Sample predictions")
    if st.button("Other digits", icon=":material/casino:"):
        st.session_state[SAMPLE_SEED_KEY] = st.session_state.get(SAMPLE_SEED_KEY, 0) + 1
    rng = np.random.default_rng(st.session_state.get(SAMPLE_SEED_KEY, 0))
    sample = rng.choice(len(labels), SAMPLES_SHOWN, replace=False)
    with st.container(horizontal=True, gap="small"):
        for i in sample:
            guess, truth = int(result.predicted[i]), int(labels[i])
            wrong = guess != truth
            st.image(
                digit_tile(images[i], SAMPLE_SCALE, wrong),
                caption=f"✗ {guess}, is {truth}" if wrong else f"{guess}",
            )
    n_right = int(np.sum(result.predicted[sample] == labels[sample]))
    st.caption(
        f"{SAMPLES_SHOWN} random test digits, each with the network's answer: {n_right} read "
        "right. Wrong answers are framed in red."
    )


def confusion_section(result) -> tuple[int | None, int | None]:
    """The clickable confusion matrix and the two digit pickers; returns the picked pair."""
    st.subheader("Which digits get mixed up")
    st.write(
        "Rows are the true digits, columns what the network read. The diagonal counts the "
        "digits read right; every other cell is a kind of mistake, redder when more common. "
        "Click a cell, or pick the two digits below, to see those mistakes."
    )
    # Open on the commonest mistake, so the page shows some without a click.
    if TRUE_KEY not in st.session_state:
        st.session_state[TRUE_KEY], st.session_state[PREDICTED_KEY] = insights.worst_confusion(
            result.confusion
        )
    picked = (st.session_state[TRUE_KEY], st.session_state[PREDICTED_KEY])
    st.altair_chart(
        confusion_chart(result.confusion, picked),
        key=CHART_KEY,
        on_select=pick_from_chart,
        selection_mode=CELL_PARAM,
        width="content",
    )
    options = [None, *range(N_CLASSES)]
    with st.container(horizontal=True):
        true = st.selectbox("True digit", options, key=TRUE_KEY, format_func=any_digit)
        predicted = st.selectbox("Read as", options, key=PREDICTED_KEY, format_func=any_digit)
    return true, predicted


def mistakes_section(result, images, labels, true: int | None, predicted: int | None) -> None:
    """The test digits of the picked kind of mistake, each with the network's likeliest answers."""
    wrong = insights.misclassified(result, true, predicted)
    if true is not None and true == predicted:
        st.info(
            f"{result.confusion[true, true]:,} test digits {true} were read right; pick two "
            "different digits to see mistakes."
        )
        return
    if not len(wrong):
        st.info("No test digit was mixed up that way.")
        return
    st.markdown(
        f"**{len(wrong)} mistakes**: {insights.mistake_kind(true, predicted)}"
        + (f", the {MISTAKES_SHOWN} most confident shown" if len(wrong) > MISTAKES_SHOWN else "")
        + f". Under each: the network's {TOP_K} likeliest answers."
    )
    side = images.shape[-1] * MISTAKE_SCALE
    with st.container(horizontal=True, gap="small"):
        for i in wrong[:MISTAKES_SHOWN]:
            with st.container(width=side, gap="xxsmall"):
                st.image(digit_tile(images[i], MISTAKE_SCALE, wrong=False))
                top = insights.top_k_text(result.proba[i], TOP_K, sep="  \n")
                st.caption(f"**#{i}** is {labels[i]}  \n{top}")


def per_digit_section(result) -> None:
    """Precision and recall for each digit, in a table."""
    st.subheader("Per digit")
    st.write(
        "**Precision**: of the digits read as this one, how many really were. "
        "**Recall**: of the real ones, how many were read right."
    )
    # A static table: ten rows need no scrolling, sorting or search, and it prints on a phone.
    report = insights.class_report(result.confusion).set_index("digit")
    st.table(
        report.style.format(
            {"images": "{:,}", "read right": "{:,}", "precision": "{:.1%}", "recall": "{:.1%}"}
        )
    )


def reliability_section(result) -> None:
    """The reliability diagram: in each confidence bin, how often the model was right."""
    st.subheader("Does its confidence mean what it says?")
    bins, ece = reliability(result.proba, result.labels)
    st.write(
        "Each bar gathers the test digits read with about the same confidence; a calibrated "
        "model is right as often as it says (the diagonal). The expected calibration error is "
        "the gap between the two, weighted by how many digits fall in each bar."
    )
    st.metric("Expected calibration error", f"{ece:.2%}")
    frame = pd.DataFrame(bins, columns=["confidence", "accuracy", "share"]).dropna()
    frame["digits"] = (frame["share"] * len(result.labels)).round().astype(int)
    bars = (
        alt.Chart(frame)
        .mark_bar(color=TOP_COLOUR, size=18)
        .encode(
            x=alt.X("confidence:Q", scale=alt.Scale(domain=[0, 1]), title="confidence"),
            y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), title="share read right"),
            tooltip=[
                alt.Tooltip("confidence:Q", format=".1%"),
                alt.Tooltip("accuracy:Q", format=".1%"),
                "digits:Q",
            ],
        )
    )
    diagonal = (
        alt.Chart(pd.DataFrame({"confidence": [0, 1], "accuracy": [0, 1]}))
        .mark_line(color="grey", strokeDash=[4, 4])
        .encode(x="confidence:Q", y="accuracy:Q")
    )
    st.altair_chart(bars + diagonal, width="stretch")


def main() -> None:
    """The page: accuracy on the test set, samples, confusions, mistakes and per-digit figures."""
    st.title("Evaluation")
    classifier = classifier_or_stop()
    images, labels = test_set_or_stop()
    path = model_path()
    result = results_on_test_set(str(path), *insights.file_version(path), classifier)

    st.write(
        f"The model read all {len(labels):,} MNIST test digits, which it never saw in training."
    )
    with st.container(horizontal=True):
        st.metric("Accuracy", f"{result.accuracy:.2%}")
        st.metric("Mistakes", f"{result.mistakes:,} of {len(labels):,}")

    sample_predictions(result, images, labels)
    true, predicted = confusion_section(result)
    mistakes_section(result, images, labels, true, predicted)
    per_digit_section(result)
    reliability_section(result)


main()
