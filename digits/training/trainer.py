"""The training loop: batches (augmented on a second core), optimizer steps, validation, history.

`fit` is shared by the `train.py` command and anything else that trains (the app's Train
page): it prints nothing and reports through callbacks, so each caller shows progress its way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from digits.data.augment import AugmentConfig, augment_batch
from digits.data.mnist import (
    DRAWN_PATH,
    N_CLASSES,
    N_PIXELS,
    Mnist,
    load_drawn_training_set,
    to_input,
    with_drawn,
)
from digits.training.evaluation import accuracy, predict_proba_batched
from network import MLP
from optimizers import make_optimizer
from schedules import Constant, StepDecay, WarmupCosine

# Images per unit of work handed to the batch-preparation thread: large enough that its
# Python overhead is negligible, small enough that the chunk stays in cache-friendly sizes.
CHUNK = 2048


def chunk_size(batch_size: int) -> int:
    """Images per chunk for `batch_size`: CHUNK, or one whole batch when a batch is larger."""
    return max(CHUNK, batch_size)


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Optimizer steps in an epoch of `n_images`, cut as iterate_batches cuts them."""
    chunk = chunk_size(batch_size)
    return sum(-(-min(chunk, n_images - s) // batch_size) for s in range(0, n_images, chunk))


@dataclass
class TrainConfig:
    """Everything that defines a training run; the defaults reach >= 99% on the MNIST test set."""

    hidden: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    loss: str = "cross_entropy"
    batchnorm: bool = False
    dropout: float = 0.0
    epochs: int = 80
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 2e-4
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    augment: bool = True
    augment_config: AugmentConfig = field(default_factory=AugmentConfig)
    # Whether the training images include MNIST digits drawn as people draw them and read back
    # by the product's preprocessing (drawn_digits.py); the caller adds them, fit takes arrays.
    drawn: bool = True
    val_size: int = 5000
    patience: int | None = None
    seed: int = 0
    limit: int | None = None
    blas_threads: int = 1

    def to_dict(self) -> dict:
        """Plain-data form, for the model file's metadata and the history JSON."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


@dataclass
class EpochRecord:
    """One line of the training history."""

    epoch: int
    loss: float
    train_accuracy: float
    val_accuracy: float | None
    val_loss: float | None
    lr: float
    seconds: float


def split_train_val(images, labels, val_size: int, limit: int | None = None):
    """Hold out the last `val_size` training images for validation (never the test set)."""
    if not 0 <= val_size < len(images):
        raise ValueError(f"val_size must be in [0, {len(images)}), got {val_size}")
    cut = len(images) - val_size
    train_x, train_y = images[:cut], labels[:cut]
    val_x, val_y = images[cut:], labels[cut:]
    if limit is not None:
        train_x, train_y = train_x[:limit], train_y[:limit]
        val_x, val_y = val_x[: max(limit // 10, 1)], val_y[: max(limit // 10, 1)]
    return (train_x, train_y), (val_x, val_y)


def training_data(data: Mnist, config: TrainConfig, drawn_file: Path | str = DRAWN_PATH):
    """(train_x, train_y), (val_x, val_y), n_drawn for `config`: its MNIST split, and drawings.

    With config.drawn, the n_drawn drawings of the split's training images are appended to them
    (drawn_digits.py); raises DatasetError if that file is missing or damaged.
    """
    (train_x, train_y), val = split_train_val(
        data.train_images, data.train_labels, config.val_size, config.limit
    )
    n_mnist = len(train_x)
    if config.drawn:
        train_x, train_y = with_drawn(train_x, train_y, load_drawn_training_set(drawn_file))
    return (train_x, train_y), val, len(train_x) - n_mnist


def make_schedule(config: TrainConfig, steps_per_epoch: int):
    """The learning-rate schedule named in `config`, as a function of the global step."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "cosine":
        # A short run (--epochs 1) would otherwise be all warm-up and end at the peak rate.
        warmup = min(int(config.warmup_epochs * steps_per_epoch), total // 5)
        return WarmupCosine(config.lr, total=total, warmup=warmup)
    if config.schedule == "step":
        # Three decays of 10x spread over the run, the classic ImageNet-style staircase.
        return StepDecay(config.lr, step_size=max(1, total // 3), gamma=0.1)
    if config.schedule == "constant":
        return Constant(config.lr)
    raise ValueError(f"unknown schedule {config.schedule!r}; choose cosine, step or constant")


def iterate_batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    order: np.ndarray,
    prepare: Callable[[np.ndarray], np.ndarray],
    pool: ThreadPoolExecutor,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x (B, 784) float32, y (B,)) batches in `order`, prepared one chunk ahead.

    `prepare` turns uint8 images (n, 28, 28) into network input; it runs on the pool's thread
    while the caller trains on the previous chunk (NumPy releases the GIL in its loops).
    A batch larger than CHUNK is one chunk of its own, so every batch has `batch_size` images
    but the last.
    """
    chunk = chunk_size(batch_size)
    starts = range(0, len(order), chunk)

    def job(start: int):
        idx = order[start : start + chunk]
        return prepare(images[idx]), labels[idx]

    pending = pool.submit(job, starts[0]) if len(starts) else None
    for k in range(len(starts)):
        x, y = pending.result()
        pending = pool.submit(job, starts[k + 1]) if k + 1 < len(starts) else None
        # Batches never straddle chunks, so the last batch of a chunk may be short; batch
        # boundaries then stay identical with or without prefetching.
        for i in range(0, len(x), batch_size):
            yield x[i : i + batch_size], y[i : i + batch_size]


def fit(
    config: TrainConfig,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    on_batch: Callable[[int, float, float], None] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    network: MLP | None = None,
    on_start: Callable[[int], None] | None = None,
) -> tuple[MLP, list[EpochRecord]]:
    """Train an MLP on uint8 images (N, 28, 28) and labels (N,); returns it and its history.

    on_start(images_per_epoch) once before the first step, so a caller can size its progress
    bar; on_batch(batch_size, loss, accuracy) after every step; on_epoch(record) after every epoch;
    should_stop() is polled between steps so a caller can end the run cleanly. With
    `config.patience`, training stops after that many epochs without a better validation
    accuracy, and the best weights are restored.
    """
    seeds = np.random.SeedSequence(config.seed).spawn(3)
    init_rng, order_rng, augment_rng = (np.random.default_rng(s) for s in seeds)
    if network is None:
        network = MLP(
            (N_PIXELS, *config.hidden, N_CLASSES),
            init_rng,
            activation=config.activation,
            loss=config.loss,
            batchnorm=config.batchnorm,
            dropout=config.dropout,
        )
    optimizer_options = {"momentum": config.momentum} if config.optimizer == "sgd" else {}
    optimizer = make_optimizer(
        config.optimizer, network, weight_decay=config.weight_decay, **optimizer_options
    )
    schedule = make_schedule(config, steps_per_epoch(len(train_images), config.batch_size))

    if config.augment:

        def prepare(x):
            return augment_batch(x, augment_rng, config.augment_config)

    else:
        prepare = to_input

    history: list[EpochRecord] = []
    best_accuracy, best_state, stale_epochs = -1.0, None, 0
    step = 0
    stopped = False
    if on_start is not None:
        on_start(len(train_images))
    with ThreadPoolExecutor(max_workers=1) as pool, threadpool_limits(config.blas_threads, "blas"):
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            order = order_rng.permutation(len(train_images))
            loss_sum, correct, seen = 0.0, 0, 0
            lr = schedule(step)
            for x, y in iterate_batches(
                train_images, train_labels, config.batch_size, order, prepare, pool
            ):
                lr = schedule(step)
                loss, out = network.loss_and_grad(x, y)
                optimizer.step(lr)
                step += 1
                batch_correct = int(np.count_nonzero(out.argmax(axis=1) == y))
                loss_sum += loss * len(y)
                correct += batch_correct
                seen += len(y)
                if on_batch is not None:
                    on_batch(len(y), loss, batch_correct / len(y))
                if should_stop is not None and should_stop():
                    stopped = True
                    break
            if not np.isfinite(loss_sum):
                raise FloatingPointError(
                    f"training diverged in epoch {epoch} (loss is not finite); "
                    f"lower the learning rate (now {config.lr})"
                )
            val_accuracy = val_loss = None
            if val_images is not None and len(val_images):
                proba = predict_proba_batched(network.predict_proba, val_images)
                val_accuracy = accuracy(proba, val_labels)
                picked = proba[np.arange(len(val_labels)), val_labels]
                val_loss = float(-np.mean(np.log(np.maximum(picked, 1e-12))))
            record = EpochRecord(
                epoch=epoch,
                loss=loss_sum / max(seen, 1),
                train_accuracy=correct / max(seen, 1),
                val_accuracy=val_accuracy,
                val_loss=val_loss,
                lr=lr,
                seconds=time.perf_counter() - started,
            )
            history.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if stopped:
                break
            if config.patience is not None and val_accuracy is not None:
                if val_accuracy > best_accuracy:
                    best_accuracy, best_state, stale_epochs = val_accuracy, network.snapshot(), 0
                else:
                    stale_epochs += 1
                    if stale_epochs >= config.patience:
                        break
    if best_state is not None:
        network.restore(best_state)
    return network, history
