"""Numbers written as people write them: gaps or touching neighbours, canvas or photo."""

import numpy as np
import pytest

from digits.data.drawn_numbers import compose, draw_number, ink_patch
from digits.data.segment import label_components


@pytest.fixture(scope="module")
def patches(mnist):
    rng = np.random.default_rng(0)
    return [ink_patch(mnist.test_images[i], 100, 12, rng) for i in range(4)]  # 7, 2, 1, 0


def test_a_number_with_gaps_has_empty_columns_between_its_digits(patches):
    ink = compose(patches, touching=False, rng=np.random.default_rng(1)) > 0
    columns = ink.any(axis=0)
    starts = np.flatnonzero(columns[1:] & ~columns[:-1])
    assert len(starts) == len(patches)  # each digit begins after empty columns


def test_touching_neighbours_share_ink(patches):
    # Neighbours overlap by a few pixels of stroke, so the number is fewer pieces than digits.
    ink = compose(patches, touching=True, rng=np.random.default_rng(1)) > 0
    _, pieces = label_components(ink)
    assert pieces < len(patches)


def test_heights_vary_within_a_number_but_stay_close(mnist):
    rng = np.random.default_rng(2)
    heights = [ink_patch(mnist.test_images[i], 100, 12, rng).shape[0] for i in range(20)]
    assert 80 <= min(heights) < max(heights) <= 120


@pytest.mark.parametrize(("style", "channels"), [("canvas", 4), ("paper", 3)])
def test_a_drawn_number_is_dressed_as_the_app_receives_it_and_keeps_its_digits_alone(
    mnist, style, channels
):
    digits, labels = [mnist.test_images[i] for i in range(3)], [7, 2, 1]
    number = draw_number(digits, labels, style, touching=False, seed=5)
    assert number.text == "721"
    assert number.image.ndim == 3
    assert number.image.shape[2] == channels
    assert len(number.alone) == 3
    again = draw_number(digits, labels, style, touching=False, seed=5)
    np.testing.assert_array_equal(number.image, again.image)


def test_an_unknown_style_is_refused(mnist):
    with pytest.raises(ValueError, match="Unknown style"):
        draw_number([mnist.test_images[0]], [7], "chalk", touching=False, seed=0)
