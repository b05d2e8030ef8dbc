"""Smaller MNISTs for the Train page's runs, as loaders that pickle.

A runner's job calls its loader in a process of its own (digits/app/job_process.py), so a loader
must be a module-level function rather than a lambda over a fixture.
"""

from digits.data.mnist import Mnist, load_mnist


def small_mnist() -> Mnist:
    """3,000 training images (the last 500 for validation) and 1,000 test images."""
    mnist = load_mnist()
    return Mnist(
        mnist.train_images[:3000], mnist.train_labels[:3000],
        mnist.test_images[:1000], mnist.test_labels[:1000],
    )  # fmt: skip


class Untouchable:
    """Stands in for the test set: any use of it fails the run."""

    def __getattr__(self, name):
        raise AssertionError("the search used the test set")

    def __len__(self):
        raise AssertionError("the search used the test set")

    def __getitem__(self, index):
        raise AssertionError("the search used the test set")


def blind_mnist() -> Mnist:
    """2,500 training images and a test set that fails whatever reads it."""
    mnist = load_mnist()
    return Mnist(mnist.train_images[:2500], mnist.train_labels[:2500], Untouchable(), Untouchable())
