"""Scoring a classifier on labelled images: batched prediction, accuracy, confusion matrix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from digits.data.drawn_digits import drawn_test_set
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
        drawings, labels = drawn_test_set("canvas", n, seed, mnist)
        inputs = [preprocess(drawing).image for drawing in drawings]
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


def reliability(proba: np.ndarray, labels: np.ndarray, bins: int = 10) -> tuple[np.ndarray, float]:
    """(bins, 3) rows of mean confidence, accuracy and share of rows per confidence bin; the ECE.

    The expected calibration error is the share-weighted gap between confidence and accuracy.
    """
    top = proba.max(axis=1)
    right = proba.argmax(axis=1) == labels
    which = np.minimum((top * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=top, minlength=bins) / count
        accuracy_ = np.bincount(which, weights=right, minlength=bins) / count
    share = count / max(len(top), 1)
    ece = float(np.nansum(share * np.abs(confidence - accuracy_)))
    return np.stack([confidence, accuracy_, share], axis=1), ece
