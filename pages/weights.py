"""Weights: every first-layer unit's incoming weights as a picture, and each layer's histogram."""

from __future__ import annotations

import altair as alt
import numpy as np
import streamlit as st

from digits.app import insights
from digits.data.mnist import IMAGE_SIDE
from network import Classifier
from pages.shared import (
    EXPLAIN_PAGE,
    OTHER_COLOUR,
    UNIT_PARAM,
    UNIT_VIEW,
    VIEW_PARAM,
    classifier_or_stop,
    model_path,
)

# 16 units across, as many rows as it takes: 8 rows for 128 units.
GRID_COLUMNS = 16
# Each 28x28 weight image at 2x with 2 px between tiles: a 926 px wide picture for 16 across.
GRID_SCALE, GRID_GAP = 2, 2
# One chosen unit at 8x, the size of "What the network sees" on the main page.
UNIT_SCALE = 8
HISTOGRAM_BINS = 60
# Streamlit fits the axes into this height as well as the bars.
HISTOGRAM_HEIGHT = 220


@st.cache_data(show_spinner="Drawing the weights…", max_entries=4)
def weight_pictures(path: str, mtime_ns: int, size: int, _classifier: Classifier):
    """The first-layer weight grid (RGB uint8) and every layer's weight histogram rows.

    path, mtime_ns and size only key the cache to the model file's version.
    """
    grid = insights.weight_grid(_classifier.weights[0], GRID_COLUMNS, GRID_SCALE, GRID_GAP)
    return grid, insights.weight_histograms(_classifier.weights, HISTOGRAM_BINS)


def histogram(rows) -> alt.Chart:
    """A bar per non-empty weight bin, rising from 1 on a log scale of counts."""
    return (
        alt.Chart(rows)
        .transform_filter(alt.datum.count > 0)
        .mark_rect(color=OTHER_COLOUR)
        .encode(
            x=alt.X("start:Q", title="weight"),
            x2="end:Q",
            # Log, since the spike of near-zero weights would otherwise flatten the tails.
            y=alt.Y(
                "count:Q",
                title="weights (log scale)",
                scale=alt.Scale(type="log"),
                axis=alt.Axis(values=insights.log_ticks([1, rows["count"].max()])),
            ),
            y2=alt.datum(1),
            tooltip=[
                alt.Tooltip("start:Q", format=".3f", title="from"),
                alt.Tooltip("end:Q", format=".3f", title="to"),
                "count:Q",
            ],
        )
        .properties(height=HISTOGRAM_HEIGHT)
    )


def weight_grid_section(classifier: Classifier, grid: np.ndarray) -> None:
    """What a first-layer unit's weights mean, and the pictures of all of them."""
    W1 = classifier.weights[0]
    n_units = W1.shape[1]
    if len(classifier.weights) > 1:
        st.write(
            f"Each of the {n_units} first-layer units adds up all {W1.shape[0]} pixels, each "
            f"times its own weight. Drawn as a {IMAGE_SIDE}x{IMAGE_SIDE} picture, those weights "
            "show what the unit looks for: **red** "
            "pixels excite it, **blue** ones hold it back, and white ones do not matter to it. A "
            "unit fires when your strokes fall on its red parts and miss its blue ones, so many "
            "look like pieces of strokes, loops or edges rather than whole digits."
        )
    else:
        st.write(
            "This model has no hidden layer: each output digit adds up the pixels, each times "
            "its own weight, so each picture is a template of one digit. **Red** pixels speak "
            "for it, **blue** ones against it."
        )
    st.image(
        grid,
        caption=f"First-layer weights of all {n_units} units, row by row from unit 0; "
        "each picture is scaled to its own largest weight.",
    )


def unit_section(classifier: Classifier) -> None:
    """One first-layer unit, picked by number, enlarged with its extreme weights and bias."""
    W1 = classifier.weights[0]
    st.subheader("One unit up close")
    unit = st.number_input("Unit", min_value=0, max_value=W1.shape[1] - 1, value=0, step=1)
    tile = insights.weight_tiles(W1[:, [unit]])[0]
    column = W1[:, unit]
    with st.container(horizontal=True, vertical_alignment="center"):
        st.image(insights.upscale(tile, UNIT_SCALE), caption=f"unit {unit}, enlarged {UNIT_SCALE}x")
        with st.container(width="content"):
            st.metric("Strongest excitation", f"{column.max():+.3f}")
            st.metric("Strongest inhibition", f"{column.min():+.3f}")
            st.metric("Bias", f"{classifier.biases[0][unit]:+.3f}")
    if len(classifier.weights) > 1:
        st.page_link(
            st.Page(EXPLAIN_PAGE),
            label=f"The training digits that excite unit {unit} most",
            icon=":material/help:",
            query_params={VIEW_PARAM: UNIT_VIEW, UNIT_PARAM: str(unit)},
        )


def histograms_section(classifier: Classifier, histograms) -> None:
    """A histogram of each layer's weights, side by side, and the parameter counts."""
    st.subheader("Weights of every layer")
    st.write(
        "How the weights of each layer are spread, counted on a log scale. Most sit near zero: "
        "each unit relies on a small part of its inputs and all but ignores the rest."
    )
    layers = list(dict.fromkeys(histograms["layer"]))
    for column, layer in zip(st.columns(len(layers)), layers, strict=True):
        with column:
            rows = histograms[histograms["layer"] == layer]
            st.markdown(f"**{layer}**")
            st.altair_chart(histogram(rows), width="stretch")
            st.caption(f"{int(rows['count'].sum()):,} weights")
    st.caption(
        f"Weights in all: {sum(int(np.size(W)) for W in classifier.weights):,}; "
        f"biases: {sum(int(np.size(b)) for b in classifier.biases):,}."
    )


def main() -> None:
    """The page: all first-layer weights, one unit up close, and every layer's histogram."""
    st.title("Weights")
    classifier = classifier_or_stop()
    path = model_path()
    grid, histograms = weight_pictures(str(path), *insights.file_version(path), classifier)
    weight_grid_section(classifier, grid)
    unit_section(classifier)
    histograms_section(classifier, histograms)


main()
