"""The generated non-digits: MNIST-style images of every kind, reproducible from the seed."""

import numpy as np

from digits.data.mnist import IMAGE_SIDE
from digits.data.non_digits import KINDS, non_digit_images


def test_every_kind_is_made_as_an_mnist_style_image(mnist):
    images, kinds = non_digit_images(40, np.random.default_rng(0), mnist.train_images[:100])
    assert images.shape == (40, IMAGE_SIDE, IMAGE_SIDE)
    assert images.dtype == np.uint8
    assert set(kinds) == set(KINDS)
    assert (images.reshape(40, -1).max(axis=1) == 255).all()


def test_the_same_seed_gives_the_same_non_digits(mnist):
    digits = mnist.train_images[:100]
    first, _ = non_digit_images(8, np.random.default_rng(5), digits)
    second, _ = non_digit_images(8, np.random.default_rng(5), digits)
    np.testing.assert_array_equal(first, second)
