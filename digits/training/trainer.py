"""The training loop: batches (augmented on a second core), optimizer steps, validation, history.

`fit` is shared by the `train.py` command and anything else that trains (the app's Train
page): it prints nothing and reports through callbacks, so each caller shows progress its way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from digits.data.augment import AugmentConfig
from digits.data.continental_digits import NAMES as CONTINENTAL_HANDS
from digits.data.continental_digits import TRAIN_SEED as CONTINENTAL_SEED
from digits.data.continental_digits import continental_set
from digits.data.mnist import (
    DRAWN_PATH,
    N_CLASSES,
    N_PIXELS,
    N_TRAIN,
    Mnist,
    drawn_for,
    load_drawn_training_set,
)
from digits.data.non_digits import non_digit_images
from digits.training.evaluation import accuracy, predict_proba_batched
from digits.training.prefetch import Prefetcher, open_prefetcher, shared_images
from network import MLP
from optimizers import make_optimizer
from schedules import Constant, StepDecay, WarmupCosine

# Images per unit of work handed to the batch-preparation thread: large enough that its
# Python overhead is negligible, small enough that the chunk stays in cache-friendly sizes.
PREFETCH_CHUNK = 2048
# The label of a generated non-digit (uint8 labels have no -1), and its generator's seed.
OUTLIER = 255
OUTLIER_SEED = 11


def chunk_size(batch_size: int) -> int:
    """Images per prefetched chunk: PREFETCH_CHUNK, or one whole batch when a batch is larger."""
    return max(PREFETCH_CHUNK, batch_size)


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Optimizer steps in an epoch of `n_images`, cut as iterate_batches cuts them."""
    chunk = chunk_size(batch_size)
    return sum(-(-min(chunk, n_images - s) // batch_size) for s in range(0, n_images, chunk))


# The default run's augmentation: a light elastic distortion on top of the affine warps, and
# seven images in ten augmented, the rest passed plain, so the worker keeps up with training.
RECIPE_AUGMENT = AugmentConfig(prob=0.7, elastic_px=0.7)


@dataclass
class TrainConfig:
    """Everything that defines a training run; the defaults reach >= 99% on the MNIST test set."""

    hidden: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    loss: str = "cross_entropy"
    batchnorm: bool = False
    dropout: float = 0.0
    epochs: int = 56
    batch_size: int = 256
    optimizer: str = "sgd"
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 2e-4
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    augment: bool = True
    augment_config: AugmentConfig = RECIPE_AUGMENT
    # Whether the training images include MNIST digits drawn as people draw them and read back
    # by the product's preprocessing (drawn_digits.py); the caller adds them, fit takes arrays.
    drawn: bool = True
    # How many generated non-digits (non_digits.py) are trained toward a uniform output, so the
    # network learns to hesitate on what is not a digit (outlier exposure). Off by default until
    # a model trained with them meets every target: the default run reproduces the shipped one.
    outliers: int = 0
    # How many digits of each hand MNIST rarely shows (continental_digits.py: a flagged 1, a
    # crossed 7, a slashed 0, ...) join the training images. Off by default for the same reason.
    continental: int = 0
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


def split_sizes(n_images: int, val_size: int, limit: int | None = None) -> tuple[int, int]:
    """(training, validation) image counts that split_train_val cuts from `n_images`."""
    if not 0 <= val_size < n_images:
        raise ValueError(f"val_size must be in [0, {n_images}), got {val_size}")
    n_train, n_val = n_images - val_size, val_size
    if limit is not None:
        n_train, n_val = min(limit, n_train), min(max(limit // 10, 1), n_val)
    return n_train, n_val


def split_train_val(images, labels, val_size: int, limit: int | None = None):
    """Hold out the last `val_size` training images for validation (never the test set)."""
    n_train, n_val = split_sizes(len(images), val_size, limit)
    val = slice(len(images) - val_size, len(images) - val_size + n_val)
    # The validation split is copied, so it does not keep all of `images` alive.
    return (images[:n_train], labels[:n_train]), (images[val].copy(), labels[val].copy())


@dataclass(frozen=True)
class DataStory:
    """What a model learnt from, in the words every page and command uses."""

    mnist: int  # MNIST's training images in all, the validation split among them
    train: int  # of them, the ones trained on
    validation: int
    drawn: int  # MNIST training digits drawn again as people draw them, added to `train`
    non_digits: int = 0  # generated letters, shapes and scribbles it learns to refuse
    continental: int = 0  # generated digits in hands MNIST rarely shows, added to `train`

    @classmethod
    def of(cls, config: dict, n_drawn: int, n_mnist: int = N_TRAIN) -> DataStory:
        """The story of a run from its config (as in a model file) and its drawn count."""
        val_size = config.get("val_size", TrainConfig.val_size)
        split = split_sizes(n_mnist, val_size, config.get("limit"))
        hands = (config.get("continental") or 0) * len(CONTINENTAL_HANDS)
        return cls(n_mnist, *split, n_drawn, config.get("outliers") or 0, hands)

    def sentence(self) -> str:
        """E.g. "the 60,000 MNIST training digits, 5,000 of them held out for validation, plus
        40,000 drawn digits"."""
        used = self.train + self.validation
        which = f"the {used:,}" if used == self.mnist else f"{used:,} of the {self.mnist:,}"
        drawn = f", plus {self.drawn:,} drawn digits" if self.drawn else ""
        hands = (
            f", {self.continental:,} generated digits in hands MNIST rarely shows"
            if self.continental
            else ""
        )
        refused = f" and {self.non_digits:,} generated non-digits" if self.non_digits else ""
        return (
            f"{which} MNIST training digits, {self.validation:,} of them held out for "
            f"validation{drawn}{hands}{refused}"
        )


def training_data(data: Mnist, config: TrainConfig, drawn_file: Path | str = DRAWN_PATH):
    """(train_x, train_y), (val_x, val_y), story for `config`: its MNIST split, and drawings.

    With config.drawn, the drawings of the split's training images are appended to them
    (drawn_digits.py); raises DatasetError if that file is missing or damaged. With
    config.continental, that many digits of each continental hand follow, and with
    config.outliers, that many generated non-digits labelled OUTLIER (non_digits.py).
    With config.augment, train_x is in shared memory, where the augmentation worker maps it.
    """
    (mnist_x, mnist_y), val = split_train_val(
        data.train_images, data.train_labels, config.val_size, config.limit
    )
    parts = [(mnist_x, mnist_y)]
    if config.drawn:
        parts.append(drawn_for(mnist_x, mnist_y, load_drawn_training_set(drawn_file)))
    if config.continental:
        # Drawn and read back, as the app reads the hands people draw.
        hands, labels, _ = continental_set(config.continental, CONTINENTAL_SEED, drawn=True)
        parts.append((hands, labels.astype(mnist_y.dtype)))
    if config.outliers:
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, OUTLIER_SEED]))
        outliers, _ = non_digit_images(config.outliers, rng, mnist_x)
        parts.append((outliers, np.full(len(outliers), OUTLIER, mnist_y.dtype)))
    n_drawn = len(parts[1][0]) if config.drawn else 0
    n_hands = config.continental * len(CONTINENTAL_HANDS)
    story = DataStory(
        len(data.train_images), len(mnist_x), len(val[0]), n_drawn, config.outliers, n_hands
    )
    n_images = sum(len(x) for x, _ in parts)
    # Joined straight into the array training reads, so no image is held twice meanwhile.
    shape = (n_images, *mnist_x.shape[1:])
    train_x = shared_images(shape) if config.augment else np.empty(shape, mnist_x.dtype)
    np.concatenate([x for x, _ in parts], out=train_x)
    return (train_x, np.concatenate([y for _, y in parts])), val, story


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
    prefetcher: Prefetcher,
    labels: np.ndarray,
    batch_size: int,
    order: np.ndarray,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x (B, 784) float32, y (B,)) batches in `order`, prepared one chunk ahead.

    The prefetcher prepares the next chunk on the second core while the caller trains on
    this one; a batch is valid until the next is asked for. A batch larger than
    PREFETCH_CHUNK is one chunk of its own, so every batch has `batch_size` images but the last.
    """
    chunk = chunk_size(batch_size)
    chunks = [order[start : start + chunk] for start in range(0, len(order), chunk)]
    if not chunks:
        return
    pending = [prefetcher.submit(chunks[0])]
    for k, idx in enumerate(chunks):
        # The next chunk goes first, so the worker starts on it while this one is finished.
        if k + 1 < len(chunks):
            pending.append(prefetcher.submit(chunks[k + 1]))
        x = pending.pop(0).result()
        y = labels[idx]
        # Batches never straddle chunks, so the last batch of a chunk may be short; batch
        # boundaries then stay identical with or without prefetching.
        for i in range(0, len(x), batch_size):
            yield x[i : i + batch_size], y[i : i + batch_size]


def new_network(config: TrainConfig, rng: np.random.Generator) -> MLP:
    return MLP(
        (N_PIXELS, *config.hidden, N_CLASSES),
        rng,
        activation=config.activation,
        loss=config.loss,
        batchnorm=config.batchnorm,
        dropout=config.dropout,
    )


def validate(network: MLP, images, labels) -> tuple[float | None, float | None]:
    """(accuracy, mean cross-entropy) on a validation split; (None, None) without one."""
    if images is None or labels is None or not len(images):
        return None, None
    proba = predict_proba_batched(network.predict_proba, images)
    picked = proba[np.arange(len(labels)), labels]
    return accuracy(proba, labels), float(-np.mean(np.log(np.maximum(picked, 1e-12))))


@dataclass
class EpochTotals:
    """What one epoch's steps add up to, and where the run stands after it."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    lr: float = 0.0
    stopped: bool = False


