"""Scoring a model: the reliability diagram's bins and the expected calibration error."""

import numpy as np
import pytest

from digits.training.evaluation import calibration


def two_class(top: list[float]) -> np.ndarray:
    """Probabilities (N, 2) whose top class is 0 with the given probabilities."""
    top_array = np.asarray(top)
    return np.stack([top_array, 1 - top_array], axis=1)


def test_a_model_right_as_often_as_it_is_sure_has_no_calibration_error():
    # Ten answers at 80%, eight of them right; ten at 100%, all right.
    proba = two_class([0.8] * 10 + [1.0] * 10)
    labels = np.array([0] * 8 + [1] * 2 + [0] * 10)
    result = calibration(proba, labels, n_bins=10)
    assert result.counts.tolist() == [0] * 7 + [10, 0, 10]
    assert result.confidence[7] == pytest.approx(0.8)
    assert result.accuracy[7] == pytest.approx(0.8)
    assert result.accuracy[9] == 1.0
    assert np.isnan(result.accuracy[0]), "an empty bin has no accuracy"
    assert result.ece == pytest.approx(0.0)


def test_an_overconfident_model_has_the_count_weighted_gap_as_its_error():
    # Sure at 95% but right half the time: a gap of 0.45 on all answers.
    proba = two_class([0.95] * 4)
    labels = np.array([0, 1, 0, 1])
    assert calibration(proba, labels).ece == pytest.approx(0.45)
