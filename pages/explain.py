"""Why? Which pixels made the network say its answer, why not another, what would change it,
how it copes with moving, and what a first-layer unit looks for."""

from __future__ import annotations

import altair as alt
import numpy as np
import streamlit as st

from digits.app import explain, insights
from digits.app.logic import enlarge, read_digit, with_article
from digits.data.mnist import DATA_DIR, IMAGE_SIDE, find_file, read_idx
from network import Classifier
from pages.shared import (
    OTHER_COLOUR,
    TOP_COLOUR,
    UNIT_PARAM,
    UNIT_VIEW,
    VIEW_PARAM,
    classifier_or_stop,
    current_or_example,
    describe,
    model_path,
)

VIEW_KEY = "explain_view"
VIEWS = {
    "say": "What made it say {n}",
    "not": "Why {n} and not another",
    "edit": "What would make it another",
    "move": "Moving it",
    UNIT_VIEW: "What a unit looks for",
}
# One input pixel as a 10x10 square: the 28x28 maps are 280 px, the size of the pad.
PIXEL = 10
# Small pictures (the moved drawings, training digits) at 3x, the unit's weights at 6x.
SMALL_SCALE, UNIT_SCALE = 3, 6
# The colours of the weights pictures: red for, blue against; the ink in grey on a pale field.
FOR_COLOUR = "#{:02X}{:02X}{:02X}".format(*insights.POSITIVE_RGB.astype(int))
AGAINST_COLOUR = "#{:02X}{:02X}{:02X}".format(*insights.NEGATIVE_RGB.astype(int))
INK_COLOUR, FIELD_COLOUR = "#6B6B6B", "#F4F4F4"
# Training digits shown per unit.
TOP_IMAGES = 12


def overlay_chart(frame, colours: dict[str, str]) -> alt.Chart:
    """Values over the input: the ink in grey, each nonzero value in its kind's colour, stronger
    values more opaque; a legend names the two kinds."""
    no_axis = alt.Axis(labels=False, ticks=False, title=None, domain=False)
    # The whole 28x28 grid on both axes, also where a layer has no rows.
    grid = alt.Scale(domain=list(range(IMAGE_SIDE)))
    x = alt.X("column:O", axis=no_axis, scale=grid)
    y = alt.Y("row:O", axis=no_axis, scale=grid)
    ink = (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "ink:Q", scale=alt.Scale(domain=[0, 1], range=[FIELD_COLOUR, INK_COLOUR])
            ).legend(None),
        )
    )
    values = (
        alt.Chart(frame)
        .transform_filter(alt.datum.kind != "")
        .mark_rect()
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "kind:N",
                scale=alt.Scale(domain=list(colours), range=list(colours.values())),
                legend=alt.Legend(title=None, orient="bottom", symbolType="square"),
            ),
            opacity=alt.Opacity(
                "strength:Q", scale=alt.Scale(domain=[0, 1], range=[0.2, 1])
            ).legend(None),
            tooltip=[
                alt.Tooltip("row:O"),
                alt.Tooltip("column:O"),
                alt.Tooltip("value:Q", format="+.3f"),
            ],
        )
    )
    return (
        (ink + values)
        .resolve_scale(color="independent")
        .properties(width=alt.Step(PIXEL), height=alt.Step(PIXEL))
        .configure_view(stroke=OTHER_COLOUR)
    )


def other_digit(label: str, options: list[int], default: int, key: str) -> int:
    """A digit picker over `options`, starting at `default` (the runner-up)."""
    return st.selectbox(label, options, index=options.index(default), key=key)


def saliency_chart(x: np.ndarray, found: explain.Saliency, labels: tuple[str, str]) -> alt.Chart:
    """The saliency map over the input, labels[0] (for) in red and labels[1] (against) in blue."""
    frame = explain.overlay_frame(x, found.scores, labels)
    return overlay_chart(frame, {labels[0]: FOR_COLOUR, labels[1]: AGAINST_COLOUR})


def say_view(classifier: Classifier, x: np.ndarray, digit: int) -> None:
    """Which pixels pushed towards the answer and which against it."""
    found = explain.saliency(classifier, x, digit)
    st.write(
        f"Each inked pixel's share of the network's score (logit) for {digit}: **red** pixels "
        f"raise it, **blue** ones lower it; the stronger the colour, the bigger the share."
    )
    st.altair_chart(
        saliency_chart(x, found, (f"pushes towards {digit}", f"pushes against {digit}")),
        width="content",
    )
    st.caption(
        f"The red pixels add {found.towards:+.1f} and the blue ones {found.against:+.1f}, "
        f"together {found.towards + found.against:+.1f}: about how much higher the logit for "
        f"{digit} is for this drawing than for a blank pad ({found.change:+.1f}). Shares by "
        "integrated gradients: the gradient averaged along the way from a blank pad to the "
        "drawing, times the ink, so the shares add up to the whole change; blank pixels get no "
        "share."
    )


