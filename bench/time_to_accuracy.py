"""Time to a test accuracy: the NumPy trainer against the same recipe in PyTorch, on plain MNIST.

Both train the 784-128-64-10 network on the same 55,000 MNIST training images (no drawn digits,
no augmentation) with the same batch size, optimizer (SGD, Nesterov momentum, weight decay on
the weights) and learning rate at every step (trainer.make_schedule, given to PyTorch through
LambdaLR), on one thread each. After every epoch both are scored on the 10,000 test images; the
clock stops while they are scored, so a curve is (training seconds so far, test accuracy).
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np

from digits.data.mnist import N_CLASSES, N_PIXELS, Mnist, to_input
from digits.training.evaluation import mnist_test_accuracy
from digits.training.trainer import (
    EpochRecord,
    TrainConfig,
    fit,
    make_schedule,
    new_network,
    steps_per_epoch,
    training_data,
)

Curve = list[tuple[float, float]]


def plain_recipe(config: TrainConfig) -> TrainConfig:
    """`config` on MNIST alone: no drawn digits, no augmentation, no early stopping."""
    return dataclasses.replace(config, augment=False, drawn=False, patience=None)


def numpy_curve(config: TrainConfig, data: Mnist) -> Curve:
    """(training seconds so far, test accuracy) after each epoch of the project's trainer."""
    (train_x, train_y), _, _ = training_data(data, config)
    network = new_network(config, np.random.default_rng(config.seed))
    curve: Curve = []

    def on_epoch(record: EpochRecord) -> None:
        elapsed = (curve[-1][0] if curve else 0.0) + record.seconds
        curve.append((elapsed, mnist_test_accuracy(network.predict_proba, data)))

    fit(config, train_x, train_y, on_epoch=on_epoch, network=network)
    return curve


def torch_recipe(config: TrainConfig, images: np.ndarray, labels: np.ndarray):
    """(model, run_epoch) for `config` in PyTorch on uint8 images, or None without torch.

    The same network, batch size, SGD (Nesterov, weight decay on the weights only) and
    learning rate at every step as the project's trainer, on one thread.
    """
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.blas_threads)
    sizes = (N_PIXELS, *config.hidden, N_CLASSES)
    layers: list = []
    for a, b in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    optimizer = torch.optim.SGD(
        [{"params": weights, "weight_decay": config.weight_decay}, {"params": biases}],
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
        weight_decay=0.0,
    )
    # PyTorch gets its most favourable input: the whole set converted to float32 once.
    x, y = torch.from_numpy(to_input(images)), torch.from_numpy(labels.astype(np.int64))
    schedule = make_schedule(config, steps_per_epoch(len(x), config.batch_size))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule(s) / config.lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run_epoch() -> float:
        """One epoch's steps; its seconds."""
        started = time.perf_counter()
        order = torch.randperm(len(x))
        for i in range(0, len(x), config.batch_size):
            idx = order[i : i + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            optimizer.step()
            scheduler.step()
        return time.perf_counter() - started

    return model, run_epoch


def torch_curve(config: TrainConfig, data: Mnist) -> Curve | None:
    """The same curve for the recipe in PyTorch on the CPU, or None if torch is not installed."""
    (train_x, train_y), _, _ = training_data(data, config)
    recipe = torch_recipe(config, train_x, train_y)
    if recipe is None:
        return None
    import torch

    model, run_epoch = recipe
    test_x = torch.from_numpy(to_input(data.test_images))
    test_y = torch.from_numpy(data.test_labels.astype(np.int64))
    curve: Curve = []
    elapsed = 0.0
    for _ in range(config.epochs):
        elapsed += run_epoch()
        with torch.no_grad():
            accuracy = (model(test_x).argmax(dim=1) == test_y).float().mean().item()
        curve.append((elapsed, accuracy))
    return curve


def time_to(curve: Curve, target: float) -> float | None:
    """Training seconds until the test accuracy first reaches `target`, or None if it never does."""
    return next((seconds for seconds, accuracy in curve if accuracy >= target), None)
