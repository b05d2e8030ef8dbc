"""The background runner: one run at a time, live progress, a clean stop, and model files kept.

Jobs that must be caught at a given moment are scripted (they wait on events), so no test
depends on how fast the machine trains; the real jobs train tiny networks on a subset.
"""

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.mnist_subsets import small_mnist

from digits.app.insights import read_history
from digits.app.training_runner import (
    CHOICE,
    POINTS_PER_EPOCH,
    VALIDATION_SERIES,
    Outcome,
    RunnerError,
    TrainingRunner,
    chosen_model,
    finetune_job,
    fresh_path,
    runs_dir,
    training_job,
    tuning_job,
)
from digits.data.mnist import load_drawn_training_set, load_mnist
from digits.training import tuning
from digits.training.checkpoint import FROM_TRAIN_PAGE, history_path
from digits.training.finetune import FinetuneConfig, FinetuneError
from digits.training.trainer import TrainConfig
from model_loader import MODEL_PATH, ModelFileError, load_params

WAIT_S = 60
# A tiny network on a subset: a run of a few epochs takes a fraction of a second.
TINY = {"hidden": (16,), "augment": False, "drawn": False, "val_size": 500, "lr": 0.1, "seed": 0}


def run_files(folder: Path) -> list[Path]:
    """The model files of runs in `folder`, newest first."""
    return sorted(folder.glob("*.pkl"), reverse=True)


@pytest.fixture
def runner(tmp_path):
    runner = TrainingRunner(tmp_path / "runs", load_data=small_mnist)
    yield runner
    runner.stop()
    runner.wait(WAIT_S)


@pytest.fixture
def app_model(tmp_path):
    """A copy of the committed model (with its history) standing in for the app's model."""
    path = tmp_path / "app" / "model.pkl"
    path.parent.mkdir()
    shutil.copyfile(MODEL_PATH, path)
    shutil.copyfile(history_path(MODEL_PATH), history_path(path))
    return path


class Gate:
    """A scripted job: reports progress, then waits until the test releases it."""

    def __init__(self, result=None, error: Exception | None = None):
        self.reached, self.release = threading.Event(), threading.Event()
        self.result, self.error = result, error

    def __call__(self, run, mnist):
        run.expect(epochs=2, images_per_epoch=100)
        run.on_batch(50, 2.0, 0.25)
        self.reached.set()
        while not self.release.wait(0.01):
            if run.should_stop():
                break
        if self.error is not None:
            raise self.error
        return self.result or Outcome(summary=["done"])


