"""Training in the background, one run at a time, and the model files the runs leave behind.

The app keeps one TrainingRunner per server (st.cache_resource), so however many sessions are
open, only one run (a training, a search or a fine-tuning) uses the CPU at a time; a second
start is refused. A run is looked after by the runner's thread, and its job's work happens in a
process of its own (job_process.py), which holds the run's data; the page polls `snapshot()`, a
frozen copy of the run's state, and `stop()` asks the run to end after its current step.

A run's model goes to runs/<timestamp>.pkl with its history beside it. The app reads it only
once the user chooses it (`use_model`, kept in runs/in-use.txt); the shipped model_params.pkl,
which is under version control, is never written, and `use_shipped` goes back to it.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import numpy as np

from digits import PROJECT_ROOT
from digits.app.job_process import RemoteJob
from digits.data.mnist import DatasetError, Mnist, load_mnist
from digits.training import tuning
from digits.training.checkpoint import FROM_TRAIN_PAGE, save_model
from digits.training.evaluation import mnist_test_accuracy
from digits.training.finetune import FinetuneConfig, FinetuneError, finetune
from digits.training.progress import MovingAverage
from digits.training.trainer import DataStory, EpochRecord, TrainConfig, fit, training_data
from model_loader import ModelFileError, atomic_write_bytes, load_params

RUNS_ENV = "DIGITS_RUNS_DIR"
RUNS_DIR = PROJECT_ROOT / "runs"
# In the runs folder: the name of the run the user chose as the app's model.
CHOICE = "in-use.txt"
# The live training curve gets a point this many times per epoch (a moving average of the
# batches since the last one), so a long run's chart stays a few thousand points.
POINTS_PER_EPOCH = 10
# The live curves' names: steps' moving average, and the validation split after each epoch.
TRAINING_SERIES, VALIDATION_SERIES = "training (moving average)", "validation"
# The epochs the Train page offers first: a run a learner can watch to its end.
PAGE_EPOCHS = 10

ACTIVE = ("running", "stopping")


class RunnerError(Exception):
    """What the user asked of the runner cannot be done now; the message says why."""


def runs_dir() -> Path:
    """Where runs are saved: $DIGITS_RUNS_DIR if set, else runs/ beside this file."""
    return Path(os.environ.get(RUNS_ENV) or RUNS_DIR)


@dataclass(frozen=True)
class CurvePoint:
    """One point of the live curves: x in epochs (fractional), a series name, loss, accuracy."""

    epoch: float
    series: str
    loss: float | None
    accuracy: float | None


@dataclass(frozen=True)
class RunState:
    """A frozen copy of the runner's state, safe to read while the run goes on.

    status is "idle" before the first run, then "running", "stopping", and at the end
    "finished", "stopped" or "failed" (with the reason in `message`).
    """

    run_id: int = 0
    kind: str = ""
    status: str = "idle"
    message: str = ""
    progress: float = 0.0
    epochs: int = 0
    points: tuple[CurvePoint, ...] = ()
    trials: tuple[tuning.Trial, ...] = ()
    summary: tuple[str, ...] = ()
    model_file: Path | None = None
    started: float = 0.0
    elapsed: float = 0.0
    config: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Whether a run is under way (running or stopping)."""
        return self.status in ACTIVE

    def curve_rows(self) -> list[dict]:
        """The curves in long form, for a chart: one row per point and metric."""
        return [
            {"epoch": p.epoch, "series": p.series, "metric": metric, "value": value}
            for p in self.points
            for metric, value in (("loss", p.loss), ("accuracy", p.accuracy))
            if value is not None
        ]


@dataclass
class Outcome:
    """What a job hands back: the model's exported params (or None), history and summary."""

    params: dict | None = None
    history: list[EpochRecord] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    story: DataStory | None = None  # what a new model learnt from; None when fine-tuned