def not_view(classifier: Classifier, x: np.ndarray, reading) -> None:
    """Which pixels make the answer win over another digit, picked by the user."""
    digit = reading.digit
    options = [d for d in range(len(reading.proba)) if d != digit]
    other = other_digit(f"Why {digit} and not", options, reading.runner_up, "explain_not")
    found = explain.saliency(classifier, x, digit, other)
    st.write(
        f"The network says {digit} because its logit for {digit} beats its logit for {other}. "
        f"**Red** pixels widen that lead, **blue** ones speak for {other} instead."
    )
    st.altair_chart(
        saliency_chart(x, found, (f"for {digit} over {other}", f"for {other} over {digit}")),
        width="content",
    )
    st.caption(
        f"Red adds {found.towards:+.1f} to the lead of {digit} over {other}, blue "
        f"{found.against:+.1f}; a blank pad would have given a lead "
        f"{found.change:.1f} lower than this drawing's. Probabilities: {digit} "
        f"{insights.percent_text(float(reading.proba[digit]))}, {other} "
        f"{insights.percent_text(float(reading.proba[other]))}."
    )


def probability_chart(frame, target: int, step: int) -> alt.Chart:
    """The probability of the target at each step, with the step on show marked."""
    line = (
        alt.Chart(frame)
        .mark_line(point=True, color=TOP_COLOUR)
        .encode(
            x=alt.X("step:Q", title="step", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y(
                "probability:Q", title=f"probability of {target}", scale=alt.Scale(domain=[0, 1])
            ),
            tooltip=[
                "step:Q",
                alt.Tooltip("probability:Q", format=".1%"),
                alt.Tooltip("added:Q", format=".1f", title="ink added"),
                alt.Tooltip("removed:Q", format=".1f", title="ink removed"),
            ],
        )
    )
    rule = alt.Chart(frame[frame["step"] == step]).mark_rule(color=OTHER_COLOUR).encode(x="step:Q")
    return (line + rule).properties(height=180)


def edit_view(classifier: Classifier, x: np.ndarray, reading) -> None:
    """The drawing changed in small steps until the network reads another digit."""
    digit = reading.digit
    options = [d for d in range(len(reading.proba)) if d != digit]
    target = other_digit("Make it read as", options, reading.runner_up, "explain_target")
    edit = explain.edit_towards(classifier, x, target)
    st.write(
        f"Starting from the drawing, each step adds or removes a little ink where it raises the "
        f"probability of {target} most: at most {explain.STEP_INK:g} pixels' worth of ink a step "
        f"(a dab of the pen), spread over the {explain.STEP_PIXELS} pixels that matter most."
    )
    last = edit.last_step
    if edit.flip_step is None:
        st.warning(f"Even {last} steps did not make it {with_article(target)}; try another digit.")
    step = st.slider("Step", 0, last, last, key=f"explain_step_{target}") if last else 0
    added, removed = edit.added(step), edit.removed(step)
    change = edit.change(step)
    frame = explain.overlay_frame(x, change, ("ink added", "ink removed"))
    with st.container(horizontal=True):
        colours = {"ink added": FOR_COLOUR, "ink removed": AGAINST_COLOUR}
        st.altair_chart(overlay_chart(frame, colours), width="content")
        st.image(
            enlarge(edit.images[step].reshape(IMAGE_SIDE, IMAGE_SIDE), 4),
            caption=f"step {step}: read as {int(edit.predicted[step])} "
            f"({insights.percent_text(float(edit.proba[step].max()))})",
        )
    st.altair_chart(probability_chart(explain.step_frame(edit), target, step), width="stretch")
    if edit.flip_step is not None:
        drawn = float(x.sum())
        flipped = edit.added(last) + edit.removed(last)
        st.metric(
            f"Ink that turned it into {with_article(target)}",
            f"{flipped:.1f} pixels",
            help="A pixel of full ink counts 1; a half-grey pixel 0.5.",
        )
        st.caption(
            f"After {last} step{'s' if last > 1 else ''} the network reads "
            f"{with_article(target)}: {edit.added(last):.1f} pixels of ink added and "
            f"{edit.removed(last):.1f} removed, {flipped / drawn:.0%} of the {drawn:.0f} pixels "
            "of ink in the drawing. So little can change its answer: a network can be this "
            f"fragile. Shown: step {step}, {added:.1f} added, {removed:.1f} removed."
        )


def move_rows(readings, digit: int, preprocessed: bool) -> int:
    """A row of pictures per kind of move, each with the network's answer; how many read `digit`."""
    kept = 0
    for kind in dict.fromkeys(r.move.kind for r in readings):
        pictures, captions = [], []
        for r in (r for r in readings if r.move.kind == kind):
            proba = r.preprocessed_proba if preprocessed else r.raw_proba
            image = r.preprocessed.image if preprocessed else r.raw
            if image is None or proba is None:
                pictures.append(enlarge(np.zeros((IMAGE_SIDE, IMAGE_SIDE)), SMALL_SCALE))
                captions.append(f"{r.move.label}: no digit")
                continue
            answer = int(np.argmax(proba))
            kept += answer == digit
            mark = "" if answer == digit else " ✗"
            pictures.append(enlarge(image, SMALL_SCALE))
            captions.append(f"{r.move.label}: {answer}{mark}")
        st.markdown(f"**{kind.capitalize()}**")
        st.image(pictures, caption=captions, width=IMAGE_SIDE * SMALL_SCALE)
    return kept


def move_view(classifier: Classifier, x: np.ndarray, digit: int) -> None:
    """The drawing moved, scaled, rotated and re-inked, read with the centring off and on."""
    readings = explain.read_moves(classifier, x.reshape(IMAGE_SIDE, IMAGE_SIDE))
    st.write(
        f"The network read {with_article(digit)}. Here is the same drawing shifted, scaled, "
        "rotated and drawn thinner or thicker, with the network's answer under each (✗ where it "
        "changes its mind)."
    )
    left, right = st.columns(2)
    with left:
        st.subheader("Centring off")
        st.caption("The moved picture as it is.")
        raw = move_rows(readings, digit, preprocessed=False)
    with right:
        st.subheader("Centring on")
        st.caption("The app's preprocessing first: crop, even the strokes, fit 20x20, centre.")
        redone = move_rows(readings, digit, preprocessed=True)
    n = len(readings)
    st.info(
        f"Without centring the network still reads {digit} in {raw} of {n} pictures; with it, "
        f"in {redone}. It learnt from digits centred in a 20x20 box, so the preprocessing moves "
        "every drawing there first."
    )


@st.cache_data(show_spinner="Finding the training digits each unit likes most…", max_entries=4)
def unit_favourites(path: str, mtime_ns: int, size: int, _classifier: Classifier):
    """Per first-layer unit, its TOP_IMAGES most exciting MNIST training digits: images (n, k,
    28, 28) uint8, labels (n, k) and activations (n, k). path, mtime_ns, size key the cache."""
    images = read_idx(find_file(DATA_DIR, "train-images-idx3-ubyte"))
    labels = read_idx(find_file(DATA_DIR, "train-labels-idx1-ubyte"))
    index, activation = explain.top_exciting(_classifier, images, TOP_IMAGES)
    return images[index], labels[index], activation


def unit_view(classifier: Classifier, x: np.ndarray) -> None:
    """One first-layer unit: its weights beside the training digits that excite it most."""
    W1 = classifier.weights[0]
    if len(classifier.weights) < 2:
        st.info("This model has no hidden layer, so it has no units to look at.")
        return
    asked = st.query_params.get(UNIT_PARAM, "0")
    first = int(asked) if asked.isdigit() and int(asked) < W1.shape[1] else 0
    unit = int(st.number_input("Unit", 0, W1.shape[1] - 1, first, key="explain_unit"))
    path = model_path()
    images, labels, activation = unit_favourites(
        str(path), *insights.file_version(path), classifier
    )
    here = float(classifier.hidden_and_logits(x[None])[0][0, unit])
    with st.container(horizontal=True, vertical_alignment="center"):
        tile = insights.weight_tiles(W1[:, [unit]])[0]
        st.image(insights.upscale(tile, UNIT_SCALE), caption=f"unit {unit}: its weights")
        st.metric("Its activation for this drawing", f"{here:.2f}")
        st.metric("Its highest on a training digit", f"{activation[unit, 0]:.2f}")
    st.write(
        f"Its weights: **red** where ink excites it, **blue** where ink holds it back. Below, "
        f"the {TOP_IMAGES} of the 60,000 MNIST training digits that excite it most, with their "
        "label and its activation: what it has learnt to look for."
    )
    st.image(
        [enlarge(image, SMALL_SCALE) for image in images[unit]],
        caption=[
            f"a {label}: {a:.2f}" for label, a in zip(labels[unit], activation[unit], strict=True)
        ],
    )


def main() -> None:
    """The page: the input, then the view the learner picked."""
    st.title("Why did it say that?")
    classifier = classifier_or_stop()
    current = current_or_example()
    x = current.preprocessed.vector
    reading = read_digit(classifier, current.preprocessed)
    digit = reading.digit
    with st.container(horizontal=True, vertical_alignment="center"):
        st.image(enlarge(x.reshape(IMAGE_SIDE, IMAGE_SIDE), 4), caption="the network's input")
        st.metric("Prediction", str(digit))
        st.metric("Confidence", reading.confidence_text())
    st.caption(f"Explaining {describe(current)}, as you last drew, uploaded or picked it.")
    asked = st.query_params.get(VIEW_PARAM)
    view = st.segmented_control(
        "Question",
        list(VIEWS),
        default=asked if asked in VIEWS else "say",
        format_func=lambda v: VIEWS[v].format(n=digit),
        key=VIEW_KEY,
        required=True,
    )
    if view == "say":
        say_view(classifier, x, digit)
    elif view == "not":
        not_view(classifier, x, reading)
    elif view == "edit":
        edit_view(classifier, x, reading)
    elif view == "move":
        move_view(classifier, x, digit)
    else:
        unit_view(classifier, x)


main()
