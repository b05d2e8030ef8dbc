"""Why the network said what it did, worked out without Streamlit: saliency, edits, moves, units.

Every explanation comes from the network's own backward pass (network.Classifier.trace):
- which pixels pushed towards a digit: integrated gradients from a blank input;
- what would make it another digit: small steps on the input along the gradient;
- how it copes with moving: the same drawing shifted, scaled, rotated and re-inked, read with
  and without the app's preprocessing;
- what a first-layer unit looks for: the training digits that excite it most.

Saliency is integrated gradients rather than gradient x input because its pixel scores add up
to what the drawing changed: the logit for the drawing minus the logit for a blank pad. Gradient
x input only adds up for a network without hidden layers; for a ReLU network the gradient at the
drawing alone tells how the logit would move for a tiny change, not how the ink got it there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from digits.data.augment import affine_matrices, stroke_thickness, warp_affine
from digits.data.mnist import IMAGE_SIDE, to_input, to_uint8
from digits.data.preprocess import Preprocessed, preprocess
from layers import softmax
from network import Classifier

# Integrated gradients as a midpoint sum over this many points from blank to the drawing; on
# MNIST test digits the scores then add up to the logit change within a few percent.
IG_STEPS = 32

# No edit step changes more ink than one dab of the pen: the 20 px pen on the 280 px pad is
# 2 px wide in the network's 28x28 input, so a dab covers 2x2 pixels, 4 pixels of full ink.
STEP_INK = 4.0
# That ink goes to the pixels whose change moves the answer most, half a full pixel each:
# steepest ascent under an ink budget moves the pixels with the largest gradient.
STEP_PIXELS = 8
# Steps an edit may take before it gives up: 200 pixels of ink, more than most digits hold.
STEP_BUDGET = 50


# --- saliency --------------------------------------------------------------------------------


def one_hot_difference(n_classes: int, digit: int, other: int | None = None) -> np.ndarray:
    """Output weights (n_classes,) float32 picking logit `digit`, minus logit `other` if given."""
    weights = np.zeros(n_classes, np.float32)
    weights[digit] = 1
    if other is not None:
        weights[other] -= 1
    return weights


def integrated_gradients(classifier: Classifier, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Integrated gradients (784,) of weights @ logits from a blank input to x (784,)."""
    alphas = (np.arange(IG_STEPS, dtype=np.float32) + 0.5) / IG_STEPS
    trace = classifier.trace(alphas[:, None] * x[None])
    d_logits = np.broadcast_to(np.asarray(weights, trace.logits.dtype), trace.logits.shape)
    return x * trace.backward(d_logits)[0].mean(axis=0)


