"""The settings search: candidates from the grid, trials scored on validation, a readable report."""

import dataclasses
import itertools

import numpy as np
import pytest
from helpers.mnist_subsets import blind_mnist

from digits.app.training_runner import TrainingRunner, tuning_job
from digits.training import tuning
from digits.training.trainer import TrainConfig, fit, split_train_val

BASE = TrainConfig(hidden=(16,), augment=False, val_size=500, seed=0)


@pytest.fixture(scope="module")
def split(mnist):
    """2,000 training images and the 500 after them for validation."""
    return split_train_val(mnist.train_images[:2500], mnist.train_labels[:2500], 500)


def trial(lr=0.1, weight_decay=0.0, epochs=2, val_accuracy=0.9, seconds=1.0) -> tuning.Trial:
    return tuning.Trial(lr, weight_decay, epochs, val_accuracy, seconds)


def test_candidates_are_distinct_settings_from_the_grid_the_same_for_the_same_seed():
    picked = tuning.candidates(8, np.random.default_rng(3))
    assert len(picked) == 8
    assert len({tuple(c.values()) for c in picked}) == 8
    for c in picked:
        assert set(c) == set(tuning.SPACE)
        assert all(c[key] in tuning.SPACE[key] for key in tuning.SPACE)
    assert picked == tuning.candidates(8, np.random.default_rng(3))
    grid_size = len(list(itertools.product(*tuning.SPACE.values())))
    assert len(tuning.candidates(1000, np.random.default_rng(0))) == grid_size


def test_a_trial_changes_only_the_learning_rate_weight_decay_and_epochs_of_the_base():
    config = tuning.apply(BASE, trial(lr=0.03, weight_decay=5e-4, epochs=4))
    assert (config.lr, config.weight_decay, config.epochs) == (0.03, 5e-4, 4)
    assert (
        dataclasses.replace(config, lr=BASE.lr, weight_decay=BASE.weight_decay, epochs=BASE.epochs)
        == BASE
    )


def test_each_trial_is_scored_on_the_validation_images_as_the_same_training_would_be(split):
    (train_x, train_y), (val_x, val_y) = split
    trials = tuning.search(BASE, train_x, train_y, val_x, val_y, budget=2)
    assert len(trials) == 2
    for t in trials:
        _, history = fit(tuning.apply(BASE, t), train_x, train_y, val_x, val_y)
        assert t.val_accuracy == history[-1].val_accuracy
        assert t.seconds > 0


def test_a_search_run_never_touches_the_test_set(tmp_path):
    runner = TrainingRunner(tmp_path, load_data=blind_mnist)
    runner.start("search", tuning_job(BASE, budget=2))
    state = runner.wait(60)
    assert state.status == "finished", state.message
    assert len(state.trials) == 2


def test_the_search_reports_each_trial_as_it_ends(split):
    (train_x, train_y), (val_x, val_y) = split
    seen = []
    trials = tuning.search(BASE, train_x, train_y, val_x, val_y, 3, lambda *a: seen.append(a))
    assert seen == [(t, i, 3) for i, t in enumerate(trials, 1)]


def test_a_stopped_search_returns_the_trials_it_finished(split):
    (train_x, train_y), (val_x, val_y) = split
    done = []
    trials = tuning.search(
        BASE,
        train_x,
        train_y,
        val_x,
        val_y,
        5,
        on_trial=lambda *a: done.append(a),
        should_stop=lambda: len(done) >= 2,
    )
    assert len(trials) == 2


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_a_diverging_setting_is_a_trial_without_a_score_not_an_error(split, monkeypatch):
    (train_x, train_y), (val_x, val_y) = split
    monkeypatch.setitem(tuning.SPACE, "lr", (1e6,))
    trials = tuning.search(
        dataclasses.replace(BASE, momentum=0.99), train_x, train_y, val_x, val_y, budget=1
    )
    assert [t.val_accuracy for t in trials] == [None]
    assert tuning.best(trials) is None
    assert "diverged" in tuning.format_table(trials)


def test_the_best_trial_has_the_top_validation_accuracy_and_among_equals_the_fewest_epochs():
    trials = [
        trial(lr=0.01, val_accuracy=0.95, epochs=8),
        trial(lr=0.1, val_accuracy=0.97, epochs=8),
        trial(lr=0.3, val_accuracy=0.97, epochs=4),
        trial(lr=1.0, val_accuracy=None),
    ]
    assert tuning.best(trials).lr == 0.3
    assert tuning.best([]) is None


def test_the_trials_table_has_a_header_and_one_aligned_line_per_trial():
    trials = [
        trial(lr=0.01, weight_decay=1e-4, epochs=8, val_accuracy=0.96875, seconds=12.34),
        trial(lr=0.3, val_accuracy=None, seconds=0.5),
    ]
    header, first, second = tuning.format_table(trials).splitlines()
    assert header.split() == ["trial", "lr", "weight_decay", "epochs", "val_accuracy", "seconds"]
    assert first.split() == ["1", "0.01", "0.0001", "8", "0.9688", "12.3"]
    assert second.split() == ["2", "0.3", "0", "2", "diverged", "0.5"]
    assert len(header) == len(first) == len(second)
