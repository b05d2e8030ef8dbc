"""Refusal and calibration: the threshold chosen on digits, the trade-off curve, reliability."""

import numpy as np
import pytest

from digits.training.evaluation import calibration, choose_refusal, refusal_curve
from digits.training.trainer import OUTLIER, Stepper, TrainConfig, new_network


def proba_with_top(tops: np.ndarray, digit: int = 0) -> np.ndarray:
    """(N, 10) rows whose top probability, on `digit`, is each of tops; the rest spread evenly."""
    proba = np.repeat(((1 - tops) / 9)[:, None], 10, axis=1)
    proba[:, digit] = tops
    return proba


def test_the_refusal_threshold_turns_away_the_given_share_of_digits():
    digits = proba_with_top(np.linspace(0.5, 1.0, 1001))
    threshold = choose_refusal(digits, 0.01)
    assert np.mean(digits.max(axis=1) < threshold) == pytest.approx(0.01, abs=0.002)


def test_the_curve_counts_digits_and_non_digits_under_each_threshold():
    digits = proba_with_top(np.array([0.95, 0.99, 0.6, 0.999]))
    others = proba_with_top(np.array([0.3, 0.5, 0.95]))
    curve = refusal_curve(digits, others, np.array([0.55, 0.9]))
    np.testing.assert_allclose(curve, [[0.55, 0.0, 2 / 3], [0.9, 0.25, 2 / 3]])


def test_a_calibrated_model_has_no_calibration_error_and_an_overconfident_one_has():
    rng = np.random.default_rng(0)
    tops = rng.uniform(0.15, 1.0, 20000)
    right = rng.random(20000) < tops
    labels = np.where(right, 0, 1)
    ece = calibration(proba_with_top(tops), labels).ece
    assert ece < 0.02
    overconfident = calibration(proba_with_top(np.full(20000, 0.99)), labels).ece
    assert overconfident == pytest.approx(0.99 - right.mean(), abs=1e-6)


def test_outliers_are_trained_toward_fresh_random_labels():
    config = TrainConfig(hidden=(8,), seed=0)
    stepper = Stepper(config, new_network(config, np.random.default_rng(0)), 10)
    labels = np.array([3, OUTLIER, 7, OUTLIER] * 500, np.uint8)
    first, second = stepper._uniform_outliers(labels), stepper._uniform_outliers(labels)
    assert (first[labels != OUTLIER] == labels[labels != OUTLIER]).all()
    assert first.max() < 10
    counts = np.bincount(first[labels == OUTLIER], minlength=10)
    assert counts.min() > 50  # every digit drawn: on average the target is uniform
    assert (first != second).any()
