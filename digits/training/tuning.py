"""A small random search over learning rate, weight decay and epochs, scored on validation only.

Each trial trains a fresh network with the base settings and one candidate, on a subset of the
training images for a few epochs, and is scored on the validation split (the last training
images, never the test set). All trials share the base seed, so they start from the same
weights and see the images in the same order: the differences come from the candidate alone.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from digits.training.trainer import TrainConfig, fit

# The grid the search samples from: rates a decade apart in half-decade steps, weight decay
# from none to strong, and short runs (a trial must take seconds, not minutes).
SPACE: dict[str, tuple] = {
    "lr": (0.01, 0.03, 0.1, 0.3),
    "weight_decay": (0.0, 1e-4, 5e-4),
    "epochs": (2, 4, 8),
}
DEFAULT_TRIALS = 8
# Training images per trial: enough to rank settings, few enough for a trial of a second or two.
DEFAULT_LIMIT = 10_000


@dataclass(frozen=True)
class Trial:
    """One setting tried and its score; val_accuracy is None when training diverged."""

    lr: float
    weight_decay: float
    epochs: int
    val_accuracy: float | None
    seconds: float

    def row(self) -> dict:
        """The trial as a table row."""
        return dataclasses.asdict(self)


def candidates(budget: int, rng: np.random.Generator) -> list[dict]:
    """`budget` distinct settings drawn at random from SPACE (all of them if budget is larger)."""
    grid = [dict(zip(SPACE, values, strict=True)) for values in itertools.product(*SPACE.values())]
    order = rng.permutation(len(grid))[:budget]
    return [grid[i] for i in order]


def apply(base: TrainConfig, setting: Trial | dict) -> TrainConfig:
    """The base config with a trial's (or a candidate's) lr, weight decay and epochs."""
    values = setting.row() if isinstance(setting, Trial) else setting
    return dataclasses.replace(base, **{key: values[key] for key in SPACE})


def search(
    base: TrainConfig,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    budget: int = DEFAULT_TRIALS,
    on_trial: Callable[[Trial, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Trial]:
    """Try `budget` random settings on these images; the trials in the order they ran.

    on_trial(trial, done, total) after each one; should_stop() is checked between trials and
    inside each, so a stopped search returns the trials it finished.
    """
    settings = candidates(budget, np.random.default_rng(base.seed))
    trials: list[Trial] = []
    for setting in settings:
        if should_stop is not None and should_stop():
            break
        config = dataclasses.replace(apply(base, setting), patience=None)
        started = time.perf_counter()
        try:
            _, history = fit(
                config, train_images, train_labels, val_images, val_labels,
                should_stop=should_stop,
            )  # fmt: skip
            score = history[-1].val_accuracy if history else None
        except FloatingPointError:
            score = None  # diverged: a rate this high is simply a bad setting
        if should_stop is not None and should_stop():
            break  # an interrupted trial's score would be unfair to it
        trial = Trial(**setting, val_accuracy=score, seconds=time.perf_counter() - started)
        trials.append(trial)
        if on_trial is not None:
            on_trial(trial, len(trials), len(settings))
    return trials


def best(trials: list[Trial]) -> Trial | None:
    """The trial with the best validation accuracy; among equals, the shortest."""
    scored = [t for t in trials if t.val_accuracy is not None]
    if not scored:
        return None
    return max(scored, key=lambda t: (t.val_accuracy, -t.epochs, -t.seconds))


def format_table(trials: list[Trial]) -> str:
    """The trials as aligned text columns, one line per trial."""
    lines = [f"{'trial':>5}  {'lr':>6}  {'weight_decay':>12}  {'epochs':>6}  "
             f"{'val_accuracy':>12}  {'seconds':>7}"]  # fmt: skip
    for i, t in enumerate(trials, 1):
        score = "diverged" if t.val_accuracy is None else f"{t.val_accuracy:.4f}"
        lines.append(
            f"{i:>5}  {t.lr:>6g}  {t.weight_decay:>12g}  {t.epochs:>6}  {score:>12}  "
            f"{t.seconds:>7.1f}"
        )
    return "\n".join(lines)
