"""Scoring a classifier on labelled images: batched prediction, accuracy, confusion matrix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from digits.data.drawn_digits import drawn_test_drawings
from digits.data.mnist import IMAGE_SIDE, N_CLASSES, Mnist, to_input, to_uint8
from digits.data.preprocess import preprocess

# Rows per forward pass when scoring a whole set: big enough for fast matrix products,
# small enough to keep the activations of 10,000 images out of memory at once.
EVAL_BATCH = 2500


def predict_proba_batched(
    predict_proba: Callable[[np.ndarray], np.ndarray], images: np.ndarray
) -> np.ndarray:
    """Probabilities for uint8 images (N, 28, 28); returns (N, 10) float32."""
    parts = [
        predict_proba(to_input(images[i : i + EVAL_BATCH]))
        for i in range(0, len(images), EVAL_BATCH)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, N_CLASSES), np.float32)


def accuracy(proba: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose most probable class is the label; proba (N, C), labels (N,)."""
    return float(np.mean(proba.argmax(axis=1) == labels)) if len(labels) else 0.0


@dataclass(frozen=True)
class DrawnCheck:
    """MNIST test digits drawn on the app's canvas and read by its preprocessing, to score models
    on input like the user's; a drawing the preprocessing finds no digit in counts as misread."""

    images: np.ndarray  # (n, 28, 28) uint8, blank where no digit was found
    labels: np.ndarray  # (n,)
    found: np.ndarray  # (n,) bool

    @classmethod
    def make(cls, mnist: Mnist, n: int, seed: int = 0) -> DrawnCheck:
        drawings = drawn_test_drawings("canvas", n, seed, mnist)
        inputs = [preprocess(drawing).image for drawing in drawings]
        labels = np.array(mnist.test_labels[:n])
        blank = np.zeros((IMAGE_SIDE, IMAGE_SIDE), np.float32)
        images = to_uint8(np.stack([blank if x is None else x for x in inputs]))
        return cls(images, labels, np.array([x is not None for x in inputs]))

    def accuracy(self, predict_proba: Callable[[np.ndarray], np.ndarray]) -> float:
        predicted = predict_proba_batched(predict_proba, self.images).argmax(axis=1)
        return float(np.mean((predicted == self.labels) & self.found))


def mnist_test_accuracy(predict_proba: Callable[[np.ndarray], np.ndarray], mnist: Mnist) -> float:
    """Accuracy on MNIST's 10,000 test images, the figure every model is judged by."""
    return accuracy(predict_proba_batched(predict_proba, mnist.test_images), mnist.test_labels)


def per_digit(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    digits: tuple[int, ...],
) -> dict[int, float]:
    """Accuracy on uint8 images (N, 28, 28) overall (key -1) and for each of `digits`."""
    predicted = predict_proba_batched(predict_proba, images).argmax(axis=1)
    scores = {digit: float(np.mean(predicted[labels == digit] == digit)) for digit in digits}
    return {-1: float(np.mean(predicted == labels)), **scores}


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n: int = N_CLASSES) -> np.ndarray:
    """Counts (n, n) with true classes on rows and predicted classes on columns."""
    return np.bincount(labels.astype(np.int64) * n + predicted, minlength=n * n).reshape(n, n)


def format_confusion(matrix: np.ndarray) -> str:
    """The confusion matrix as aligned text rows, true classes down, predictions across."""
    width = max(5, len(str(matrix.max())) + 1)
    header = "true\\pred" + "".join(f"{c:>{width}}" for c in range(len(matrix)))
    rows = [f"{r:>9}" + "".join(f"{v:>{width}}" for v in row) for r, row in enumerate(matrix)]
    return "\n".join([header, *rows])


@dataclass(frozen=True)
class Calibration:
    """How sure the model is against how often it is right, in equal-width confidence bins.

    confidence, accuracy and counts are (n_bins,): each bin's mean top probability, its share of
    right answers (NaN when empty) and its number of answers; `ece` is the expected calibration
    error, the count-weighted mean gap between the two.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray
    ece: float


def calibration(proba: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> Calibration:
    """The reliability diagram's bins and the ECE of probabilities (N, C) for labels (N,)."""
    top = proba.max(axis=1).astype(np.float64)
    right = (proba.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # A top probability of exactly 1.0 belongs to the last bin, not one past it.
    which = np.minimum(np.digitize(top, edges[1:-1], right=True), n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, top, n_bins) / counts
        hits = np.bincount(which, right, n_bins) / counts
    gaps = np.nan_to_num(np.abs(hits - confidence))
    return Calibration(edges, confidence, hits, counts, float(gaps @ counts / max(len(top), 1)))


# The share of validation digits the refusal may turn away: the threshold is the highest top
# probability under which no more of them fall.
MAX_DIGIT_REFUSAL = 0.005


def refusal_curve(
    digit_proba: np.ndarray, other_proba: np.ndarray, thresholds: np.ndarray
) -> np.ndarray:
    """(T, 3): threshold, share of digits and share of non-digits whose top probability is below."""
    digit_top, other_top = digit_proba.max(axis=1), other_proba.max(axis=1)
    return np.stack(
        [
            thresholds,
            (digit_top[:, None] < thresholds).mean(axis=0),
            (other_top[:, None] < thresholds).mean(axis=0),
        ],
        axis=1,
    )


def choose_refusal(digit_proba: np.ndarray, max_refused: float = MAX_DIGIT_REFUSAL) -> float:
    """The top-probability threshold under which at most `max_refused` of (N, 10) digits fall."""
    return float(np.quantile(digit_proba.max(axis=1), max_refused))
