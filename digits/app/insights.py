"""What the "Look inside" pages show, worked out without Streamlit: attributions, images, stats.

The pages (pages/*.py) cache what these functions return once per model file; everything here
is plain NumPy and pandas, so the tests call it directly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from digits.data.mnist import IMAGE_SIDE, N_CLASSES, Mnist
from digits.training.evaluation import confusion_matrix, predict_proba_batched
from digits.training.trainer import DataStory
from layers import sigmoid
from network import Classifier

# Diverging colours for weights (ColorBrewer RdBu ends and its near-white middle): red pixels
# excite a unit, blue ones inhibit it, white ones do not matter to it.
POSITIVE_RGB = np.array([178, 24, 43], np.float32)
ZERO_RGB = np.array([247, 247, 247], np.float32)
NEGATIVE_RGB = np.array([33, 102, 172], np.float32)
# With these activations the network is piecewise linear, so first-layer contributions plus the
# bias path add up exactly to the logit.
PIECEWISE_LINEAR = ("relu", "leaky_relu")
GREY_LEVELS = 255


# --- files -----------------------------------------------------------------------------------


def file_version(path: Path | str) -> tuple[int, int]:
    """(mtime_ns, size) of a file, to key caches on its version; (0, 0) when it is missing."""
    try:
        stat = Path(path).stat()
    except OSError:
        return 0, 0
    return stat.st_mtime_ns, stat.st_size


# --- images ----------------------------------------------------------------------------------


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """An image (H, W) or (H, W, C) enlarged `scale` times by nearest neighbour (square pixels)."""
    if scale < 1:
        raise ValueError(f"The scale must be at least 1, got {scale}.")
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def diverging_rgb(values: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] as RGB uint8 (..., 3): blue below 0, near-white at 0, red above."""
    v = np.clip(np.asarray(values, np.float32), -1, 1)[..., None]
    end = np.where(v > 0, POSITIVE_RGB, NEGATIVE_RGB)
    return (ZERO_RGB + np.abs(v) * (end - ZERO_RGB) + 0.5).astype(np.uint8)


