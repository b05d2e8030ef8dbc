"""The training loop: batching, validation split, early stopping, stopping on request."""

import numpy as np
import pytest

from digits.data.mnist import to_input
from digits.training.prefetch import ThreadPrefetcher
from digits.training.trainer import (
    PREFETCH_CHUNK,
    DataStory,
    TrainConfig,
    fit,
    iterate_batches,
    make_schedule,
    split_sizes,
    split_train_val,
    steps_per_epoch,
)


@pytest.fixture(scope="module")
def small(mnist):
    return mnist.train_images[:3000], mnist.train_labels[:3000]


def quick(**overrides) -> TrainConfig:
    options = {"epochs": 2, "augment": False, "hidden": (32,), "lr": 0.1, "val_size": 500}
    return TrainConfig(**{**options, **overrides})


def test_validation_is_the_last_training_images_and_never_the_test_set(mnist):
    (tx, _), (vx, vy) = split_train_val(mnist.train_images, mnist.train_labels, 5000)
    assert len(tx) == 55000
    assert len(vx) == 5000
    np.testing.assert_array_equal(vx, mnist.train_images[-5000:])
    # A copy, so that a caller done with the training images can let all of them go.
    assert not np.shares_memory(vx, mnist.train_images)
    np.testing.assert_array_equal(vy, mnist.train_labels[-5000:])


def test_batches_cover_every_image_once_per_epoch_in_the_given_order(small):
    images, labels = small
    order = np.random.default_rng(0).permutation(len(images))
    with ThreadPrefetcher(images, to_input) as prefetcher:
        batches = list(iterate_batches(prefetcher, labels, 100, order))
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    np.testing.assert_array_equal(x, to_input(images[order]))
    np.testing.assert_array_equal(y, labels[order])
    assert max(len(b[1]) for b in batches) == 100
    assert x.dtype == np.float32


def test_training_lowers_the_loss_and_records_one_history_line_per_epoch(small):
    images, labels = small
    (tx, ty), (vx, vy) = split_train_val(images, labels, 500)
    _, history = fit(quick(epochs=3), tx, ty, vx, vy)
    assert [r.epoch for r in history] == [1, 2, 3]
    assert history[-1].loss < history[0].loss
    assert history[-1].val_accuracy > 0.8
    assert all(r.seconds > 0 and r.lr >= 0 for r in history)


def test_the_same_seed_gives_the_same_weights_with_augmentation(small):
    a, _ = fit(quick(augment=True, seed=5), *small)
    b, _ = fit(quick(augment=True, seed=5), *small)
    c, _ = fit(quick(augment=True, seed=6), *small)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)


def test_early_stopping_ends_a_run_that_stops_improving_and_restores_the_best_epoch(small):
    images, labels = small
    (tx, ty), (vx, vy) = split_train_val(images, labels, 500)
    # A learning rate this large makes validation accuracy collapse after the first epochs.
    network, history = fit(
        quick(epochs=30, lr=5.0, patience=2, schedule="constant"), tx, ty, vx, vy
    )
    assert len(history) < 30
    best = max(r.val_accuracy for r in history)
    proba = network.predict_proba(to_input(vx))
    assert np.mean(proba.argmax(axis=1) == vy) == pytest.approx(best)


def test_a_stop_request_ends_training_after_the_current_step(small):
    calls = []
    _, history = fit(
        quick(epochs=5),
        *small,
        on_batch=lambda *a: calls.append(a),
        should_stop=lambda: len(calls) >= 3,
    )
    assert len(calls) == 3
    assert history == [], "an epoch cut short is not a whole one"


def test_a_run_stopped_in_its_second_epoch_keeps_only_the_first_in_its_history(small):
    steps = steps_per_epoch(len(small[1]), TrainConfig().batch_size)
    calls = []
    _, history = fit(
        quick(epochs=5),
        *small,
        on_batch=lambda *a: calls.append(a),
        should_stop=lambda: len(calls) >= steps + 2,
    )
    assert [r.epoch for r in history] == [1]


def test_warm_up_is_at_most_a_fifth_of_a_short_run():
    schedule = make_schedule(TrainConfig(epochs=1, warmup_epochs=1.0, lr=0.1), steps_per_epoch=100)
    assert schedule(50) < 0.1
    assert schedule(19) == pytest.approx(0.1)


def test_chunks_are_larger_than_a_batch():
    assert TrainConfig().batch_size <= PREFETCH_CHUNK


def test_fit_announces_the_images_of_an_epoch_before_its_first_step(small):
    events = []
    fit(
        quick(epochs=2),
        *small,
        on_start=lambda n: events.append(("start", n)),
        on_batch=lambda n, *_: events.append(("batch", n)),
    )
    assert events[0] == ("start", len(small[1]))
    assert sum(n for kind, n in events[1:]) == 2 * len(small[1])
    assert all(kind == "batch" for kind, _ in events[1:])


def test_batches_larger_than_a_chunk_are_used_whole(small):
    images, labels = small
    order = np.arange(len(images))
    with ThreadPrefetcher(images, to_input) as prefetcher:
        batches = list(iterate_batches(prefetcher, labels, PREFETCH_CHUNK + 452, order))
    assert [len(y) for _, y in batches] == [
        PREFETCH_CHUNK + 452,
        len(images) - PREFETCH_CHUNK - 452,
    ]
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), labels)


def test_batches_up_to_a_chunk_never_straddle_chunks_as_before(small):
    images, labels = small
    order = np.arange(len(images))
    with ThreadPrefetcher(images, to_input) as prefetcher:
        sizes = [len(y) for _, y in iterate_batches(prefetcher, labels, 1000, order)]
    assert sizes == [1000, 1000, PREFETCH_CHUNK - 2000, 952]


def test_fit_steps_with_the_batch_size_asked_for_even_above_a_chunk(small):
    sizes = []
    fit(quick(epochs=1, batch_size=2500), *small, on_batch=lambda n, *_: sizes.append(n))
    assert sizes == [2500, 500]


def test_the_data_story_counts_what_split_train_val_cuts(mnist):
    for limit in (None, 1000):
        (tx, _), (vx, _) = split_train_val(mnist.train_images, mnist.train_labels, 5000, limit)
        assert split_sizes(len(mnist.train_images), 5000, limit) == (len(tx), len(vx))
    story = DataStory.of({"val_size": 5000, "limit": 1000}, n_drawn=700)
    assert story == DataStory(mnist=60_000, train=1000, validation=100, drawn=700)


def test_the_data_story_reads_as_one_sentence():
    assert DataStory(60_000, 55_000, 5_000, 40_000).sentence() == (
        "the 60,000 MNIST training digits, 5,000 of them held out for validation, plus 40,000 "
        "drawn digits"
    )
    assert DataStory(60_000, 1_000, 100, 0).sentence() == (
        "1,100 of the 60,000 MNIST training digits, 100 of them held out for validation"
    )