def gradient_times_input(classifier: Classifier, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The gradient of weights @ logits at x (784,), times x: (784,)."""
    trace = classifier.trace(x[None])
    return x * trace.backward(np.asarray(weights, trace.logits.dtype)[None])[0][0]


@dataclass(frozen=True)
class Saliency:
    """Which pixels pushed a score up or down: scores (28, 28), summing to about `change`.

    The score is logit `digit`, minus logit `other` when one is given; `change` is its value
    for the drawing minus its value for a blank input.
    """

    digit: int
    other: int | None
    scores: np.ndarray
    change: float

    @property
    def towards(self) -> float:
        """What the pixels pushing the score up add together."""
        return float(self.scores[self.scores > 0].sum())

    @property
    def against(self) -> float:
        """What the pixels pushing the score down take away together (a negative number)."""
        return float(self.scores[self.scores < 0].sum())


def saliency(classifier: Classifier, x: np.ndarray, digit: int, other: int | None = None):
    """Integrated-gradient scores of logit `digit` (minus logit `other`) for one input x (784,)."""
    x = np.asarray(x, np.float32).reshape(-1)
    weights = one_hot_difference(classifier.sizes[-1], digit, other)
    scores = integrated_gradients(classifier, x, weights)
    ends = classifier.trace(np.stack([x, np.zeros_like(x)])).logits @ weights
    return Saliency(digit, other, scores.reshape(IMAGE_SIDE, IMAGE_SIDE), float(ends[0] - ends[1]))


def overlay_frame(image: np.ndarray, values: np.ndarray, labels: tuple[str, str]) -> pd.DataFrame:
    """Heatmap rows for values (28, 28) over an input image (28, 28) in [0, 1].

    Columns: row, column, ink (the input), value, kind (labels[0] above 0, labels[1] below, ""
    at 0) and strength (|value| over the largest |value|, in [0, 1]).
    """
    values = np.asarray(values, np.float64).reshape(-1)
    peak = np.abs(values).max()
    rows, columns = np.divmod(np.arange(values.size), IMAGE_SIDE)
    return pd.DataFrame(
        {
            "row": rows,
            "column": columns,
            "ink": np.asarray(image, np.float64).reshape(-1),
            "value": values,
            "kind": np.where(values > 0, labels[0], np.where(values < 0, labels[1], "")),
            "strength": np.abs(values) / peak if peak > 0 else np.zeros_like(values),
        }
    )


# --- edits towards another digit -------------------------------------------------------------


def edit_steps(
    classifier: Classifier, x: np.ndarray, targets: np.ndarray, steps: int = STEP_BUDGET
) -> np.ndarray:
    """Inputs (steps + 1, N, 784) from x (N, 784) towards digits `targets` (N,), step by step.

    Each step raises log p(target) by moving the STEP_PIXELS pixels with the largest gradient
    that can still move that way by STEP_INK / STEP_PIXELS each, within [0, 1]; an input stops
    changing once the network reads it as its target.
    """
    x = np.array(x, np.float32)
    n = len(x)
    targets = np.asarray(targets)
    one_hot = np.eye(classifier.sizes[-1], dtype=np.float32)[targets]
    amount = np.float32(STEP_INK / STEP_PIXELS)
    frames = [x.copy()]
    for _ in range(steps):
        trace = classifier.trace(x)
        done = trace.logits.argmax(axis=1) == targets
        if done.all():
            frames.append(x.copy())
            continue
        # d log p(target) / d logits = one_hot - softmax
        grad = trace.backward(one_hot - softmax(trace.logits.copy()))[0]
        room = np.where(grad > 0, 1 - x, x)  # how far each pixel can still move the useful way
        gain = np.where(room > 0, np.abs(grad), 0)
        picked = np.argpartition(-gain, STEP_PIXELS, axis=1)[:, :STEP_PIXELS]
        rows = np.arange(n)[:, None]
        move = np.minimum(amount, room[rows, picked]) * np.sign(grad[rows, picked])
        move[done] = 0
        move[gain[rows, picked] == 0] = 0
        x[rows, picked] += move
        np.clip(x, 0, 1, out=x)
        frames.append(x.copy())
    return np.stack(frames)


@dataclass(frozen=True)
class Edit:
    """A drawing changed step by step towards `target`: images (steps + 1, 784), the first the
    drawing; proba (steps + 1, 10) the network's probabilities at each step."""

    target: int
    images: np.ndarray
    proba: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        """The digit read at each step (steps + 1,)."""
        return self.proba.argmax(axis=1)

    @property
    def flip_step(self) -> int | None:
        """The first step at which the network reads the target, or None if it never does."""
        hits = np.flatnonzero(self.predicted == self.target)
        return int(hits[0]) if len(hits) else None

    @property
    def last_step(self) -> int:
        """The step the edit ends on: the flip, else the last step tried."""
        flip = self.flip_step
        return len(self.images) - 1 if flip is None else flip

    def change(self, step: int) -> np.ndarray:
        """Ink added (> 0) and removed (< 0) from the drawing up to `step`: (784,)."""
        return self.images[step] - self.images[0]

    def added(self, step: int) -> float:
        """Ink added by `step`, in pixels of full ink."""
        return float(np.clip(self.change(step), 0, None).sum())

    def removed(self, step: int) -> float:
        """Ink removed by `step`, in pixels of full ink."""
        return float(np.clip(-self.change(step), 0, None).sum())


def edit_towards(
    classifier: Classifier, x: np.ndarray, target: int, steps: int = STEP_BUDGET
) -> Edit:
    """The drawing x (784,) edited towards digit `target`, ending where the network reads it."""
    frames = edit_steps(classifier, np.asarray(x, np.float32).reshape(1, -1), np.array([target]))
    images = frames[:, 0]
    proba = classifier.predict_proba(images)
    hits = np.flatnonzero(proba.argmax(axis=1) == target)
    end = int(hits[0]) + 1 if len(hits) else len(images)
    return Edit(target, images[:end], proba[:end])


def step_frame(edit: Edit) -> pd.DataFrame:
    """Line-chart rows of an edit: step, probability of the target, ink added and removed."""
    steps = np.arange(len(edit.images))
    change = edit.images - edit.images[0]
    return pd.DataFrame(
        {
            "step": steps,
            "probability": edit.proba[:, edit.target].astype(np.float64),
            "added": np.clip(change, 0, None).sum(axis=1),
            "removed": np.clip(-change, 0, None).sum(axis=1),
        }
    )


# --- moving the drawing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """One change to a drawing: shift (x, y) px, scale, rotation (degrees counter-clockwise)
    and stroke passes (each a 3x3 grey dilation, or erosion when negative; fractions blend)."""

    kind: str
    label: str
    shift: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0
    rotation: float = 0.0
    strokes: float = 0.0


MOVES = (
    Move("shifted", "4 px left", shift=(-4, 0)),
    Move("shifted", "2 px left", shift=(-2, 0)),
    Move("shifted", "2 px right", shift=(2, 0)),
    Move("shifted", "4 px right", shift=(4, 0)),
    Move("shifted", "4 px up", shift=(0, -4)),
    Move("shifted", "4 px down", shift=(0, 4)),
    Move("scaled", "x0.7", scale=0.7),
    Move("scaled", "x0.85", scale=0.85),
    Move("scaled", "x1.15", scale=1.15),
    Move("scaled", "x1.3", scale=1.3),
    Move("rotated", "-20°", rotation=-20),
    Move("rotated", "-10°", rotation=-10),
    Move("rotated", "+10°", rotation=10),
    Move("rotated", "+20°", rotation=20),
    Move("stroke", "thinner", strokes=-1),
    Move("stroke", "a little thinner", strokes=-0.5),
    Move("stroke", "thicker", strokes=1),
    Move("stroke", "much thicker", strokes=2),
)


def moved_images(image: np.ndarray, moves=MOVES) -> np.ndarray:
    """The image (28, 28) in [0, 1] after each move: uint8 (len(moves), 28, 28)."""
    n = len(moves)
    inked = np.repeat(to_uint8(np.asarray(image, np.float32))[None], n, axis=0)
    passes = np.array([m.strokes for m in moves], np.float32)
    # One 3x3 pass at a time, the last one blended in part (stroke_thickness' amount).
    for done in range(int(np.ceil(np.abs(passes).max(initial=0)))):
        inked = stroke_thickness(inked, np.sign(passes) * np.clip(np.abs(passes) - done, 0, 1))
    matrices = affine_matrices(
        np.array([m.rotation for m in moves]),
        np.array([m.scale for m in moves]),
        np.zeros(n),
        np.array([m.shift for m in moves]),
        inked.shape[1:],
    )
    return to_uint8(warp_affine(inked, matrices)).reshape(n, IMAGE_SIDE, IMAGE_SIDE)


@dataclass(frozen=True)
class MoveReading:
    """The network's reading of one moved drawing, as it is (no preprocessing) and after the
    app's preprocessing (crop, even strokes, fit into 20x20, centre); None if it finds no digit."""

    move: Move
    raw: np.ndarray
    raw_proba: np.ndarray
    preprocessed: Preprocessed
    preprocessed_proba: np.ndarray | None


def read_moves(classifier: Classifier, image: np.ndarray, moves=MOVES) -> list[MoveReading]:
    """Each move of the image (28, 28) in [0, 1], read without and with the preprocessing."""
    moved = moved_images(image, moves)
    raw_proba = classifier.predict_proba(to_input(moved))
    readings = []
    for move, raw, proba in zip(moves, moved, raw_proba, strict=True):
        again = preprocess(raw)
        redone = classifier.predict_proba(again.vector) if again.has_digit else None
        readings.append(MoveReading(move, raw, proba, again, redone))
    return readings


# --- what a unit looks for -------------------------------------------------------------------


def top_exciting(
    classifier: Classifier, images: np.ndarray, k: int, chunk: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """For each first-layer unit, the k images (N, 28, 28) uint8 that excite it most.

    Returns indices (n_units, k) and activations (n_units, k) float32, most exciting first.
    """
    W, b = classifier.weights[0], classifier.biases[0]
    best_value = np.full((0, W.shape[1]), -np.inf, np.float32)
    best_index = np.zeros((0, W.shape[1]), np.int64)
    for start in range(0, len(images), chunk):
        pre = to_input(images[start : start + chunk]) @ W + b
        values = np.concatenate([best_value, pre])
        rows = np.broadcast_to(np.arange(start, start + len(pre))[:, None], pre.shape)
        index = np.concatenate([best_index, rows])
        keep = np.argpartition(-values, min(k, len(values)) - 1, axis=0)[:k]
        best_value = np.take_along_axis(values, keep, axis=0)
        best_index = np.take_along_axis(index, keep, axis=0).astype(np.int64)
    order = np.argsort(-best_value, axis=0, kind="stable")
    values = np.take_along_axis(best_value, order, axis=0).T
    return np.take_along_axis(best_index, order, axis=0).T, classifier.activation(values)
