"""Where the default `python train.py` spends its wall time, timed inside one in-process run.

The run is train.main() with its defaults, with timers wrapped around the calls that make up a
run (the wrappers cost well under 1% of a step). Shares of the wall time:
- data preparation: reading MNIST and the drawn digits before training starts;
- batches: the training loop waiting for the next prepared (augmented) batch, and
  augmenting the tail of each chunk itself when the worker process on the second core falls
  behind; both cores' augmentation time is given beside;
- forward and backward, optimizer step: the network's loss_and_grad and the update rule;
- evaluation: validation after each epoch and the final test-set score;
- the rest: bookkeeping between steps, progress callbacks, writing the model file.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from unittest import mock

import optimizers
import train
from digits.training import prefetch, trainer
from network import MLP

PHASES = ("data preparation", "batches", "forward and backward", "optimizer step", "evaluation")


class Clock:
    """Seconds added up per phase, from any thread."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.lock = threading.Lock()

    def timed(self, phase: str, fn):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self.lock:
                    self.seconds[phase] += time.perf_counter() - started

        return wrapper

    def timed_iterator(self, phase: str, make):
        """`make`(...) returns an iterator; time only the waits for its items."""

        def wrapper(*args, **kwargs):
            items = make(*args, **kwargs)
            while True:
                started = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    return
                finally:
                    self.seconds[phase] += time.perf_counter() - started
                yield item

        return wrapper


def default_run_breakdown(argv: list[str] | None = None) -> dict:
    """Shares of one default train.py run's wall time, and the seconds behind them."""
    clock = Clock()
    started = time.perf_counter()
    fit_started: list[float] = []
    real_fit = trainer.fit

    def fit(*args, **kwargs):
        fit_started.append(time.perf_counter())
        return real_fit(*args, **kwargs)

    real_exit = prefetch.ProcessAugmenter.__exit__

    def worker_exit(self, *exc):
        clock.seconds["second core: augmentation"] += self.busy_seconds
        clock.seconds["first core: its share of augmentation"] += self.own_seconds
        return real_exit(self, *exc)

    patches = [
        mock.patch.object(train, "fit", fit),
        mock.patch.object(
            MLP, "loss_and_grad", clock.timed("forward and backward", MLP.loss_and_grad)
        ),
        mock.patch.object(
            optimizers.SGD, "step", clock.timed("optimizer step", optimizers.SGD.step)
        ),
        mock.patch.object(trainer, "validate", clock.timed("evaluation", trainer.validate)),
        mock.patch.object(
            trainer, "iterate_batches", clock.timed_iterator("batches", trainer.iterate_batches)
        ),
        mock.patch.object(prefetch.ProcessAugmenter, "__exit__", worker_exit),
        mock.patch.object(
            train, "predict_proba_batched", clock.timed("evaluation", train.predict_proba_batched)
        ),
    ]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        train.main([*(argv or []), "--output", str(Path(tmp) / "model.pkl"), "--no-progress"])
    wall = time.perf_counter() - started
    seconds = dict(clock.seconds)
    seconds["data preparation"] = fit_started[0] - started
    seconds["the rest"] = wall - sum(seconds.get(p, 0.0) for p in PHASES)
    return {
        "wall_s": wall,
        "seconds": seconds,
        "shares": {p: seconds.get(p, 0.0) / wall for p in (*PHASES, "the rest")},
    }
