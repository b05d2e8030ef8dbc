"""Inside the network: the hidden layers, the units behind the answer, and the softmax step."""

from __future__ import annotations

import altair as alt
import numpy as np
import streamlit as st

from digits.app import insights
from digits.app.logic import enlarge, read_digit
from digits.data.mnist import IMAGE_SIDE
from pages.shared import (
    EXPLAIN_PAGE,
    OTHER_COLOUR,
    TOP_COLOUR,
    UNIT_PARAM,
    UNIT_VIEW,
    VIEW_PARAM,
    classifier_or_stop,
    current_or_example,
    describe,
)

# The input is shown at 4x (112 px); each unit's weight image at 3x (84 px), six across a
# desktop column and four across a phone.
IMAGE_SCALE, UNIT_SCALE = 4, 3
# Units shown as the main reasons for the answer.
TOP_UNITS = 6
# Pixels per hidden unit in the heatmaps: 16 units across is 320 px, narrower than a phone.
CELL = 20
# Each digit's logit bar gets this many pixels of height.
BAR_STEP = 20
# Hidden units go from white (off) to dark blue (most active).
OFF_COLOUR, ON_COLOUR = "#FFFFFF", "#08519C"


def markdown_safe(text: str) -> str:
    """Text for a table cell, which Streamlit renders as Markdown: a leading ">" stays a sign."""
    return text.replace(">", "\\>")


def activation_heatmap(values: np.ndarray, outlined: np.ndarray) -> alt.Chart:
    """Units (n,) as a grid of squares, darker when more active; units in `outlined` ringed."""
    frame = insights.grid_frame(values)
    frame["outlined"] = np.isin(frame["unit"], outlined)
    no_axis = alt.Axis(labels=False, ticks=False, title=None, domain=False)
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("column:O", axis=no_axis),
            y=alt.Y("row:O", axis=no_axis),
            color=alt.Color(
                "value:Q",
                # From white at 0, so units that are off look empty; Lab keeps that end white.
                scale=alt.Scale(domainMin=0, range=[OFF_COLOUR, ON_COLOUR], interpolate="lab"),
                legend=alt.Legend(orient="bottom", title="activation", gradientLength=CELL * 8),
            ),
            # Every unit framed in grey, so an inactive one still shows as a square on a white
            # page; the units that push hardest ringed in red.
            stroke=alt.when(alt.datum.outlined)
            .then(alt.value(TOP_COLOUR))
            .otherwise(alt.value(OTHER_COLOUR)),
            strokeWidth=alt.when(alt.datum.outlined).then(alt.value(3)).otherwise(alt.value(0.5)),
            tooltip=["unit:Q", alt.Tooltip("value:Q", title="activation", format=".2f")],
        )
        .properties(width=alt.Step(CELL), height=alt.Step(CELL))
    )


def logit_chart(steps) -> alt.Chart:
    """The ten logits as horizontal bars, the highest in the accent colour."""
    steps = steps.assign(top=steps["logit"] == steps["logit"].max())
    return (
        alt.Chart(steps)
        .mark_bar()
        .encode(
            x=alt.X("logit:Q", title="logit"),
            y=alt.Y("digit:N", sort=None, title=None),
            color=alt.when(alt.datum.top)
            .then(alt.value(TOP_COLOUR))
            .otherwise(alt.value(OTHER_COLOUR)),
            tooltip=["digit:N", alt.Tooltip("logit:Q", format=".2f")],
        )
        .properties(height=alt.Step(BAR_STEP))
    )


def introduction(current, reading, x: np.ndarray, hidden, logits: np.ndarray) -> None:
    """What the page follows, with the input image, the prediction and its confidence."""
    st.write(
        f"This page follows {describe(current)} through the network: {len(x)} pixels in, "
        + "".join(f"{len(h)} hidden units, then " for h in hidden)
        + f"{len(logits)} logits (scores) out. It follows whatever you last drew, uploaded or "
        "picked on the main page."
    )
    with st.container(horizontal=True, vertical_alignment="center"):
        st.image(enlarge(current.preprocessed.image, IMAGE_SCALE), caption="the network's input")
        st.metric("Prediction", str(reading.digit))
        st.metric("Confidence", reading.confidence_text())
    st.page_link(
        st.Page(EXPLAIN_PAGE),
        label=f"Why {reading.digit}? Which pixels made it say so, and what would change it",
        icon=":material/help:",
    )


def hidden_layers_section(hidden, top: np.ndarray, winner: int) -> None:
    """Section 1: each hidden layer's activations as a heatmap, the top units ringed."""
    st.header("1. The hidden layers", divider="gray")
    st.write(
        "Each square is one unit (a 'neuron'): a weighted sum of the layer before, with "
        "negative sums set to 0 (ReLU). White squares are off for this digit; dark blue ones "
        "fire strongly."
    )
    with st.container(horizontal=True, gap="large"):
        for i, h in enumerate(hidden, start=1):
            with st.container(width="content"):
                active = int(np.count_nonzero(h > 0))
                st.markdown(f"**Layer {i}**: {active} of {len(h)} units active")
                ringed = top if i == 1 else np.array([], int)
                st.altair_chart(activation_heatmap(h, ringed), width="content")
    st.caption(f"Ringed in red in layer 1: the {len(top)} units that push hardest for {winner}.")


