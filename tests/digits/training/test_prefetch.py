"""Prefetching: the worker process augments exactly as augment_batch would, and cleans up."""

import gc
import tempfile
from pathlib import Path

import numpy as np
import pytest

from digits.data.augment import AugmentConfig, augment_batch
from digits.data.mnist import to_input
from digits.training.prefetch import (
    SHARED_DIR,
    Balance,
    ProcessAugmenter,
    ThreadPrefetcher,
    shared_file,
    shared_images,
)

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


@pytest.mark.parametrize("own", [1, 100, CHUNK // 2])
def test_what_the_training_process_augments_itself_matches_too(images, own):
    config = AugmentConfig(prob=0.7, elastic_px=0.7)
    expected_rng = np.random.default_rng(5)
    with ProcessAugmenter(images, np.random.default_rng(5), config, CHUNK) as worker:
        worker.balance.own_images = lambda n: min(own, n)
        for idx in chunks(len(images)):
            got = worker.submit(idx).result()
            np.testing.assert_array_equal(got, augment_batch(images[idx], expected_rng, config))
    assert worker.own_seconds > 0


def test_the_split_lets_both_processes_finish_a_chunk_together():
    balance = Balance()
    assert balance.own_images(2048) == 0  # nothing known yet: the worker does it all
    balance.worker_did(2048, 0.02048)  # 10 us an image
    balance.trained(0.01)
    # (2048 - k) * 10 us = 10 ms + k * 10 us, with the worker's cost standing in for its own
    assert balance.own_images(2048) == 524
    balance.own_did(524, 0.01048)  # 20 us an image here: (2048 - k) * 10 = 10,000 + k * 20
    assert balance.own_images(2048) == 349


def test_the_training_process_never_takes_more_than_half_and_none_when_training_is_slower():
    balance = Balance()
    balance.worker_did(100, 1.0)
    assert balance.own_images(2048) == 1024
    balance.trained(100.0)
    assert balance.own_images(2048) == 0


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


def test_its_files_are_closed_nameless_and_batches_handed_out_stay_readable(images):
    idx = chunks(len(images))[0]
    before = set(Path(SHARED_DIR or tempfile.gettempdir()).iterdir())
    with ProcessAugmenter(images, np.random.default_rng(0), AugmentConfig(), CHUNK) as worker:
        # Nameless files: nothing is left behind even if both processes are killed.
        assert set(Path(SHARED_DIR or tempfile.gettempdir()).iterdir()) == before
        batch = worker.submit(idx).result()
    assert all(file.closed for file in worker.files)
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


def shared_copy(images: np.ndarray) -> np.ndarray:
    shared = shared_images(images.shape)
    shared[...] = images
    return shared


def test_shared_images_reach_the_worker_by_name_without_a_second_copy(images):
    shared = shared_copy(images)
    idx = chunks(len(images))[0]
    with ProcessAugmenter(shared, np.random.default_rng(0), AugmentConfig(), CHUNK) as worker:
        assert len(worker.files) == 1  # the outputs only
        batch = worker.submit(idx).result()
    np.testing.assert_array_equal(batch, augment_batch(images[idx], np.random.default_rng(0)))


def test_part_of_shared_images_is_copied_as_any_array_is(images):
    part = shared_copy(images)[10:]
    assert shared_file(part) is None
    with ProcessAugmenter(part, np.random.default_rng(0), AugmentConfig(), CHUNK) as worker:
        assert len(worker.files) == 2  # a copy of the images, and the outputs


def test_the_file_behind_shared_images_goes_with_them(images):
    shared = shared_copy(images)
    file = shared_file(shared)
    np.testing.assert_array_equal(shared, images)
    assert file is not None
    assert not file.closed
    del shared
    gc.collect()
    assert file.closed
