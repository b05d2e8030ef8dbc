"""Fine-tuning the current model on the user's own digits, with MNIST replay so it keeps MNIST.

The user's few dozen samples are too few to train on alone: the network would forget MNIST in
a few steps. So they are mixed into MNIST's training images (replay), repeated until they make
up `user_share` of each digit they show, and trainer.fit augments every image afresh each time
it is seen (augment_batch), so a repeated sample never looks quite the same twice. A part of
the user's samples is held out to show whether the model learnt the style or the samples.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from digits.data.mnist import Mnist, to_uint8
from digits.training.evaluation import accuracy, mnist_test_accuracy, predict_proba_batched
from digits.training.trainer import EpochRecord, TrainConfig, fit, training_data
from network import MLP, Classifier, layer_sizes

# Fewer samples than this cannot be split into a training part and a held-out part worth
# reporting on.
MIN_SAMPLES = 8


class FinetuneError(Exception):
    """Fine-tuning cannot start with what it was given; the message says what to do."""


@dataclass(frozen=True)
class FinetuneConfig:
    """How a fine-tuning run mixes, augments and steps; the defaults suit a few dozen samples."""

    epochs: int = 2
    lr: float = 0.005
    batch_size: int = 64
    # Training images (MNIST's and the drawn ones) replayed each epoch (None: all 95,000): the
    # more, the less the model forgets; two epochs over all of them take about four seconds.
    replay: int | None = None
    # Share of each taught digit's images that are (repeated) user samples.
    user_share: float = 0.1
    # Share of each digit's user samples kept out of training, to measure what was learnt.
    holdout: float = 0.25
    weight_decay: float = 2e-4
    augment: bool = True
    seed: int = 0

    def train_config(self) -> TrainConfig:
        """The trainer settings of this fine-tuning run: SGD, cosine decay, no warm-up."""
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup_epochs=0.0,
            augment=self.augment,
            seed=self.seed,
        )


@dataclass(frozen=True)
class FinetuneReport:
    """Accuracies before and after fine-tuning: on MNIST's test set, on the user samples it
    trained on, and on the held-out ones (None when no digit had enough samples to hold any)."""

    mnist_before: float
    mnist_after: float
    trained_before: float
    trained_after: float
    user_before: float | None
    user_after: float | None
    n_train: int
    n_heldout: int
    holdout: float

    def lines(self) -> list[str]:
        """The report as short lines of text, for a terminal or a caption."""
        lines = [
            f"MNIST test accuracy: {self.mnist_before:.2%} before, {self.mnist_after:.2%} after",
            f"the {self.n_train} samples of yours it trained on: {self.trained_before:.0%} "
            f"before, {self.trained_after:.0%} after",
        ]
        if self.user_before is not None and self.user_after is not None:
            lines.append(
                f"your {self.n_heldout} held-out samples, which it never saw: "
                f"{self.user_before:.0%} before, {self.user_after:.0%} after"
            )
        elif self.holdout > 0:
            lines.append(
                f"none of your samples was held out: {needed_to_hold_out(self.holdout)} of one "
                "digit are needed to hold one out and see how it reads digits of yours it never "
                "saw"
            )
        return lines


def network_from_params(params: dict, seed: int = 0) -> MLP:
    """A trainable MLP (batch norm off) holding the exported weights of a model file's params."""
    sizes = layer_sizes(params["weights"])
    loss = "cross_entropy" if params.get("output", "softmax") == "softmax" else "mse"
    network = MLP(
        sizes,
        np.random.default_rng(seed),
        activation=params.get("activation", "relu"),
        loss=loss,
    )
    dense = [layer for layer in network.layers if "W" in getattr(layer, "params", {})]
    for layer, W, b in zip(dense, params["weights"], params["biases"], strict=True):
        # Views into the network's flat parameter buffer: fill them, never rebind them.
        layer.params["W"][...] = W
        layer.params["b"][...] = b
    return network


def held_out_count(n: int, holdout: float) -> int:
    """How many of a digit's n samples are held out: about `holdout` of them, never the last."""
    return min(n - 1, int(holdout * n + 0.5))


def needed_to_hold_out(holdout: float) -> int:
    """The fewest samples of one digit of which fine-tuning holds one out."""
    if holdout <= 0:
        raise ValueError("nothing is held out when holdout is 0")
    return next(n for n in itertools.count(2) if held_out_count(n, holdout) > 0)


def n_held_out(labels: np.ndarray, holdout: float) -> int:
    """How many of the user's samples fine-tuning holds out."""
    return sum(held_out_count(int(n), holdout) for n in np.unique(labels, return_counts=True)[1])