def wait_for(condition, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- start, progress, finish -------------------------------------------------------------------


def test_before_any_run_the_runner_is_idle(runner):
    state = runner.snapshot()
    assert (state.status, state.active, state.run_id, state.points) == ("idle", False, 0, ())


def test_a_run_reports_live_progress_and_curve_points_while_under_way(runner):
    gate = Gate()
    run_id = runner.start("training", gate, {"epochs": 2})
    assert gate.reached.wait(WAIT_S)
    state = runner.snapshot()
    assert (state.run_id, state.kind, state.status) == (run_id, "training", "running")
    assert state.active
    assert state.progress == pytest.approx(50 / 200)
    assert state.message == "Epoch 1 of 2"
    assert state.epochs == 2
    (point,) = state.points
    assert (point.epoch, point.series, point.loss, point.accuracy) == (
        0.5, "training (moving average)", 2.0, 0.25,
    )  # fmt: skip
    assert state.config == {"epochs": 2}
    gate.release.set()
    done = runner.wait(WAIT_S)
    assert (done.status, done.progress, done.summary) == ("finished", 1.0, ("done",))
    assert done.elapsed > 0


def test_a_real_training_run_grows_its_curves_epoch_by_epoch_and_saves_its_own_file(
    runner, app_model
):
    before = app_model.read_bytes()
    config = TrainConfig(epochs=3, **TINY)
    runner.start("training", training_job(config), config.to_dict())
    state = runner.wait(WAIT_S)
    assert state.status == "finished", state.message

    validation = [p for p in state.points if p.series == "validation"]
    training = [p for p in state.points if p.series != "validation"]
    assert [p.epoch for p in validation] == [1, 2, 3]
    assert len(training) >= 3 * 9, "about ten moving-average points per epoch"
    assert all(p.loss > 0 and 0 <= p.accuracy <= 1 for p in state.points)
    assert [p.epoch for p in training] == sorted(p.epoch for p in training)
    assert training[-1].loss < training[0].loss
    rows = state.curve_rows()
    assert {r["metric"] for r in rows} == {"loss", "accuracy"}
    assert len(rows) == 2 * len(state.points)

    # Its own file in the runs folder, with metadata and history; the app's model untouched.
    assert state.model_file.parent == runner.folder
    assert run_files(runner.folder) == [state.model_file]
    params = load_params(state.model_file)
    assert params["sizes"] == [784, 16, 10]
    assert params["config"]["epochs"] == 3
    assert 0.5 < params["test_accuracy"] <= 1
    assert state.summary[0].startswith(f"Test accuracy {params['test_accuracy']:.2%}")
    history = json.loads(history_path(state.model_file).read_text())
    assert len(history["epochs"]) == 3
    assert app_model.read_bytes() == before


def test_every_run_gets_a_new_file_listed_newest_first(runner):
    config = TrainConfig(epochs=1, **TINY)
    files = []
    for _ in range(2):
        runner.start("training", training_job(config), config.to_dict())
        files.append(runner.wait(WAIT_S).model_file)
    assert files[0] != files[1]
    assert run_files(runner.folder) == files[::-1]


def test_fresh_paths_never_reuse_a_name_and_sort_in_the_order_they_were_made(tmp_path):
    made = []
    for _ in range(50):
        path = fresh_path(tmp_path)
        assert not path.exists()
        path.touch()
        made.append(path)
    assert len(set(made)) == 50
    assert sorted(made) == made


def test_the_runs_folder_can_be_moved_with_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITS_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert runs_dir() == tmp_path / "elsewhere"


# --- stop --------------------------------------------------------------------------------------


def test_stop_ends_a_real_run_after_its_current_step_and_keeps_the_finished_epochs(runner):
    config = TrainConfig(epochs=200, **TINY)
    runner.start("training", training_job(config), config.to_dict())
    wait_for(lambda: any(p.series == "validation" for p in runner.snapshot().points))
    runner.stop()
    assert runner.snapshot().status == "stopping"
    state = runner.wait(WAIT_S)
    assert not runner._thread.is_alive()
    assert state.status == "stopped"
    assert state.message == "Stopped."
    assert 0 < state.progress < 1
    epochs = len(json.loads(history_path(state.model_file).read_text())["epochs"])
    assert 1 <= epochs < 200
    assert f"{epochs} of 200 epochs" in state.summary[0]
    validation = [p.epoch for p in state.points if p.series == VALIDATION_SERIES]
    assert len(validation) == epochs, (
        "a validation point for each whole epoch, none for the cut one"
    )
    epochs_seen = state.progress * 200
    assert max(validation) <= epochs_seen + 1e-9, "no point for an epoch it did not finish"


def test_stop_without_a_run_does_nothing(runner):
    runner.stop()
    assert runner.snapshot().status == "idle"


# --- one run at a time -------------------------------------------------------------------------


def test_a_second_start_while_a_run_is_under_way_is_refused_with_a_reason(runner):
    gate = Gate()
    runner.start("training", gate)
    assert gate.reached.wait(WAIT_S)
    with pytest.raises(RunnerError, match="already under way"):
        runner.start("search", Gate())
    assert runner.snapshot().kind == "training"
    gate.release.set()
    runner.wait(WAIT_S)
    again = Gate()
    runner.start("search", again)  # once it has ended, the next may start
    again.release.set()
    assert runner.wait(WAIT_S).status == "finished"


def test_of_many_sessions_starting_at_the_same_moment_exactly_one_run_starts(runner):
    sessions = 8
    barrier = threading.Barrier(sessions)
    started, refused, gates = [], [], [Gate() for _ in range(sessions)]

    def session(gate: Gate) -> None:
        barrier.wait()
        try:
            started.append(runner.start("training", gate))
        except RunnerError:
            refused.append(gate)

    threads = [threading.Thread(target=session, args=(g,)) for g in gates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(started), len(refused)) == (1, sessions - 1)
    for gate in gates:
        gate.release.set()
    assert runner.wait(WAIT_S).status == "finished"
    assert sum(g.reached.is_set() for g in gates) == 1


# --- failures ----------------------------------------------------------------------------------


def test_a_job_the_user_can_fix_fails_with_its_own_message(runner):
    gate = Gate(error=FinetuneError("Teach the app at least 8 digits first."))
    gate.release.set()
    runner.start("fine-tuning", gate)
    state = runner.wait(WAIT_S)
    assert (state.status, state.message) == ("failed", "Teach the app at least 8 digits first.")
    assert state.model_file is None


def test_a_bug_in_a_job_fails_the_run_and_leaves_its_traceback_in_the_log(runner, capsys):
    gate = Gate(error=ZeroDivisionError("division by zero"))
    gate.release.set()
    runner.start("training", gate)
    state = runner.wait(WAIT_S)
    assert state.status == "failed"
    assert state.message.startswith("The run failed unexpectedly")
    assert "Traceback" in capsys.readouterr().err
    assert not runner.snapshot().active, "a failed run frees the runner"


# --- the app's model: a saved run the user chooses; the shipped file is never written -------


def finished_run(runner) -> Path:
    config = TrainConfig(epochs=1, **TINY)
    runner.start("training", training_job(config), config.to_dict())
    return runner.wait(WAIT_S).model_file


def test_the_shipped_model_is_in_use_until_the_user_chooses_a_run(runner):
    assert chosen_model(runner.folder) is None
    run_file = finished_run(runner)
    assert chosen_model(runner.folder) is None, "a finished run is not used by itself"
    runner.use_model(run_file)
    assert chosen_model(runner.folder) == run_file
    assert runner.saved_models() == [run_file], "the choice is not listed as a model"


def test_using_a_run_never_writes_the_shipped_model(runner, app_model):
    before = app_model.read_bytes(), history_path(app_model).read_bytes()
    runner.use_model(finished_run(runner))
    assert (app_model.read_bytes(), history_path(app_model).read_bytes()) == before


def test_going_back_to_the_shipped_model_is_one_call(runner):
    runner.use_model(finished_run(runner))
    runner.use_shipped()
    assert chosen_model(runner.folder) is None
    runner.use_shipped()  # already there: nothing to do, nothing raised


def test_a_chosen_run_whose_file_has_gone_falls_back_to_the_shipped_model(runner):
    run_file = finished_run(runner)
    runner.use_model(run_file)
    run_file.unlink()
    assert chosen_model(runner.folder) is None


def test_a_choice_file_naming_anything_outside_the_runs_folder_is_ignored(runner, app_model):
    runner.folder.mkdir(parents=True, exist_ok=True)
    (runner.folder / CHOICE).write_text(f"../{app_model.parent.name}/{app_model.name}")
    assert chosen_model(runner.folder) is None


def test_only_a_model_saved_in_the_runs_folder_can_be_chosen(runner, app_model):
    with pytest.raises(RunnerError, match="not a model saved in"):
        runner.use_model(app_model)
    assert chosen_model(runner.folder) is None


def test_a_file_the_app_cannot_read_is_never_chosen(runner):
    runner.folder.mkdir(parents=True, exist_ok=True)
    broken = runner.folder / "broken.pkl"
    broken.write_bytes(b"not a pickle")
    with pytest.raises(ModelFileError):
        runner.use_model(broken)
    assert chosen_model(runner.folder) is None


# --- the search and fine-tuning jobs -----------------------------------------------------------


def test_a_training_run_adds_the_drawn_digits_only_when_its_config_asks(runner, mnist):
    drawn = load_drawn_training_set()
    expected = np.count_nonzero(drawn["source"] < 2000)
    split = "MNIST training digits, 200 of them held out for validation"
    cases = ((False, f"{split}."), (True, f"{split}, plus {expected:,} drawn digits."))
    for with_drawn, summary in cases:
        config = TrainConfig(epochs=1, **{**TINY, "drawn": with_drawn, "limit": 2000})
        runner.start("training", training_job(config), config.to_dict())
        state = runner.wait(WAIT_S)
        assert state.status == "finished", state.message
        assert "trained on 2,200 of the " in state.summary[0]
        assert summary in state.summary[0]
        assert load_params(state.model_file)["config"]["drawn"] is with_drawn
        history = read_history(history_path(state.model_file))
        assert history is not None
        assert history.source == FROM_TRAIN_PAGE, "the History page says where it came from"
        assert history.story is not None
        assert history.story.drawn == (expected if with_drawn else 0)


def test_a_search_run_reports_each_trial_as_it_ends_and_saves_no_model(runner):
    base = TrainConfig(**TINY)
    runner.start("search", tuning_job(base, budget=3), {"trials": 3})
    state = runner.wait(WAIT_S)
    assert state.status == "finished", state.message
    assert len(state.trials) == 3
    assert all(isinstance(t, tuning.Trial) for t in state.trials)
    top = tuning.best(list(state.trials))
    assert state.summary[0].startswith(f"Best: learning rate {top.lr:g}")
    assert state.model_file is None
    assert run_files(runner.folder) == []


def test_a_fine_tuning_run_saves_its_model_with_the_before_and_after_report(tmp_path, mnist):
    runner = TrainingRunner(tmp_path / "runs", load_data=load_mnist)  # replay needs it all
    params = load_params(MODEL_PATH)
    images = mnist.test_images[:40].astype(np.float32) / 255
    labels = mnist.test_labels[:40].astype(np.int64)
    config = FinetuneConfig(epochs=1, replay=1000)
    runner.start("fine-tuning", finetune_job(params, images, labels, config))
    state = runner.wait(WAIT_S)
    assert state.status == "finished", state.message
    report = load_params(state.model_file)["finetune_report"]
    assert report["n_train"] + report["n_heldout"] == 40
    assert state.summary[0].startswith("MNIST test accuracy:")
    assert state.summary[1].startswith(f"The {report['n_train']} samples of yours it trained on:")
    assert "held-out samples" in state.summary[2]


def test_a_fine_tuning_runs_progress_spans_exactly_its_epochs_drawn_digits_included(
    tmp_path, mnist
):
    runner = TrainingRunner(tmp_path / "runs", load_data=load_mnist)
    params = load_params(MODEL_PATH)
    images = mnist.test_images[:40].astype(np.float32) / 255
    labels = mnist.test_labels[:40].astype(np.int64)
    config = FinetuneConfig(epochs=1, augment=False)  # the whole replay, drawn digits and all
    runner.start("fine-tuning", finetune_job(params, images, labels, config))
    state = runner.wait(WAIT_S)
    assert state.status == "finished", state.message
    training = [p.epoch for p in state.points if p.series.startswith("training")]
    assert len(training) >= POINTS_PER_EPOCH - 1
    assert max(training) == pytest.approx(1.0, abs=0.01)
