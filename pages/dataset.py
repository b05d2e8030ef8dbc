"""Dataset: what the network learnt from, the MNIST training set, in samples, counts and pixels."""

from __future__ import annotations

import altair as alt
import numpy as np
import streamlit as st

from digits.app import insights
from digits.data.mnist import DATA_DIR, DatasetError, load_mnist
from pages.shared import (
    OTHER_COLOUR,
    TOP_COLOUR,
    default_story,
    model_name,
    model_path,
    model_story,
)

PER_CLASS = 10
SAMPLE_SEED = 0
# The 10x10 sample grid at 2x with 2 px gaps: 578 px square, shrunk to fit a phone.
SAMPLE_SCALE, SAMPLE_GAP = 2, 2
# Mean images at 2x: 56 px, all ten in a row on a desktop, five on a phone.
MEAN_SCALE = 2
INTENSITY_BIN = 16
# Streamlit fits a chart's legend and axes into this height as well as its plot.
CHART_HEIGHT = 300
SPLIT_COLOURS = {"train": OTHER_COLOUR, "test": TOP_COLOUR}


@st.cache_data(show_spinner="Summing up the MNIST digits…")
def mnist_stats(data_dir: str) -> insights.DatasetStats:
    """Samples, label counts, mean images and pixel counts of MNIST in data_dir, once a server."""
    return insights.dataset_stats(
        load_mnist(data_dir), PER_CLASS, np.random.default_rng(SAMPLE_SEED)
    )


def share_chart(rows) -> alt.Chart:
    """Per digit, the share of each split's images, train and test side by side."""
    return (
        alt.Chart(rows)
        .mark_bar()
        .encode(
            x=alt.X("digit:N", title="digit", axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("split:N", sort=list(SPLIT_COLOURS)),
            y=alt.Y("share:Q", title="share of the split", axis=alt.Axis(format="%")),
            color=alt.Color(
                "split:N",
                sort=list(SPLIT_COLOURS),
                scale=alt.Scale(domain=list(SPLIT_COLOURS), range=list(SPLIT_COLOURS.values())),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["digit:N", "split:N", "count:Q", alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(height=CHART_HEIGHT)
    )


def intensity_chart(rows) -> alt.Chart:
    """Counts of the non-zero pixel intensities, in bins."""
    return (
        alt.Chart(rows)
        .mark_bar(color=OTHER_COLOUR)
        .encode(
            x=alt.X("start:Q", bin="binned", title="intensity (1 = faintest, 255 = full ink)"),
            x2="end:Q",
            y=alt.Y("share:Q", title="share of the inked pixels", axis=alt.Axis(format="%")),
            tooltip=[
                alt.Tooltip("start:Q", title="from"),
                alt.Tooltip("end:Q", title="to"),
                alt.Tooltip("count:Q", title="pixels", format=","),
                alt.Tooltip("share:Q", format=".1%"),
            ],
        )
        .properties(height=CHART_HEIGHT)
    )


def stats_or_stop() -> insights.DatasetStats:
    """The dataset's summary, or an error and a stop when MNIST cannot be read."""
    try:
        return mnist_stats(str(DATA_DIR))
    except DatasetError as exc:
        st.error(str(exc))
        st.stop()


def samples_section(stats: insights.DatasetStats, side: int) -> None:
    """Ten random training digits of each class, as one grid."""
    st.subheader("Ten of each digit")
    tiles = insights.grey_rgb(stats.samples.reshape(-1, side, side))
    tiles = np.stack([insights.upscale(tile, SAMPLE_SCALE) for tile in tiles])
    grid = insights.tile_grid(tiles, PER_CLASS, SAMPLE_GAP, fill=128)
    st.image(grid, caption="Random training digits, one row per digit from 0 at the top.")


def counts_section(stats: insights.DatasetStats) -> None:
    """Each digit's share of the training and test sets."""
    st.subheader("How many of each digit")
    st.altair_chart(
        share_chart(insights.label_share_frame(stats.train_counts, stats.test_counts)),
        width="stretch",
    )
    fewest, most = int(stats.train_counts.argmin()), int(stats.train_counts.argmax())
    st.caption(
        f"Nearly balanced: the training set has {stats.train_counts[fewest]:,} of its rarest "
        f"digit ({fewest}) and {stats.train_counts[most]:,} of its most common ({most})."
    )


def means_section(stats: insights.DatasetStats) -> None:
    """The mean training image of each digit, as a heat map."""
    st.subheader("The average digit")
    with st.container(horizontal=True, gap="small"):
        for digit, mean in enumerate(stats.mean_images):
            # Scaled to its own brightest pixel, so faint averages still show their shape.
            heat = insights.heat_rgb(mean / max(float(mean.max()), 1e-12))
            st.image(insights.upscale(heat, MEAN_SCALE), caption=str(digit))
    st.caption(
        "Every training image of a digit averaged, pixel by pixel: bright where most writers put "
        "ink, dark where few do. The blur shows how much handwriting varies."
    )


def intensities_section(stats: insights.DatasetStats, side: int) -> None:
    """How much of each image is background, and a histogram of the inked pixels."""
    st.subheader("Pixel intensities")
    with st.container(horizontal=True):
        st.metric("Background pixels (exactly 0)", f"{stats.zero_share:.1%}")
        inked = (1 - stats.zero_share) * side * side
        st.metric("Inked pixels per digit", f"{inked:.0f} of {side * side}")
    st.altair_chart(
        intensity_chart(insights.intensity_frame(stats.pixel_counts, INTENSITY_BIN)),
        width="stretch",
    )
    st.caption(
        "The zero pixels are left out, or they would flatten every other bar. Most ink is "
        "nearly full strength; the rest is the soft edge around each stroke."
    )


def learnt_from() -> str:
    """What the model in use learnt from, in the words the Train and History pages use."""
    path = model_path()
    story = model_story(path)
    if story is not None:
        return f"The app's model, {model_name(path)}, learnt from {story.sentence()}."
    story = default_story()
    if story is None:
        return ""
    return f"The default recipe learns from {story.sentence()}."


def main() -> None:
    """The page: what MNIST is, then its samples, counts, mean digits and pixel intensities."""
    st.title("Dataset")
    stats = stats_or_stop()
    n_train, n_test = int(stats.train_counts.sum()), int(stats.test_counts.sum())
    side = stats.mean_images.shape[-1]
    st.write(
        f"MNIST has {n_train:,} handwritten digits for training and {n_test:,} kept apart for "
        f"testing, each {side}x{side} grey pixels, white ink on black. {learnt_from()}"
    )
    samples_section(stats, side)
    counts_section(stats)
    means_section(stats)
    intensities_section(stats, side)


main()