class EarlyStopping:
    """Keeps the best weights by validation accuracy; says stop after `patience` worse epochs."""

    def __init__(self, patience: int | None):
        self.patience = patience
        self.best_accuracy, self.stale = -1.0, 0
        self.best_state: list[np.ndarray] | None = None

    def should_stop(self, val_accuracy: float | None, network: MLP) -> bool:
        if self.patience is None or val_accuracy is None:
            return False
        if val_accuracy > self.best_accuracy:
            self.best_accuracy, self.best_state, self.stale = val_accuracy, network.snapshot(), 0
            return False
        self.stale += 1
        return self.stale >= self.patience

    def restore_best(self, network: MLP) -> None:
        if self.best_state is not None:
            network.restore(self.best_state)


class Stepper:
    """The optimizer steps of a run: the network, its update rule and the rate's schedule."""

    def __init__(
        self,
        config: TrainConfig,
        network: MLP,
        steps_per_epoch: int,
        rng: np.random.Generator | None = None,
    ):
        self.rng = rng if rng is not None else np.random.default_rng(config.seed)
        options = {"momentum": config.momentum} if config.optimizer == "sgd" else {}
        self.network = network
        self.optimizer = make_optimizer(
            config.optimizer, network, weight_decay=config.weight_decay, **options
        )
        self.schedule = make_schedule(config, steps_per_epoch)
        self.step = 0

    def epoch(self, batches, on_batch=None, should_stop=None) -> EpochTotals:
        """One step per batch; stops early, with totals.stopped, once should_stop() says so."""
        totals = EpochTotals(lr=self.schedule(self.step))
        for x, y in batches:
            totals.lr = self.schedule(self.step)
            loss, batch_correct = self.network.loss_and_grad(x, self._uniform_outliers(y))
            self.optimizer.step(totals.lr)
            self.step += 1
            totals.loss_sum += loss * len(y)
            totals.correct += batch_correct
            totals.seen += len(y)
            if on_batch is not None:
                on_batch(len(y), loss, batch_correct / len(y))
            if should_stop is not None and should_stop():
                totals.stopped = True
                break
        return totals

    def _uniform_outliers(self, labels: np.ndarray) -> np.ndarray:
        """The labels with each OUTLIER drawn afresh at random.

        Cross-entropy against a uniformly random label is, on average, cross-entropy against
        the uniform distribution: the outlier-exposure target (Hendrycks et al. 2019).
        """
        outliers = labels == OUTLIER
        if not outliers.any():
            return labels
        labels = labels.copy()
        labels[outliers] = self.rng.integers(N_CLASSES, size=int(outliers.sum()))
        return labels


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
    should_stop() is polled between steps so a caller can end the run cleanly (an epoch it cuts
    short is not in the history, though its steps are in the weights). With
    `config.patience`, training stops after that many epochs without a better validation
    accuracy, and the best weights are restored.
    """
    seeds = np.random.SeedSequence(config.seed).spawn(4)
    init_rng, order_rng, augment_rng, outlier_rng = (np.random.default_rng(s) for s in seeds)
    network = network if network is not None else new_network(config, init_rng)
    step = Stepper(
        config, network, steps_per_epoch(len(train_images), config.batch_size), outlier_rng
    )
    history: list[EpochRecord] = []
    early = EarlyStopping(config.patience)
    if on_start is not None:
        on_start(len(train_images))
    augment = config.augment_config if config.augment else None
    chunk = chunk_size(config.batch_size)
    with (
        open_prefetcher(train_images, augment, augment_rng, chunk) as prefetcher,
        threadpool_limits(config.blas_threads, "blas"),
    ):
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            order = order_rng.permutation(len(train_images))
            batches = iterate_batches(prefetcher, train_labels, config.batch_size, order)
            totals = step.epoch(batches, on_batch, should_stop)
            if not np.isfinite(totals.loss_sum):
                raise FloatingPointError(
                    f"training diverged in epoch {epoch} (loss is not finite); "
                    f"lower the learning rate (now {config.lr})"
                )
            if totals.stopped:
                break  # the history holds whole epochs only
            val_accuracy, val_loss = validate(network, val_images, val_labels)
            record = EpochRecord(
                epoch, totals.loss_sum / max(totals.seen, 1), totals.correct / max(totals.seen, 1),
                val_accuracy, val_loss, totals.lr, seconds=time.perf_counter() - started,
            )  # fmt: skip
            history.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if early.should_stop(val_accuracy, network):
                break
    early.restore_best(network)
    return network, history
