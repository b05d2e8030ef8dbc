"""The real `train.py` command, run as a user would, on a small subset of MNIST."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import train
from digits.app.user_store import UserStore, original_png
from digits.data.styled_digits import styled_samples
from digits.training.checkpoint import history_path
from digits.training.evaluation import accuracy, predict_proba_batched
from digits.training.trainer import TrainConfig
from model_loader import MODEL_PATH, load_classifier, load_params

# Every test here runs a training; `make test-fast` leaves them out.
pytestmark = pytest.mark.slow

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


# --- train.py --tune and --finetune ------------------------------------------------------------

TINY_SEARCH = ["--tune", "--trials", "3", "--limit", "2000", "--hidden", "16", "--no-augment"]


def stored_styled_samples(path, n: int) -> None:
    """n digits of bench/styled_digits.py's hand in a samples database, as the app stores them."""
    store = UserStore(path)
    drawings, inputs, labels = styled_samples(n, seed=0)
    for drawing, image, label in zip(drawings, inputs, labels, strict=True):
        store.add(int(label), image, original_png(drawing))


def test_tune_prints_each_trial_a_table_of_them_and_the_best_and_writes_no_model(tmp_path):
    out = tmp_path / "never.pkl"
    proc = run_train(*TINY_SEARCH, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.search(
        r"each trial learning from 2,200 of the 60,000 MNIST training digits, 200 of them held "
        r"out for validation, plus \d,\d{3} drawn digits$",
        lines[0],
    )
    assert sum(line.startswith("trial ") and " -> val_acc " in line for line in lines) == 3
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["trial", "lr"])
    assert lines[header].split() == [
        "trial",
        "lr",
        "weight_decay",
        "epochs",
        "val_accuracy",
        "seconds",
    ]
    rows = [line.split() for line in lines[header + 1 : header + 4]]
    assert [row[0] for row in rows] == ["1", "2", "3"]
    best = max(rows, key=lambda row: float(row[4]))
    assert lines[header + 4].startswith(f"best: lr {best[1]}, weight decay {best[2]}")
    assert lines[header + 5].startswith("train it with: python train.py")
    assert not out.exists()


def test_finetune_reports_before_and_after_and_writes_only_its_output(tmp_path):
    db, out = tmp_path / "samples.sqlite", tmp_path / "tuned.pkl"
    stored_styled_samples(db, 24)
    app_model = MODEL_PATH.read_bytes()
    proc = run_train(
        "--finetune",
        "--user-data",
        str(db),
        "--limit",
        "5000",
        "--no-progress",
        "--output",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert f"on 24 samples from {db}" in proc.stdout
    assert "MNIST test accuracy: " in proc.stdout
    assert "the 18 samples of yours it trained on: " in proc.stdout
    assert "your 6 held-out samples, which it never saw: " in proc.stdout
    params = load_params(out)
    assert params["finetuned_from"] == str(MODEL_PATH)
    assert params["config"]["samples"] == 24
    assert params["config"]["finetune"]["replay"] == 5000
    report = params["finetune_report"]
    assert report["user_after"] >= report["user_before"]
    assert report["mnist_before"] - report["mnist_after"] <= 0.003
    assert history_path(out).exists()
    assert MODEL_PATH.read_bytes() == app_model, "the app's model is not touched"


def test_finetune_without_a_samples_database_is_one_clear_line_and_exit_status_66(tmp_path):
    missing = tmp_path / "none.sqlite"
    proc = run_train("--finetune", "--user-data", str(missing), "--output", str(tmp_path / "m"))
    assert proc.returncode == 66
    assert proc.stderr.count("\n") == 1
    assert "teach the app some digits first" in proc.stderr
    assert not missing.exists()


def test_finetune_on_a_file_that_is_not_a_samples_database_leaves_it_alone(tmp_path):
    notes = tmp_path / "notes.sqlite"
    notes.write_text("shopping list\n" * 100)
    proc = run_train("--finetune", "--user-data", str(notes), "--output", str(tmp_path / "m"))
    assert proc.returncode == 66
    assert proc.stderr.count("\n") == 1
    assert "not a samples database" in proc.stderr
    assert notes.read_text() == "shopping list\n" * 100


def test_finetune_with_too_few_samples_says_how_many_to_teach_and_exits_65(tmp_path):
    db = tmp_path / "samples.sqlite"
    stored_styled_samples(db, 3)
    proc = run_train(
        "--finetune", "--user-data", str(db), "--no-progress", "--output", str(tmp_path / "m.pkl")
    )
    assert proc.returncode == 65
    assert proc.stderr.count("\n") == 1
    assert "at least 8" in proc.stderr
    assert not (tmp_path / "m.pkl").exists()


def test_a_config_turns_back_into_the_flags_that_give_it():
    config = train.config_from_args(
        train.parse_args(["--no-drawn", "--no-augment", "--epochs", "3", "--hidden", "32"])
    )
    flags = train.config_to_args(config)
    assert train.config_from_args(train.parse_args(flags)) == config
    assert {"--no-drawn", "--no-augment"} <= set(flags)


def test_the_augmentation_recipe_has_flags_that_round_trip():
    config = train.config_from_args(train.parse_args(["--augment-share", "1", "--elastic", "0"]))
    assert config.augment_config.prob == 1.0
    assert config.augment_config.elastic_px == 0.0
    assert train.config_to_args(config) == ["--augment-share", "1.0", "--elastic", "0.0"]
    assert train.config_from_args(train.parse_args([])) == TrainConfig()


def test_finetune_progress_bar_counts_every_image_of_an_epoch_drawn_ones_included(
    tmp_path, monkeypatch, mnist
):
    db = tmp_path / "samples.sqlite"
    stored_styled_samples(db, 24)
    bars, seen = [], []
    real = train.progress_callbacks

    def spy(n_images, epochs, disable):
        bar, on_batch, on_epoch = real(n_images, epochs, True)
        bars.append(bar)

        def counting(n, loss, acc):
            seen.append(n)
            on_batch(n, loss, acc)

        return bar, counting, on_epoch

    monkeypatch.setattr(train, "progress_callbacks", spy)
    argv = ["--finetune", "--user-data", str(db), "--epochs", "1", "--no-augment"]
    assert train.main([*argv, "--output", str(tmp_path / "tuned.pkl")]) == 0
    assert sum(seen) > len(mnist.train_images), "the replay has the drawn digits"
    assert bars[0].total == sum(seen)
