"""Specification of the drawn training digits: made from training images only, kept, read back."""

import subprocess
import sys

import numpy as np
import pytest

from digits.data.drawn_digits import (
    DRAWN_COUNT,
    DRAWN_SEED,
    STYLES,
    draw_and_read,
    make_drawn_training_set,
)
from digits.data.mnist import (
    DRAWN_PATH,
    TRAIN_SOURCES,
    DatasetError,
    drawn_for,
    load_drawn_training_set,
)
from digits.training.trainer import TrainConfig, training_data

ROOT = DRAWN_PATH.parent.parent.parent


@pytest.fixture(scope="module")
def small_set(mnist):
    return make_drawn_training_set(mnist, n=12, seed=5, workers=1)


@pytest.fixture(scope="module")
def committed():
    return load_drawn_training_set()


def test_a_drawn_digit_is_the_rendering_read_back_by_the_products_preprocessing(small_set, mnist):
    for i in (0, 7):
        source, style = int(small_set["source"][i]), int(small_set["style"][i])
        rng = np.random.default_rng([5, source, style])
        expected = draw_and_read(mnist.train_images[source], STYLES[style], rng)
        np.testing.assert_array_equal(small_set["images"][i], expected)
        assert small_set["labels"][i] == mnist.train_labels[source]


def test_the_set_does_not_depend_on_the_number_of_workers(small_set, mnist):
    again = make_drawn_training_set(mnist, n=12, seed=5, workers=2)
    for key in small_set:
        np.testing.assert_array_equal(again[key], small_set[key])


def test_drawn_digits_are_full_contrast_mnist_style_inputs(small_set):
    images = small_set["images"]
    assert images.dtype == np.uint8
    assert images.shape[1:] == (28, 28)
    assert (images.max(axis=(1, 2)) == 255).all()
    # Fitted into 20x20 like MNIST (anti-aliasing may touch one more pixel on a side).
    for image in images:
        rows, cols = np.nonzero(image)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 in (20, 21, 22)


def test_the_committed_set_draws_only_training_digits_outside_the_validation_split(committed):
    cut = len(committed["source"])
    assert cut > 0.99 * DRAWN_COUNT
    assert committed["source"].max() < TRAIN_SOURCES
    assert 60_000 - TrainConfig().val_size == TRAIN_SOURCES
    assert len(np.unique(committed["source"])) == cut


def test_the_committed_set_covers_every_style_and_digit(committed):
    assert set(np.unique(committed["style"])) == set(range(len(STYLES)))
    counts = np.bincount(committed["labels"], minlength=10)
    assert counts.min() > 0.07 * counts.sum()


def test_the_committed_set_is_what_the_generator_draws(committed, mnist):
    # Spot checks: redrawing a few entries with the documented seed gives the same bytes.
    for i in (0, len(committed["source"]) // 2, len(committed["source"]) - 1):
        source, style = int(committed["source"][i]), int(committed["style"][i])
        rng = np.random.default_rng([DRAWN_SEED, source, style])
        expected = draw_and_read(mnist.train_images[source], STYLES[style], rng)
        np.testing.assert_array_equal(committed["images"][i], expected)
        assert committed["labels"][i] == mnist.train_labels[source]


def test_only_drawings_of_the_training_images_given_are_added(small_set, mnist):
    images, labels = mnist.train_images[:30_000], mnist.train_labels[:30_000]
    x, y = drawn_for(images, labels, small_set)
    inside = small_set["source"] < 30_000
    assert len(x) == len(y) == inside.sum()
    np.testing.assert_array_equal(x, small_set["images"][inside])
    np.testing.assert_array_equal(y, small_set["labels"][inside])


def test_training_data_adds_the_drawings_of_its_own_split_only(committed, mnist):
    (x, y), (val_x, _), story = training_data(mnist, TrainConfig(limit=1000))
    assert story.drawn == np.count_nonzero(committed["source"] < 1000) > 0
    assert len(x) == len(y) == 1000 + story.drawn
    np.testing.assert_array_equal(x[1000:], committed["images"][committed["source"] < 1000])
    # Validation stays MNIST's own images, from the end of the training set.
    np.testing.assert_array_equal(val_x, mnist.train_images[55_000:55_100])


def test_training_data_without_drawn_is_the_mnist_split(mnist):
    (x, _), _, story = training_data(mnist, TrainConfig(limit=1000, drawn=False))
    assert story.drawn == 0
    np.testing.assert_array_equal(x, mnist.train_images[:1000])


def test_a_missing_set_says_how_to_make_it(tmp_path):
    with pytest.raises(DatasetError, match=r"missing; run `python -m digits.data.drawn_digits`"):
        load_drawn_training_set(tmp_path / "none.npz")


def test_a_file_that_is_not_a_set_is_refused_in_one_sentence(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(DatasetError, match="is not a drawn-digit set"):
        load_drawn_training_set(garbage)


def test_a_set_of_the_wrong_shape_is_refused(tmp_path, small_set):
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, **{**small_set, "images": small_set["images"][:, :20]})
    with pytest.raises(DatasetError, match="does not hold uint8 28x28 digits"):
        load_drawn_training_set(wrong)


def test_a_set_holding_pickled_objects_is_refused_without_unpickling(tmp_path, small_set):
    sneaky = tmp_path / "sneaky.npz"
    np.savez(sneaky, **{**small_set, "labels": np.array([object()] * 12)})
    with pytest.raises(DatasetError, match="is not a drawn-digit set"):
        load_drawn_training_set(sneaky)


@pytest.mark.slow
def test_train_py_without_the_set_stops_with_one_line_and_no_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--drawn-file",
            str(tmp_path / "none.npz"),
            "--output",
            str(tmp_path / "m.pkl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 66
    assert "Traceback" not in result.stderr
    assert "missing; run `python -m digits.data.drawn_digits` to draw it again" in result.stderr
    assert "train.py --no-drawn" in result.stderr
    assert not (tmp_path / "m.pkl").exists()


def test_drawings_of_another_order_of_mnist_are_refused(small_set, mnist):
    shuffled = np.random.default_rng(0).permutation(30_000)
    images, labels = mnist.train_images[shuffled], mnist.train_labels[shuffled]
    with pytest.raises(DatasetError, match="labels do not match these training images"):
        drawn_for(images, labels, small_set)
