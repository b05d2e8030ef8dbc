"""Prefetching: the worker process augments exactly as augment_batch would, and cleans up."""

from pathlib import Path

import numpy as np
import pytest

from digits.data.augment import AugmentConfig, augment_batch
from digits.data.mnist import to_input
from digits.training.prefetch import ProcessAugmenter, ThreadPrefetcher

CHUNK = 256


@pytest.fixture(scope="module")
def images(mnist):
    return mnist.train_images[:1000]


def chunks(n: int, seed: int = 0) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[s : s + CHUNK] for s in range(0, n, CHUNK)]


def test_the_worker_augments_as_augment_batch_does_chunk_after_chunk(images):
    config = AugmentConfig()
    expected_rng = np.random.default_rng(7)
    with ProcessAugmenter(images, np.random.default_rng(7), config, CHUNK) as worker:
        for idx in chunks(len(images)):
            got = worker.submit(idx).result()
            np.testing.assert_array_equal(got, augment_batch(images[idx], expected_rng, config))
    assert worker.busy_seconds > 0


def test_a_chunk_nobody_waited_for_does_not_shift_the_next_ones(images):
    config = AugmentConfig()
    expected_rng = np.random.default_rng(3)
    first, second, third = chunks(len(images))[:3]
    with ProcessAugmenter(images, np.random.default_rng(3), config, CHUNK) as worker:
        worker.submit(first).result()
        worker.submit(second)  # abandoned, as when a run is stopped mid-epoch
        got = worker.submit(third).result()
    augment_batch(images[first], expected_rng, config)
    augment_batch(images[second], expected_rng, config)
    np.testing.assert_array_equal(got, augment_batch(images[third], expected_rng, config))


def test_its_files_are_gone_once_closed_and_batches_handed_out_stay_readable(images):
    idx = chunks(len(images))[0]
    with ProcessAugmenter(images, np.random.default_rng(0), AugmentConfig(), CHUNK) as worker:
        folder = Path(worker.folder.name)
        batch = worker.submit(idx).result()
    assert not folder.exists()
    assert worker.worker.returncode == 0
    np.testing.assert_array_equal(batch, augment_batch(images[idx], np.random.default_rng(0)))


def test_a_worker_that_dies_is_reported_not_waited_for_forever(images):
    with ProcessAugmenter(images, np.random.default_rng(0), AugmentConfig(), CHUNK) as worker:
        worker.worker.kill()
        with pytest.raises(RuntimeError, match="augmentation worker stopped"):
            worker.submit(chunks(len(images))[0]).result()


def test_plain_input_is_converted_on_a_thread(images):
    idx = chunks(len(images))[0]
    with ThreadPrefetcher(images, to_input) as prefetcher:
        np.testing.assert_array_equal(prefetcher.submit(idx).result(), to_input(images[idx]))