class Run:
    """A job's line to the runner: progress callbacks for fit() and the stop request."""

    def __init__(self, runner: TrainingRunner, stop: threading.Event):
        self._runner = runner
        self._stop = stop
        self._epochs = 1
        self._images_per_epoch = 1
        self._epoch_base = 0.0
        self._seen = 0
        self._since_point: float = 0  # each point takes off images_per_epoch / POINTS_PER_EPOCH
        self._loss, self._accuracy = MovingAverage(), MovingAverage()

    def should_stop(self) -> bool:
        """Whether the user asked the run to stop."""
        return self._stop.is_set()

    def say(self, message: str, progress: float | None = None) -> None:
        """Tell the page what is happening now."""
        self._runner._update(message=message, progress=progress)

    def expect(self, epochs: int, images_per_epoch: int, offset: float = 0.0) -> None:
        """Announce a fit() of `epochs` over `images_per_epoch`, its curve starting at `offset`."""
        self._epochs, self._images_per_epoch = epochs, max(images_per_epoch, 1)
        self._epoch_base, self._seen, self._since_point = offset, 0, 0
        self._runner._update(epochs=epochs)

    def on_start(self, images_per_epoch: int) -> None:
        """fit()'s start callback: the true number of images an epoch, now that it is known."""
        self._images_per_epoch = max(images_per_epoch, 1)

    def on_batch(self, n: int, loss: float, accuracy: float) -> None:
        """fit()'s per-step callback: moving averages, progress and every so often a point."""
        self._loss.update(loss)
        self._accuracy.update(accuracy)
        self._seen += n
        self._since_point += n
        fraction = self._seen / (self._epochs * self._images_per_epoch)
        point = None
        if self._since_point >= self._images_per_epoch / POINTS_PER_EPOCH:
            self._since_point -= self._images_per_epoch / POINTS_PER_EPOCH
            x = self._epoch_base + self._seen / self._images_per_epoch
            point = CurvePoint(x, TRAINING_SERIES, self._loss.value, self._accuracy.value)
        epoch = min(int(self._seen // self._images_per_epoch) + 1, self._epochs)
        self._runner._update(
            message=f"Epoch {epoch} of {self._epochs}", progress=min(fraction, 1.0), point=point
        )

    def on_epoch(self, record: EpochRecord) -> None:
        """fit()'s per-epoch callback: the validation point."""
        self._seen = record.epoch * self._images_per_epoch  # exact, whatever the batch sizes
        if record.val_accuracy is not None:
            x = self._epoch_base + record.epoch
            point = CurvePoint(x, VALIDATION_SERIES, record.val_loss, record.val_accuracy)
            self._runner._update(point=point)

    def on_trial(self, trial: tuning.Trial, done: int, total: int) -> None:
        """tuning.search()'s callback: one more row for the table."""
        self._runner._update(
            message=f"Trial {done} of {total} done", progress=done / total, trial=trial
        )


# A job loads MNIST itself (with the loader it is given), so it can let go of the parts it
# no longer needs while it runs; the jobs below do it in a process of their own.
Job = Callable[[Run, Callable[[], Mnist]], Outcome]


class _StateChanges(TypedDict, total=False):
    """The RunState fields `_update` may change."""

    message: str
    progress: float
    epochs: int


class TrainingRunner:
    """Runs one job at a time on a background thread and manages the runs folder.

    `load_data` reads MNIST, at the start of each run so that none is held in between; tests
    pass a smaller set. The jobs below call it in their own process, so it must pickle (a
    module-level function).
    """

    def __init__(self, folder: Path | str, load_data: Callable[[], Mnist] = load_mnist):
        self.folder = Path(folder)
        self._load_data = load_data
        self._lock = threading.Lock()  # guards the state below
        self._files_lock = threading.Lock()  # one model swap at a time
        self._state = RunState()
        self._points: list[CurvePoint] = []
        self._trials: list[tuning.Trial] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- runs ----------------------------------------------------------------------------

    def start(self, kind: str, job: Job, config: dict | None = None) -> int:
        """Start `job` on a new thread; its run id. Raises RunnerError if a run is under way."""
        with self._lock:
            if self._state.active:
                raise RunnerError(
                    f"A {self._state.kind} run is already under way (one at a time for the "
                    "whole server); wait for it to finish or stop it first."
                )
            self._stop = threading.Event()
            self._points, self._trials = [], []
            self._state = RunState(
                run_id=self._state.run_id + 1,
                kind=kind,
                status="running",
                message="Starting…",
                started=time.time(),
                config=dict(config or {}),
            )
            run = Run(self, self._stop)
            self._thread = threading.Thread(
                target=self._work, args=(job, run), name=f"{kind}-run", daemon=True
            )
            self._thread.start()
            return self._state.run_id

    def stop(self) -> None:
        """Ask the run under way to stop after its current step (no-op when none is)."""
        with self._lock:
            if self._state.status == "running":
                self._stop.set()
                self._state = dataclasses.replace(self._state, status="stopping")

    def snapshot(self) -> RunState:
        """The current state, frozen: the points and trials so far, the progress, the result."""
        with self._lock:
            elapsed = time.time() - self._state.started if self._state.active else None
            return dataclasses.replace(
                self._state,
                points=tuple(self._points),
                trials=tuple(self._trials),
                elapsed=self._state.elapsed if elapsed is None else elapsed,
            )

    def wait(self, timeout: float | None = None) -> RunState:
        """Block until the run under way ends (or `timeout` s pass); the state then."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.snapshot()

    def _update(
        self,
        message: str | None = None,
        progress: float | None = None,
        epochs: int | None = None,
        point: CurvePoint | None = None,
        trial: tuning.Trial | None = None,
    ) -> None:
        with self._lock:
            changes: _StateChanges = {}
            if message is not None:
                changes["message"] = message
            if progress is not None:
                changes["progress"] = progress
            if epochs is not None:
                changes["epochs"] = epochs
            if changes:
                self._state = dataclasses.replace(self._state, **changes)
            if point is not None:
                self._points.append(point)
            if trial is not None:
                self._trials.append(trial)

    def _work(self, job: Job, run: Run) -> None:
        """The thread's body: run the job, save its model, record how it ended."""
        model_file, summary = None, []
        try:
            run.say("Loading MNIST…")
            outcome = job(run, self._load_data)
            summary = outcome.summary
            if outcome.params is not None and outcome.history:
                run.say("Saving the model…")
                model_file = self._save(outcome)
            status, message = ("stopped", "Stopped.") if run.should_stop() else ("finished", "")
        except (FloatingPointError, FinetuneError, DatasetError, ModelFileError) as exc:
            status, message = "failed", str(exc)  # something the user can change
        except Exception as exc:  # a bug: keep its traceback in the server's log
            traceback.print_exc()
            status, message = "failed", f"The run failed unexpectedly: {exc!r}"
        with self._lock:
            self._state = dataclasses.replace(
                self._state,
                status=status,
                message=message,
                progress=1.0 if status == "finished" else self._state.progress,
                summary=tuple(summary),
                model_file=model_file,
                elapsed=time.time() - self._state.started,
            )

    def _save(self, outcome: Outcome) -> Path:
        assert outcome.params is not None, "only outcomes with a model are saved"
        path = fresh_path(self.folder)
        save_model(
            outcome.params,
            outcome.history,
            self._state.config,
            path,
            FROM_TRAIN_PAGE,
            outcome.story,
            **outcome.metadata,
        )
        return path

    # -- the app's model -----------------------------------------------------------------

    def use_model(self, run_file: Path) -> None:
        """Make the saved run `run_file` the app's model: the shipped model file is left alone."""
        run_file = Path(run_file)
        if run_file.parent.resolve() != self.folder.resolve():
            raise RunnerError(f"{run_file} is not a model saved in {self.folder}.")
        load_params(run_file)  # never choose a file the app cannot read
        with self._files_lock:
            atomic_write_bytes(self.folder / CHOICE, run_file.name.encode())

    def use_shipped(self) -> None:
        """Go back to the shipped model (model_params.pkl, or $DIGITS_MODEL)."""
        with self._files_lock:
            (self.folder / CHOICE).unlink(missing_ok=True)

    def saved_models(self) -> list[Path]:
        """The models the runs saved, newest first."""
        return sorted(self.folder.glob("*.pkl"), reverse=True)


def chosen_model(folder: Path) -> Path | None:
    """The saved run the user chose as the app's model, or None for the shipped model.

    The choice is the file CHOICE in the runs folder, naming one of the runs beside it; a
    choice whose run file has gone counts as none.
    """
    try:
        name = (folder / CHOICE).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    path = folder / name
    if not name or Path(name).name != name or not path.is_file():
        return None
    return path


def fresh_path(folder: Path) -> Path:
    """A new file name in `folder`: the local date and time, sortable, never reused."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    path = folder / f"{stamp}.pkl"
    while path.exists():
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = folder / f"{stamp}.pkl"
    return path


# -- jobs: what a run does, given its Run and MNIST -----------------------------------------


def training_job(config: TrainConfig) -> Job:
    """Train a new network with `config`; its test accuracy goes into the summary."""
    return RemoteJob(_train, (config,))


def tuning_job(base: TrainConfig, budget: int) -> Job:
    """Search lr, weight decay and epochs on the validation split; no model is saved."""
    return RemoteJob(_search, (base, budget))


def finetune_job(
    params: dict, images: np.ndarray, labels: np.ndarray, config: FinetuneConfig
) -> Job:
    """Fine-tune `params` on user samples, images (n, 28, 28) in [0, 1], with MNIST replay."""
    return RemoteJob(_finetune, (params, images, labels, config))


# The jobs' bodies, run in a process of their own (job_process.py).


def _train(run: Run, load: Callable[[], Mnist], config: TrainConfig) -> Outcome:
    mnist = load()
    (train_x, train_y), (val_x, val_y), story = training_data(mnist, config)
    # train_x holds copies of the training images, so while it trains the process keeps
    # only the test set of the rest.
    mnist = mnist.test_only()
    run.expect(config.epochs, len(train_x))
    started = time.perf_counter()
    network, history = fit(
        config, train_x, train_y, val_x, val_y, run.on_batch, run.on_epoch, run.should_stop
    )
    seconds = time.perf_counter() - started
    run.say("Scoring on the test set…")
    score = mnist_test_accuracy(network.predict_proba, mnist)
    done = f"{len(history)} of {config.epochs} epochs" if run.should_stop() else "trained"
    return Outcome(
        params=network.export(),
        history=history,
        summary=[f"Test accuracy {score:.2%}, {done} on {story.sentence()}."],
        story=story,
        metadata={"test_accuracy": score, "seed": config.seed, "train_seconds": round(seconds, 1)},
    )


def _search(run: Run, load: Callable[[], Mnist], base: TrainConfig, budget: int) -> Outcome:
    (train_x, train_y), (val_x, val_y), story = training_data(load(), base)
    run.say(f"Trial 1 of {budget}…", progress=0.0)
    trials = tuning.search(
        base, train_x, train_y, val_x, val_y, budget, run.on_trial, run.should_stop
    )
    top = tuning.best(trials)
    if top is None:
        return Outcome(summary=["No trial finished with a score."])
    return Outcome(
        summary=[
            f"Best: learning rate {top.lr:g}, weight decay {top.weight_decay:g}, "
            f"{top.epochs} epochs: {top.val_accuracy:.2%} on the validation digits "
            f"(each trial learnt from {story.sentence()})."
        ]
    )


def _finetune(
    run: Run,
    load: Callable[[], Mnist],
    params: dict,
    images: np.ndarray,
    labels: np.ndarray,
    config: FinetuneConfig,
) -> Outcome:
    mnist = load()
    # The replay's size (drawn digits and user samples included) is only known once
    # finetune has mixed it: fit announces it through on_start.
    run.expect(config.epochs, 1)
    started = time.perf_counter()
    network, history, report = finetune(
        params, images, labels, mnist, config, run.on_batch, run.on_epoch, run.should_stop,
        on_start=run.on_start,
    )  # fmt: skip
    lines = report.lines()
    return Outcome(
        params=network.export(),
        history=history,
        summary=[line[0].upper() + line[1:] + "." for line in lines],
        metadata={
            "test_accuracy": report.mnist_after,
            "seed": config.seed,
            "train_seconds": round(time.perf_counter() - started, 1),
            "finetune_report": dataclasses.asdict(report),
        },
    )
