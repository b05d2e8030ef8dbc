"""Training history: loss and accuracy per epoch, from the history file beside the model."""

from __future__ import annotations

import altair as alt
import streamlit as st

from digits.app import insights
from digits.training.checkpoint import FROM_TRAIN_PAGE, FROM_TRAIN_PY, history_path
from pages.shared import TRAINING_COLOUR, VALIDATION_COLOUR, cached_history, model_path

# Streamlit fits a chart's legend and axes into this height as well as its plot.
CHART_HEIGHT = 340
LOSS_CURVES = {"loss": "training", "val_loss": "validation"}
ACCURACY_CURVES = {"train_accuracy": "training", "val_accuracy": "validation"}
CURVE_COLOURS = {"training": TRAINING_COLOUR, "validation": VALIDATION_COLOUR}
NO_HISTORY = "This model has no training history file; `python train.py` writes one."


def curve_chart(
    rows, title: str, axis_format: str, scale: alt.Scale, ticks: list[float] | None = None
) -> alt.Chart:
    """One line per curve over the epochs, the values on `scale` (with `ticks`, if given)."""
    return (
        alt.Chart(rows)
        .mark_line(point=alt.OverlayMarkDef(size=12))
        .encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y(
                "value:Q",
                title=title,
                scale=scale,
                axis=alt.Axis(format=axis_format, values=ticks or alt.Undefined),
            ),
            color=alt.Color(
                "curve:N",
                scale=alt.Scale(domain=list(CURVE_COLOURS), range=list(CURVE_COLOURS.values())),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["epoch:Q", "curve:N", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=CHART_HEIGHT)
    )


def history_or_stop(file) -> insights.History:
    """The model's training history, or an error or a note and a stop when there is none."""
    try:
        history = cached_history(file)
    except ValueError as exc:
        st.error(str(exc))
        st.stop()
    if history is None or history.epochs.empty:
        st.info(NO_HISTORY)
        st.stop()
    return history


# What the figures mean, in a line each (validation's size comes from the model's own story).
EPOCH = "**Epoch**: one pass over every training image, in a new random order each time."
LOSS = {
    "cross_entropy": "**Loss**: how far its answers are from the truth, as minus the log of the "
    "probability it gives the right digit, averaged; lower is better.",
    "mse": "**Loss**: how far its answers are from the truth, as the mean squared difference "
    "between its ten outputs and the right digit's one-hot vector; lower is better.",
}
VALIDATION = (
    "**Validation accuracy**: the share of {validation} digits it reads right; it never trains "
    "on them, so this is how well it reads digits it has not seen."
)


def origin(history: insights.History) -> str:
    """Where the model came from and what it learnt from, in a sentence."""
    made = {
        FROM_TRAIN_PY: "Made by `python train.py`",
        FROM_TRAIN_PAGE: "Made on the Train page",
    }.get(history.source or "", "Where it was made is not recorded")
    if "finetune" in history.config:
        samples = history.config.get("samples")
        return f"{made}, by fine-tuning a model on {samples} of your samples."
    if history.story is None:
        return f"{made}."
    return f"{made}; it learnt from {history.story.sentence()}."


def meanings(history: insights.History) -> None:
    """A line each on what an epoch, the loss and the validation accuracy are."""
    validation = (
        "the held-out validation"
        if history.story is None
        else f"the {history.story.validation:,} held-out validation"
    )
    loss = LOSS.get(str(history.config.get("loss", "cross_entropy")), "")
    st.caption("  \n".join(filter(None, [EPOCH, loss, VALIDATION.format(validation=validation)])))


def summary(epochs) -> None:
    """The number of epochs, the best validation accuracy and the training time."""
    best = epochs.loc[epochs["val_accuracy"].idxmax()]
    with st.container(horizontal=True):
        st.metric("Epochs", f"{len(epochs)}")
        st.metric(
            "Best validation accuracy", f"{best['val_accuracy']:.2%}", help=f"epoch {best['epoch']}"
        )
        if "seconds" in epochs:
            st.metric("Training time", f"{epochs['seconds'].sum():.0f} s")


def curves_section(epochs, config: dict) -> None:
    """The loss and accuracy curves per epoch, for training and validation."""
    loss_name = str(config.get("loss", "training")).replace("_", "-")
    st.subheader("Loss")
    # On a log scale, so the slow gains of the later epochs stay visible next to the first drop.
    loss_rows = insights.curves(epochs, LOSS_CURVES)
    st.altair_chart(
        curve_chart(
            loss_rows,
            f"{loss_name} loss (log scale)",
            ".2~f",
            alt.Scale(type="log"),
            insights.log_ticks(loss_rows["value"]),
        ),
        width="stretch",
    )
    st.subheader("Accuracy")
    accuracy_rows = insights.curves(epochs, ACCURACY_CURVES)
    st.altair_chart(
        curve_chart(accuracy_rows, "accuracy", ".0%", alt.Scale(zero=False)), width="stretch"
    )
    if config.get("augment"):
        st.caption(
            "Training figures are measured on randomly distorted digits while the weights still "
            "change within the epoch, so they lie below the validation figures."
        )


def main() -> None:
    """The page: a summary of the run, its curves, and the settings it was trained with."""
    st.title("Training history")
    file = history_path(model_path())
    history = history_or_stop(file)
    st.write(origin(history))
    summary(history.epochs)
    meanings(history)
    curves_section(history.epochs, history.config)
    if history.config:
        with st.expander("Training settings"):
            st.json(history.config, expanded=True)


main()
