"""The real `train.py` command, run as a user would, on a small subset of MNIST."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from evaluation import accuracy, predict_proba_batched
from model_loader import MODEL_PATH, load_classifier, load_params
from train import history_path

QUICK = ["--epochs", "1", "--limit", "10000", "--no-augment", "--no-progress"]


def run_train(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "quick.pkl"
    proc = run_train(*QUICK, "--output", str(out))
    return proc, out


def test_one_epoch_on_a_subset_reaches_a_sane_accuracy_and_writes_a_loadable_model(
    quick_run, mnist
):
    proc, out = quick_run
    assert proc.returncode == 0, proc.stderr
    clf = load_classifier(out)
    proba = predict_proba_batched(clf.predict_proba, mnist.test_images)
    assert accuracy(proba, mnist.test_labels) > 0.85
    assert "test accuracy" in proc.stdout
    assert "confusion matrix" in proc.stdout
    assert "epoch   1/1" in proc.stdout


def test_model_file_carries_its_metadata_and_the_history_sits_beside_it(quick_run):
    _, out = quick_run
    params = load_params(out)
    assert params["sizes"] == [784, 128, 64, 10]
    assert params["seed"] == 0
    assert params["config"]["limit"] == 10000
    assert 0.85 < params["test_accuracy"] <= 1
    history = json.loads(history_path(out).read_text())
    (epoch,) = history["epochs"]
    assert set(epoch) >= {"epoch", "loss", "train_accuracy", "val_accuracy", "lr", "seconds"}


def test_the_same_seed_gives_identical_weights(tmp_path):
    args = ["--epochs", "1", "--limit", "3000", "--no-progress", "--hidden", "32"]
    outs = [tmp_path / "a.pkl", tmp_path / "b.pkl", tmp_path / "c.pkl"]
    for out, seed in zip(outs, ["7", "7", "8"], strict=True):
        assert run_train(*args, "--seed", seed, "--output", str(out)).returncode == 0
    a, b, c = (load_params(p)["weights"] for p in outs)
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a[0], c[0])


def test_a_missing_data_folder_is_one_clear_line_and_exit_status_66(tmp_path):
    proc = run_train(*QUICK, "--data-dir", str(tmp_path), "--output", str(tmp_path / "m.pkl"))
    assert proc.returncode == 66
    assert proc.stderr.count("\n") == 1
    assert "--data-dir" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "m.pkl").exists()


def test_bad_flags_are_usage_errors(tmp_path):
    proc = run_train("--epochs", "0")
    assert proc.returncode == 2
    assert "positive" in proc.stderr


def test_the_committed_model_reads_at_least_99_percent_of_the_mnist_test_set(mnist):
    clf = load_classifier(MODEL_PATH)
    proba = predict_proba_batched(clf.predict_proba, mnist.test_images)
    assert accuracy(proba, mnist.test_labels) >= 0.990