def top_units_section(classifier, x: np.ndarray, attribution, top: np.ndarray, winner: int):
    """Section 2: the top units' weights, what they found in this digit, and their shares."""
    st.header(f"2. The units that say {winner}", divider="gray")
    st.write(
        f"A unit's share of the logit for {winner} is its activation times how much that logit "
        "rises per unit of it. "
        + (
            "With ReLU the shares and the biases add up exactly to the logit."
            if attribution.exact
            else "With this model's activation the shares only approximate the logit."
        )
    )
    W1 = classifier.weights[0]
    weights = insights.weight_tiles(W1[:, top])
    found = insights.diverging_rgb(
        insights.symmetric_unit((W1[:, top].T * x).reshape(-1, IMAGE_SIDE, IMAGE_SIDE))
    )
    st.markdown(
        "**What each unit looks for**: its incoming weights, red where ink excites it and blue "
        "where ink holds it back."
    )
    with st.container(horizontal=True):
        for j, tile in zip(top, weights, strict=True):
            share = attribution.contributions[j]
            st.image(insights.upscale(tile, UNIT_SCALE), caption=f"unit {j}: {share:+.1f}")
    st.markdown(
        "**What it found in this digit**: the weights times the input, so only inked pixels remain."
    )
    with st.container(horizontal=True):
        for j, tile in zip(top, found, strict=True):
            st.image(insights.upscale(tile, UNIT_SCALE), caption=f"unit {j}")
    with st.container(horizontal=True, vertical_alignment="center"):
        st.markdown("**The training digits each likes most**:")
        for j in top:
            st.page_link(
                st.Page(EXPLAIN_PAGE),
                label=f"unit {j}",
                query_params={VIEW_PARAM: UNIT_VIEW, UNIT_PARAM: str(j)},
            )
    shares = attribution.contributions
    shown, rest = shares[top].sum(), shares.sum() - shares[top].sum()
    st.caption(
        f"The {len(top)} units shown add {shown:+.1f} to the logit for {winner}; the other "
        f"{len(shares) - len(top)} add {rest:+.1f}, as some push against it; with the biases' "
        f"{attribution.bias_path:+.1f} that makes the logit, {attribution.score:.1f}."
    )


def probabilities_section(classifier, logits: np.ndarray) -> None:
    """Section 3: the logits as bars, how the output turns them into probabilities, and a table."""
    st.header("3. From logits to probabilities", divider="gray")
    steps = insights.output_steps(logits, classifier.output)
    st.altair_chart(logit_chart(steps), width="stretch")
    if classifier.output == "softmax":
        st.write(
            "The last layer gives each digit a logit, a score that can be any number. Softmax "
            "makes them probabilities in two steps. First **exp(logit − highest logit)** gives "
            "each digit a positive weight; a logit 1 higher weighs e ≈ 2.7 times as much. Then "
            "each weight is **divided by the sum** of the ten, so they add up to 1."
        )
        positive_title = "exp(logit − max)"
    else:
        st.write(
            "The last layer gives each digit a logit, a score that can be any number. This model "
            "squashes each into a weight from 0 to 1 with a sigmoid, then divides each weight by "
            "the sum of the ten, so they add up to 1."
        )
        positive_title = "sigmoid(logit)"
    # A static table: ten rows need no scrolling, sorting or search, and it prints on a phone.
    table = steps.set_index("digit").rename(columns={"positive": positive_title})
    st.table(
        table.style.format(
            {
                "logit": "{:.2f}",
                positive_title: "{:.3g}",
                "probability": lambda p: markdown_safe(insights.percent_text(p, decimals=1)),
            }
        )
    )
    st.caption(
        f"The ten weights add up to {steps['positive'].sum():.6g}; each probability is its "
        "weight divided by that sum."
    )


def main() -> None:
    """The page: the input, its hidden layers and top units, then the output step."""
    st.title("Inside the network")
    classifier = classifier_or_stop()
    current = current_or_example()
    x = current.preprocessed.vector
    reading = read_digit(classifier, current.preprocessed)
    *hidden, logits = (a[0] for a in classifier.hidden_and_logits(x[None]))
    winner = reading.digit

    introduction(current, reading, x, hidden, logits)
    if not hidden:
        st.info("This model has no hidden layer: its pixels feed the ten logits directly.")
    else:
        attribution = insights.first_layer_attribution(classifier, x, winner)
        top = attribution.top(TOP_UNITS)
        hidden_layers_section(hidden, top, winner)
        top_units_section(classifier, x, attribution, top, winner)
    probabilities_section(classifier, logits)


main()
