"""The moving average the progress bar and the Train page's curve show."""

import pytest

from digits.training.progress import MovingAverage


def test_the_first_value_is_taken_as_it_is():
    average = MovingAverage()
    assert average.value is None
    assert average.update(2.0) == 2.0


def test_each_new_value_moves_the_average_by_its_weight():
    average = MovingAverage(weight=0.25)
    average.update(1.0)
    assert average.update(3.0) == pytest.approx(1.5)
    assert average.update(3.0) == pytest.approx(1.875)
