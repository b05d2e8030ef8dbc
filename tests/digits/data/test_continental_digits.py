"""The hands MNIST rarely shows: MNIST-like digits with the stroke that sets each hand apart."""

import numpy as np
import pytest

from digits.data.continental_digits import (
    NAMES,
    STYLES,
    continental_digit,
    continental_set,
    continental_test_set,
)
from digits.data.drawn_digits import STYLES as DRAWN_STYLES
from digits.data.preprocess import preprocess


@pytest.mark.parametrize("name", NAMES)
def test_each_hand_is_an_mnist_like_digit_in_the_middle_of_28x28(name):
    digit = continental_digit(name, np.random.default_rng(0))
    assert digit.shape == (28, 28)
    assert digit.dtype == np.uint8
    assert digit.max() == 255
    assert digit[0].max() == digit[-1].max() == 0
    rows, cols = np.nonzero(digit)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) in range(17, 22)  # the 20x20 box
    assert abs((rows.min() + rows.max()) / 2 - 13.5) <= 1.5
    assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 1.5


def test_a_flagged_one_has_ink_left_of_its_stem_near_the_top_and_a_plain_ring_does_not_cross():
    rng = np.random.default_rng(1)
    flag = continental_digit("1 with a flag", rng)
    top = flag[: 28 // 3]
    stem = int(np.argmax(flag.sum(axis=0)))  # the column with the most ink
    assert top[:, : stem - 3].sum() > 0
    slashed = continental_digit("0 with a slash", rng)
    assert slashed[12:16, 12:16].max() > 128  # the slash crosses the ring's middle


def test_the_same_seed_draws_the_same_digits_and_labels_follow_the_hand():
    images, labels, styles = continental_set(3, seed=5)
    again, _, _ = continental_set(3, seed=5)
    np.testing.assert_array_equal(images, again)
    assert len(images) == 3 * len(NAMES)
    assert [STYLES[NAMES[s]][0] for s in styles] == labels.tolist()
    assert not np.array_equal(images, continental_set(3, seed=6)[0])


def test_held_out_drawings_come_in_every_drawn_style_and_the_app_finds_the_digit():
    images, labels = continental_test_set("7 with a crossbar", 2)
    assert len(images) == 2 * len(DRAWN_STYLES)
    assert set(labels) == {7}
    assert all(preprocess(image).has_digit for image in images)


def test_drawn_training_digits_are_read_back_the_way_the_app_reads_a_drawing():
    raw, labels, styles = continental_set(3, seed=5)
    drawn, drawn_labels, drawn_styles = continental_set(3, seed=5, drawn=True)
    np.testing.assert_array_equal(drawn_labels, labels)
    np.testing.assert_array_equal(drawn_styles, styles)
    assert drawn.shape == raw.shape
    assert drawn.dtype == np.uint8
    assert all(not np.array_equal(a, b) for a, b in zip(drawn, raw, strict=True))
    np.testing.assert_array_equal(drawn, continental_set(3, seed=5, drawn=True)[0])