def split_samples(
    labels: np.ndarray, holdout: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out) with about `holdout` of each digit's samples held out.

    A digit with a single sample keeps it for training.
    """
    train, held = [], []
    for digit in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        n_held = held_out_count(len(idx), holdout)
        held.append(idx[:n_held])
        train.append(idx[n_held:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def mix(
    user_images: np.ndarray,
    user_labels: np.ndarray,
    replay_images: np.ndarray,
    replay_labels: np.ndarray,
    user_share: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """The replay images with the user's, repeated, standing in for `user_share` of each digit.

    The user's samples replace MNIST images of the same digit rather than add to them, so the
    mix keeps MNIST's balance of digits: a user who teaches only 1s must not teach the model
    to answer 1 more often.
    """
    keep = np.ones(len(replay_labels), bool)
    parts_x, parts_y = [], []
    for digit in np.unique(user_labels):
        mine = np.flatnonzero(user_labels == digit)
        theirs = np.flatnonzero(replay_labels == digit)
        n_user = max(len(mine), round(user_share * len(theirs)))
        keep[rng.choice(theirs, size=min(n_user, len(theirs)), replace=False)] = False
        picked = np.resize(rng.permutation(mine), n_user)  # every sample about as often
        parts_x.append(user_images[picked])
        parts_y.append(user_labels[picked])
    images = np.concatenate([replay_images[keep], *parts_x])
    labels = np.concatenate([replay_labels[keep], *parts_y])
    return images, labels


def replay_mix(user_images, user_labels, mnist: Mnist, config: FinetuneConfig, rng):
    """(images, labels, validation split): the user's samples mixed into the replay."""
    # Replay what the model was trained on, drawn digits included, so it forgets neither (the
    # generated non-digits are left out until the shipped model is trained on them).
    (train_x, train_y), val, _ = training_data(mnist, TrainConfig(outliers=0))
    n_replay = len(train_x) if config.replay is None else min(config.replay, len(train_x))
    replay = rng.choice(len(train_x), size=n_replay, replace=False)
    images, labels = mix(
        user_images, user_labels, train_x[replay], train_y[replay], config.user_share, rng
    )
    return images, labels, val


def samples_accuracy(predict_proba, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy on user samples, uint8 images (n, 28, 28)."""
    return accuracy(predict_proba_batched(predict_proba, images), labels)


def scores(predict_proba, mnist: Mnist, held_images, held_labels) -> tuple[float, float | None]:
    """(MNIST test accuracy, accuracy on the held-out user samples or None without any)."""
    on_mnist = mnist_test_accuracy(predict_proba, mnist)
    if not len(held_labels):
        return on_mnist, None
    return on_mnist, samples_accuracy(predict_proba, held_images, held_labels)


def finetune(
    params: dict,
    user_images: np.ndarray,
    user_labels: np.ndarray,
    mnist: Mnist,
    config: FinetuneConfig = FinetuneConfig(),
    on_batch: Callable[[int, float, float], None] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> tuple[MLP, list[EpochRecord], FinetuneReport]:
    """Fine-tune the model in `params` on user images (n, 28, 28) float in [0, 1] and labels (n,).

    Returns the network, its history and the before/after report. Validation each epoch is
    on MNIST's validation split; the test set and the held-out user samples are only scored.
    on_start(images_per_epoch) is fit's: the replay, drawn digits and user samples included.
    """
    user_images = to_uint8(np.asarray(user_images))
    user_labels = np.asarray(user_labels, dtype=np.int64)
    if len(user_labels) < MIN_SAMPLES:
        raise FinetuneError(
            f"There are {len(user_labels)} samples; teach the app at least {MIN_SAMPLES} "
            "digits first (Right / Wrong under each prediction)."
        )
    rng = np.random.default_rng(config.seed)
    train_idx, held_idx = split_samples(user_labels, config.holdout, rng)
    images, labels, (val_x, val_y) = replay_mix(
        user_images[train_idx], user_labels[train_idx], mnist, config, rng
    )
    before = Classifier(params)
    network = network_from_params(params, config.seed)
    network, history = fit(
        config.train_config(), images, labels, val_x, val_y,
        on_batch, on_epoch, should_stop, network=network, on_start=on_start,
    )  # fmt: skip
    held = user_images[held_idx], user_labels[held_idx]
    mnist_before, user_before = scores(before.predict_proba, mnist, *held)
    mnist_after, user_after = scores(network.predict_proba, mnist, *held)
    trained = user_images[train_idx], user_labels[train_idx]
    report = FinetuneReport(
        mnist_before=mnist_before,
        mnist_after=mnist_after,
        trained_before=samples_accuracy(before.predict_proba, *trained),
        trained_after=samples_accuracy(network.predict_proba, *trained),
        user_before=user_before,
        user_after=user_after,
        n_train=len(train_idx),
        n_heldout=len(held_idx),
        holdout=config.holdout,
    )
    return network, history, report
