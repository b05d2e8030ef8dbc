"""Prefetching: the worker process augments exactly as augment_batch would, and cleans up."""

import gc
import tempfile
from pathlib import Path

import numpy as np
import pytest

from digits.data.augment import AugmentConfig, augment_batch
from digits.data.mnist import to_input
from digits.training.prefetch import (
    MAX_SHARE,
    SHARE_STEP,
    SHARED_DIR,
    ProcessAugmenter,
    ThreadPrefetcher,
    adjusted_share,
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


@pytest.mark.parametrize("share", [0.3, MAX_SHARE])
def test_what_the_training_process_augments_itself_matches_too(images, share):
    config = AugmentConfig(prob=0.7, elastic_px=0.7)
    expected_rng = np.random.default_rng(5)
    with ProcessAugmenter(images, np.random.default_rng(5), config, CHUNK) as worker:
        for idx in chunks(len(images)):
            worker.share = share
            got = worker.submit(idx).result()
            np.testing.assert_array_equal(got, augment_batch(images[idx], expected_rng, config))
    assert worker.own_seconds > 0


def test_the_training_process_takes_more_after_waiting_and_less_after_not():
    assert adjusted_share(0.1, waited=True) == pytest.approx(0.1 + SHARE_STEP)
    assert adjusted_share(0.1, waited=False) == pytest.approx(0.1 - SHARE_STEP / 2)
    assert adjusted_share(0.0, waited=False) == 0.0
    assert adjusted_share(MAX_SHARE, waited=True) == MAX_SHARE


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