def heat_rgb(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as RGB uint8 (..., 3) on a black-red-yellow-white heat scale."""
    v = np.clip(np.asarray(values, np.float32), 0, 1)[..., None]
    # Red rises over the first third, green over the second, blue over the last.
    rgb = np.clip(3 * v - np.array([0, 1, 2], np.float32), 0, 1)
    return (rgb * GREY_LEVELS + 0.5).astype(np.uint8)


def grey_rgb(images: np.ndarray) -> np.ndarray:
    """Greyscale uint8 images (..., H, W) as RGB uint8 (..., H, W, 3)."""
    return np.repeat(np.asarray(images, np.uint8)[..., None], 3, axis=-1)


def symmetric_unit(tiles: np.ndarray) -> np.ndarray:
    """Each tile (n, ...) divided by its own largest |value|, so it spans [-1, 1] around 0."""
    tiles = np.asarray(tiles, np.float32)
    peak = np.abs(tiles.reshape(len(tiles), -1)).max(axis=1)
    peak = np.where(peak > 0, peak, 1).reshape((-1,) + (1,) * (tiles.ndim - 1))
    return tiles / peak


def tile_grid(tiles: np.ndarray, columns: int, gap: int, fill: int = 0) -> np.ndarray:
    """Tiles (n, h, w, 3) uint8 laid out row by row, `columns` across, `gap` px of `fill` apart."""
    n, h, w, c = tiles.shape
    rows = math.ceil(n / columns)
    cells = np.full((rows * columns, h + gap, w + gap, c), fill, np.uint8)
    cells[:n, :h, :w] = tiles
    grid = cells.reshape(rows, columns, h + gap, w + gap, c).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * (h + gap), columns * (w + gap), c)
    return grid[: grid.shape[0] - gap, : grid.shape[1] - gap]


def weight_tiles(W: np.ndarray) -> np.ndarray:
    """First-layer weights (784, n) as n diverging RGB images (n, 28, 28, 3), each scaled alone."""
    images = W.T.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    return diverging_rgb(symmetric_unit(images))


def weight_grid(W: np.ndarray, columns: int, scale: int, gap: int) -> np.ndarray:
    """All first-layer weight images in one RGB uint8 picture, `columns` units across."""
    tiles = np.stack([upscale(tile, scale) for tile in weight_tiles(W)])
    return tile_grid(tiles, columns, gap)


def framed(tile: np.ndarray, width: int, rgb: tuple[int, int, int]) -> np.ndarray:
    """A copy of an RGB tile (h, w, 3) with a `width`-pixel border painted in `rgb`."""
    out = tile.copy()
    out[:width], out[-width:], out[:, :width], out[:, -width:] = rgb, rgb, rgb, rgb
    return out


# --- inside the network ----------------------------------------------------------------------


def grid_columns(n: int) -> int:
    """Columns for showing n units as a near-square grid: the power of two at or above sqrt(n)."""
    return 2 ** math.ceil(math.log2(math.sqrt(n))) if n > 1 else 1


def grid_frame(values: np.ndarray) -> pd.DataFrame:
    """Heatmap rows for unit values (n,): unit index, grid row and column, value."""
    values = np.asarray(values, np.float64).reshape(-1)
    columns = grid_columns(len(values))
    unit = np.arange(len(values))
    return pd.DataFrame(
        {"unit": unit, "row": unit // columns, "column": unit % columns, "value": values}
    )


@dataclass(frozen=True)
class Attribution:
    """How much each first-layer unit adds to one output score, for one input.

    contributions (n1,) is activation times the score's gradient with respect to it; `exact`
    says whether they plus `bias_path` sum to the score (true for ReLU-family networks).
    """

    target: int
    contributions: np.ndarray
    score: float
    exact: bool

    @property
    def bias_path(self) -> float:
        """The part of the score that does not come from the first-layer contributions."""
        return self.score - float(self.contributions.sum())

    def top(self, k: int) -> np.ndarray:
        """Indices of the k units that add the most to the score, largest first, positives only."""
        order = np.argsort(-self.contributions, kind="stable")[:k]
        return order[self.contributions[order] > 0]


def first_layer_attribution(classifier: Classifier, x: np.ndarray, target: int) -> Attribution:
    """Contributions of the first hidden layer's units to logit `target` for one input x (784,).

    For a ReLU network the map from the first hidden layer to the logits is linear once the
    input fixes which later units are on, so h1_j times that map's weight is unit j's exact share.
    """
    if len(classifier.weights) < 2:
        raise ValueError("This model has no hidden layer, so there are no units to attribute to.")
    name = classifier.params.get("activation", "relu")
    trace = classifier.trace(np.asarray(x, np.float32)[None])
    h1, score = trace.outputs[0], float(trace.logits[0, target])
    grad = trace.backward(np.eye(trace.logits.shape[1], dtype=np.float32)[[target]])[1]
    return Attribution(target, (h1 * grad)[0], score, name in PIECEWISE_LINEAR)


def output_steps(logits: np.ndarray, output: str = "softmax") -> pd.DataFrame:
    """How scores (10,) become probabilities: digit, logit, positive score, probability.

    Softmax's positive score is exp(logit - max logit); a sigmoid-output model squashes each
    logit instead. Either way the probabilities are the positive scores over their sum.
    """
    logits = np.asarray(logits, np.float64).reshape(-1)
    positive = np.exp(logits - logits.max()) if output == "softmax" else sigmoid(logits)
    return pd.DataFrame(
        {
            "digit": [str(d) for d in range(len(logits))],
            "logit": logits,
            "positive": positive,
            "probability": positive / positive.sum(),
        }
    )


# --- weights ---------------------------------------------------------------------------------


def weight_histograms(weights: list[np.ndarray], bins: int) -> pd.DataFrame:
    """Histogram rows of each layer's weights: layer ("784 → 128"), bin start and end, count."""
    parts = []
    for W in weights:
        counts, edges = np.histogram(W, bins=bins)
        parts.append(
            pd.DataFrame(
                {
                    "layer": f"{W.shape[0]} → {W.shape[1]}",
                    "start": edges[:-1],
                    "end": edges[1:],
                    "count": counts,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


# --- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """A classifier's results on labelled images: proba (N, 10), labels and predictions (N,)."""

    proba: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    confusion: np.ndarray

    @property
    def accuracy(self) -> float:
        """Fraction of images read right."""
        return float(np.trace(self.confusion) / max(self.confusion.sum(), 1))

    @property
    def mistakes(self) -> int:
        """How many images were read wrong."""
        return int(self.confusion.sum() - np.trace(self.confusion))


def evaluate(classifier: Classifier, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Score a classifier on uint8 images (N, 28, 28) with labels (N,)."""
    proba = predict_proba_batched(classifier.predict_proba, images)
    predicted = proba.argmax(axis=1)
    return Evaluation(proba, np.asarray(labels), predicted, confusion_matrix(labels, predicted))


def class_report(confusion: np.ndarray) -> pd.DataFrame:
    """Per-class rows from a confusion matrix (true down, predicted across).

    precision = right / all read as that digit, recall = right / all of that digit; NaN when a
    digit never occurs or is never predicted.
    """
    right = np.diag(confusion).astype(np.float64)
    actual, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, right / predicted, np.nan)
        recall = np.where(actual > 0, right / actual, np.nan)
    return pd.DataFrame(
        {
            "digit": [str(d) for d in range(len(confusion))],
            "images": actual,
            "read right": right.astype(np.int64),
            "precision": precision,
            "recall": recall,
        }
    )


def confusion_frame(confusion: np.ndarray) -> pd.DataFrame:
    """Heatmap rows of a confusion matrix: true, predicted, count, mistakes (0 on the diagonal)."""
    n = len(confusion)
    true, predicted = np.divmod(np.arange(n * n), n)
    counts = confusion.reshape(-1)
    return pd.DataFrame(
        {
            "true": true,
            "predicted": predicted,
            "count": counts,
            "mistakes": np.where(true == predicted, 0, counts),
            "correct": true == predicted,
        }
    )


def worst_confusion(confusion: np.ndarray) -> tuple[int, int]:
    """The (true, predicted) pair of different digits that is mixed up most often."""
    off = confusion.astype(np.int64).copy()
    np.fill_diagonal(off, -1)
    true, predicted = np.unravel_index(np.argmax(off), off.shape)
    return int(true), int(predicted)


def log_ticks(values) -> list[float]:
    """Ticks for a log axis over the positive `values`: 1, 2 and 5 times powers of ten, from the
    power of ten at or below the smallest to the one at or above the largest; over more than
    two powers of ten, the powers alone, as more labels would not fit."""
    positive = np.asarray(values, dtype=float)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    if not len(positive):
        return []
    low, high = np.floor(np.log10(positive.min())), np.ceil(np.log10(positive.max()))
    decades = 10.0 ** np.arange(low, high + 1)
    steps = (1,) if high - low > 2 else (1, 2, 5)
    ticks = [float(f"{m * d:.12g}") for d in decades for m in steps]
    return [t for t in ticks if t <= decades[-1]]


def mistake_kind(true: int | None, predicted: int | None) -> str:
    """The kind of mistake a pair of pickers picks, in words ("4s read as 9"); None is any."""
    if true is None and predicted is None:
        return "every digit read as another"
    if predicted is None:
        return f"{true}s read as another digit"
    if true is None:
        return f"other digits read as {predicted}"
    return f"{true}s read as {predicted}"


def misclassified(
    evaluation: Evaluation, true: int | None = None, predicted: int | None = None
) -> np.ndarray:
    """Indices of wrongly read images, optionally of one true and one predicted digit.

    The most confident mistakes come first.
    """
    wrong = evaluation.predicted != evaluation.labels
    if true is not None:
        wrong &= evaluation.labels == true
    if predicted is not None:
        wrong &= evaluation.predicted == predicted
    index = np.flatnonzero(wrong)
    confidence = evaluation.proba[index, evaluation.predicted[index]]
    return index[np.argsort(-confidence, kind="stable")]


def percent_text(p: float, decimals: int = 0) -> str:
    """A probability as a percentage that never rounds to a false 0% or 100%, e.g. ">99.9%"."""
    step = 10.0 ** -(decimals + 2)  # the last digit shown, as a fraction
    if p >= 1 - step / 2:
        return f">{1 - step:.{decimals}%}"
    if 0 < p < step / 2:
        return f"<{step:.{decimals}%}"
    return f"{p:.{decimals}%}"


def top_k_text(proba: np.ndarray, k: int, sep: str = " · ") -> str:
    """The k most probable digits with their probabilities, e.g. "9: 62% · 4: 30% · 7: 5%"."""
    order = np.argsort(-np.asarray(proba), kind="stable")[:k]
    return sep.join(f"{d}: {percent_text(float(proba[d]))}" for d in order)


# --- dataset ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetStats:
    """Summaries of MNIST: samples (10, k, 28, 28) uint8 per class, label counts (10,) of each
    split, mean training image per class (10, 28, 28) in [0, 1], and training pixel counts per
    intensity (256,)."""

    samples: np.ndarray
    train_counts: np.ndarray
    test_counts: np.ndarray
    mean_images: np.ndarray
    pixel_counts: np.ndarray

    @property
    def zero_share(self) -> float:
        """Fraction of all training pixels that are exactly 0 (background)."""
        return float(self.pixel_counts[0] / self.pixel_counts.sum())


def dataset_stats(data: Mnist, per_class: int, rng: np.random.Generator) -> DatasetStats:
    """Summaries of the training set (and the test labels), with per_class random samples."""
    images, labels = data.train_images, data.train_labels
    samples, means = [], []
    pixel_counts = np.zeros(GREY_LEVELS + 1, np.int64)
    # One class at a time keeps the temporaries at a tenth of the 47 M training pixels.
    for digit in range(N_CLASSES):
        mine = images[labels == digit]
        samples.append(mine[rng.choice(len(mine), per_class, replace=False)])
        means.append(mine.mean(axis=0, dtype=np.float32) / GREY_LEVELS)
        pixel_counts += np.bincount(mine.reshape(-1), minlength=GREY_LEVELS + 1)
    return DatasetStats(
        samples=np.stack(samples),
        train_counts=np.bincount(labels, minlength=N_CLASSES),
        test_counts=np.bincount(data.test_labels, minlength=N_CLASSES),
        mean_images=np.stack(means),
        pixel_counts=pixel_counts,
    )


def label_share_frame(train_counts: np.ndarray, test_counts: np.ndarray) -> pd.DataFrame:
    """Bar rows per digit and split: digit, split ("train"/"test"), count, share of the split."""
    parts = [
        pd.DataFrame(
            {
                "digit": [str(d) for d in range(len(counts))],
                "split": split,
                "count": counts,
                "share": counts / counts.sum(),
            }
        )
        for split, counts in (("train", train_counts), ("test", test_counts))
    ]
    return pd.concat(parts, ignore_index=True)


def intensity_frame(pixel_counts: np.ndarray, bin_width: int) -> pd.DataFrame:
    """Histogram rows of the non-zero intensities 1-255: bin start, end (inclusive), count, and
    share of all non-zero pixels."""
    starts = np.arange(1, len(pixel_counts), bin_width)
    counts = np.add.reduceat(pixel_counts[1:], starts - 1)
    ends = np.minimum(starts + bin_width - 1, len(pixel_counts) - 1)
    share = counts / max(int(counts.sum()), 1)
    return pd.DataFrame({"start": starts, "end": ends, "count": counts, "share": share})


# --- training history ------------------------------------------------------------------------

HISTORY_COLUMNS = ("epoch", "loss", "train_accuracy", "val_accuracy", "val_loss")


@dataclass(frozen=True)
class History:
    """A model's training history: its config and one row per epoch (epoch, loss, ...).

    `source` (checkpoint.FROM_TRAIN_PY or FROM_TRAIN_PAGE) and `story` (what it learnt from;
    None when fine-tuned) are None in files written before they were recorded.
    """

    config: dict
    epochs: pd.DataFrame
    source: str | None = None
    story: DataStory | None = None


def read_history(path: Path | str) -> History | None:
    """The history file train.py writes beside a model, or None when there is none.

    A file that is not such a history raises ValueError with one sentence saying so.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    fix = "`python train.py` writes a new one"
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path.name} is not valid JSON ({exc}); {fix}.") from None
    epochs = data.get("epochs") if isinstance(data, dict) else None
    if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
        raise ValueError(f"{path.name} has no list of epochs; {fix}.")
    frame = pd.DataFrame(epochs)
    missing = [c for c in HISTORY_COLUMNS if c not in frame.columns]
    if epochs and missing:
        raise ValueError(f"{path.name} lacks {', '.join(missing)} in its epochs; {fix}.")
    story = data.get("data")
    try:
        story = DataStory(**story) if isinstance(story, dict) else None
    except TypeError:
        raise ValueError(f"{path.name} has a data summary this app does not know; {fix}.") from None
    return History(data.get("config") or {}, frame, data.get("source"), story)


def curves(epochs: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Long rows for a line chart: epoch, curve (the display name from `names`), value."""
    long = epochs.melt(id_vars="epoch", value_vars=list(names), var_name="curve")
    long["curve"] = long["curve"].map(names)
    return long
