"""Train the 784-128-64-10 network on MNIST and write model_params.pkl beside its history.

python train.py                      # the default recipe: >= 99% on the MNIST test set
python train.py --epochs 5 --no-augment --limit 10000 --output /tmp/quick.pkl
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evaluation import accuracy, confusion_matrix, format_confusion, predict_proba_batched
from layers import ACTIVATIONS
from mnist import DATA_DIR, DatasetError, load_mnist
from model_loader import MODEL_PATH, atomic_write_bytes, save_params
from optimizers import OPTIMIZERS
from schedules import SCHEDULES
from trainer import TrainConfig, fit, split_train_val


def history_path(model_path: Path) -> Path:
    """Where the per-epoch history of a model file lives: beside it, same stem, .json."""
    return model_path.with_name(model_path.stem + "_history.json")


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        description="Train the NumPy MLP on MNIST and save its weights.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--epochs", type=positive_int, default=d.epochs)
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=d.optimizer)
    p.add_argument("--momentum", type=float, default=d.momentum, help="for sgd")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    p.add_argument(
        "--hidden",
        type=positive_int,
        nargs="+",
        default=list(d.hidden),
        help="hidden layer sizes",
    )
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default=d.activation)
    p.add_argument("--loss", choices=["cross_entropy", "mse"], default=d.loss)
    p.add_argument("--batchnorm", action="store_true", help="batch norm after each hidden layer")
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=d.augment,
        help="random affine and stroke-width augmentation",
    )
    p.add_argument(
        "--patience",
        type=positive_int,
        default=d.patience,
        help="stop after this many epochs without a better validation accuracy",
    )
    p.add_argument(
        "--val-size",
        type=int,
        default=d.val_size,
        help="last N training images held out for validation",
    )
    p.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="train on only the first N training images (a quick run)",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--threads",
        type=positive_int,
        default=d.blas_threads,
        help="BLAS threads; one is fastest on a busy 2-core machine",
    )
    p.add_argument("--data-dir", type=Path, default=DATA_DIR, help="folder with the MNIST files")
    p.add_argument("--output", type=Path, default=MODEL_PATH, help="model file to write")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, summaries only")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        hidden=tuple(args.hidden),
        activation=args.activation,
        loss=args.loss,
        batchnorm=args.batchnorm,
        dropout=args.dropout,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        warmup_epochs=args.warmup_epochs,
        augment=args.augment,
        val_size=args.val_size,
        patience=args.patience,
        seed=args.seed,
        limit=args.limit,
        blas_threads=args.threads,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = config_from_args(args)
    started = time.perf_counter()
    try:
        data = load_mnist(args.data_dir)
    except DatasetError as exc:
        print(f"train.py: {exc}", file=sys.stderr)
        return os.EX_NOINPUT
    (train_x, train_y), (val_x, val_y) = split_train_val(
        data.train_images, data.train_labels, config.val_size, config.limit
    )
    print(
        f"training {'-'.join(map(str, (784, *config.hidden, 10)))} {config.activation} on "
        f"{len(train_x)} images ({len(val_x)} for validation), {config.epochs} epochs, "
        f"{config.optimizer} lr {config.lr}, augmentation {'on' if config.augment else 'off'}"
    )

    bar = tqdm(
        total=len(train_x), unit="img", disable=args.no_progress, leave=False, dynamic_ncols=True
    )
    running = {"loss": None, "acc": None}

    def on_batch(n: int, loss: float, acc: float) -> None:
        # Exponential moving averages: a readable live figure, not one noisy batch.
        for key, value in (("loss", loss), ("acc", acc)):
            old = running[key]
            running[key] = value if old is None else 0.95 * old + 0.05 * value
        bar.update(n)
        bar.set_postfix(loss=f"{running['loss']:.4f}", acc=f"{running['acc']:.4f}", refresh=False)

    def on_epoch(r) -> None:
        bar.reset()
        bar.set_description(f"epoch {min(r.epoch + 1, config.epochs)}/{config.epochs}")
        val = f"  val_acc {r.val_accuracy:.4f}" if r.val_accuracy is not None else ""
        tqdm.write(
            f"epoch {r.epoch:3d}/{config.epochs}  loss {r.loss:.4f}  "
            f"train_acc {r.train_accuracy:.4f}{val}  lr {r.lr:.4g}  {r.seconds:.1f}s"
        )

    bar.set_description(f"epoch 1/{config.epochs}")
    try:
        network, history = fit(config, train_x, train_y, val_x, val_y, on_batch, on_epoch)
    except KeyboardInterrupt:
        bar.close()
        print(f"train.py: interrupted; {args.output} was left unchanged.", file=sys.stderr)
        return 130
    bar.close()

    proba = predict_proba_batched(network.predict_proba, data.test_images)
    test_accuracy = accuracy(proba, data.test_labels)
    matrix = confusion_matrix(data.test_labels, proba.argmax(axis=1))
    wall = time.perf_counter() - started
    print("confusion matrix on the 10,000 test images (rows: true digit, columns: predicted):")
    print(format_confusion(matrix))

    params = network.export()
    params.update(
        test_accuracy=test_accuracy,
        seed=config.seed,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        train_seconds=round(wall, 1),
        config=config.to_dict(),
        numpy_version=np.__version__,
    )
    save_params(params, args.output)
    history_file = history_path(args.output)
    history_json = {"config": config.to_dict(), "epochs": [asdict(r) for r in history]}
    atomic_write_bytes(history_file, json.dumps(history_json, indent=1).encode())
    print(
        f"test accuracy {test_accuracy:.4f}  ({wall:.0f}s)  wrote {args.output} and "
        f"{history_file.name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
