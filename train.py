"""Train the 784-128-64-10 network on MNIST and write model_params.pkl beside its history.

python train.py                      # the default recipe: >= 99% on the MNIST test set
python train.py --epochs 5 --no-augment --limit 10000 --output /tmp/quick.pkl
python train.py --tune               # search lr, weight decay and epochs; print the best
python train.py --finetune           # fine-tune model_params.pkl on the app's taught digits
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from digits.app.user_store import StoreError, UserStore, default_path
from digits.data.mnist import DATA_DIR, DRAWN_PATH, N_CLASSES, N_PIXELS, DatasetError, load_mnist
from digits.training import tuning
from digits.training.checkpoint import FROM_TRAIN_PY, history_path, save_model
from digits.training.evaluation import (
    MAX_DIGIT_REFUSAL,
    accuracy,
    choose_refusal,
    confusion_matrix,
    format_confusion,
    predict_proba_batched,
)
from digits.training.finetune import FinetuneConfig, FinetuneError, finetune
from digits.training.progress import MovingAverage
from digits.training.trainer import DataStory, TrainConfig, fit, training_data
from layers import ACTIVATIONS, LOSSES
from model_loader import DEFAULT_REFUSAL, MODEL_PATH, ModelFileError, load_params
from optimizers import OPTIMIZERS
from schedules import SCHEDULES


def fail(message: str, code: int) -> int:
    print(f"train.py: {message}", file=sys.stderr)
    return code


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive whole number, got {text}")
    return value


# The TrainConfig fields that have a flag: field -> (help, add_argument options). A field's
# flag is its name with dashes, its default the field's; a bool field gets --x / --no-x.
RECIPE_FLAGS: dict[str, tuple[str, dict]] = {
    "epochs": ("passes over the data", {"type": positive_int}),
    "batch_size": ("images a step", {"type": positive_int}),
    "lr": ("peak learning rate", {"type": float}),
    "optimizer": ("the update rule", {"choices": sorted(OPTIMIZERS)}),
    "momentum": ("for sgd", {"type": float}),
    "weight_decay": ("L2 on weights", {"type": float}),
    "schedule": ("of the learning rate", {"choices": SCHEDULES}),
    "warmup_epochs": ("for cosine", {"type": float}),
    "hidden": ("hidden layer sizes", {"type": positive_int, "nargs": "+"}),
    "activation": ("in hidden layers", {"choices": sorted(ACTIVATIONS)}),
    "loss": (
        "softmax cross-entropy, or the mean squared error of sigmoid outputs",
        {"choices": sorted(LOSSES)},
    ),
    "batchnorm": ("batch norm after each hidden layer", {}),
    "dropout": ("after each hidden layer", {"type": float}),
    "augment": ("random affine and stroke-width augmentation", {}),
    "drawn": (
        "add the MNIST training digits drawn as people draw them (--drawn-file) to the "
        "training images",
        {},
    ),
    "outliers": (
        "generated non-digits trained toward a uniform output, so it learns to refuse (0: none)",
        {"type": count},
    ),
    "continental": (
        "digits of each hand MNIST rarely shows (a flagged 1, a crossed 7, a slashed 0, ...) "
        "added to the training images (0: none)",
        {"type": count},
    ),
    "patience": (
        "stop after this many epochs without a better validation accuracy",
        {"type": positive_int},
    ),
    "val_size": ("last N training images held out for validation", {"type": int}),
    "limit": ("train on only the first N training images (a quick run)", {"type": positive_int}),
    "seed": ("of weights, order and augmentation", {"type": int}),
    "blas_threads": (
        "BLAS threads; one is fastest on a busy 2-core machine",
        {"type": positive_int},
    ),
}


# Flags whose name is not their field's.
FLAG_NAMES = {"blas_threads": "--threads"}

# The AugmentConfig fields that have a flag: field -> (flag, metavar, help).
AUGMENT_FLAGS = {
    "prob": (
        "--augment-share",
        "SHARE",
        "share of the images augmented each epoch; the rest pass plain",
    ),
    "elastic_px": (
        "--elastic",
        "PX",
        "elastic distortion: how far its grid points move, in pixels; 0 for none",
    ),
}


def flag_name(field: str) -> str:
    return FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def add_recipe_flags(p: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    for field, (text, options) in RECIPE_FLAGS.items():
        default = getattr(defaults, field)
        if isinstance(default, bool):
            options = {"action": argparse.BooleanOptionalAction, **options}
        else:
            options = {"metavar": flag_name(field)[2:].upper().replace("-", "_"), **options}
        if isinstance(default, tuple):
            default = list(default)
        p.add_argument(flag_name(field), dest=field, default=default, help=text, **options)
    for field, (flag, metavar, text) in AUGMENT_FLAGS.items():
        default = getattr(defaults.augment_config, field)
        p.add_argument(flag, dest=field, type=float, default=default, help=text, metavar=metavar)


def add_mode_flags(p: argparse.ArgumentParser) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--tune",
        action="store_true",
        help="search lr, weight decay and epochs on the validation split (with --limit "
        f"{tuning.DEFAULT_LIMIT} unless given) and print the best; writes no model",
    )
    mode.add_argument(
        "--finetune",
        action="store_true",
        help="fine-tune the --start-from model on the samples in --user-data, with MNIST "
        "replay (--limit replays fewer images); its defaults are --epochs "
        f"{FinetuneConfig.epochs} --lr {FinetuneConfig.lr} "
        f"--batch-size {FinetuneConfig.batch_size}",
    )
    p.add_argument("--trials", type=positive_int, default=tuning.DEFAULT_TRIALS, help="for --tune")
    p.add_argument(
        "--user-data",
        type=Path,
        default=None,
        help="the app's samples database, for --finetune; None means $DIGITS_USER_DB, or "
        "data/user/samples.sqlite without it",
    )
    p.add_argument(
        "--start-from", type=Path, default=MODEL_PATH, help="the model --finetune starts from"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train the NumPy MLP on MNIST and save its weights.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_recipe_flags(p)
    p.add_argument(
        "--drawn-file",
        type=Path,
        default=DRAWN_PATH,
        help="made by python -m digits.data.drawn_digits",
    )
    p.add_argument("--data-dir", type=Path, default=DATA_DIR, help="folder with the MNIST files")
    p.add_argument("--output", type=Path, default=MODEL_PATH, help="model file to write")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, summaries only")
    add_mode_flags(p)
    args = p.parse_args(argv)
    if args.finetune:
        # Fine-tuning takes small steps from a trained model: its own defaults, unless given.
        f = FinetuneConfig()
        p.set_defaults(epochs=f.epochs, lr=f.lr, batch_size=f.batch_size)
        args = p.parse_args(argv)
    return args


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {field: getattr(args, field) for field in RECIPE_FLAGS}
    augment = {field: getattr(args, field) for field in AUGMENT_FLAGS}
    augment_config = dataclasses.replace(TrainConfig().augment_config, **augment)
    return TrainConfig(**{**values, "hidden": tuple(args.hidden)}, augment_config=augment_config)


def config_to_args(config: TrainConfig) -> list[str]:
    """The flags that give `config` (those that differ from the defaults), for a command line."""
    defaults = TrainConfig()
    flags: list[str] = []
    for field in RECIPE_FLAGS:
        value = getattr(config, field)
        if value == getattr(defaults, field):
            continue
        if isinstance(value, bool):
            flags.append(flag_name(field) if value else "--no-" + flag_name(field)[2:])
        elif isinstance(value, tuple):
            flags += [flag_name(field), *map(str, value)]
        else:
            flags += [flag_name(field), str(value)]
    for field, (flag, _, _) in AUGMENT_FLAGS.items():
        value = getattr(config.augment_config, field)
        if value != getattr(defaults.augment_config, field):
            flags += [flag, str(value)]
    return flags


def progress_callbacks(n_images: int | None, epochs: int, disable: bool):
    """A tqdm bar over each epoch's images (None: set later) and the fit() callbacks for it."""
    bar = tqdm(total=n_images, unit="img", disable=disable, leave=False, dynamic_ncols=True)
    running_loss, running_acc = MovingAverage(), MovingAverage()

    def on_batch(n: int, loss: float, acc: float) -> None:
        bar.update(n)
        bar.set_postfix(
            loss=f"{running_loss.update(loss):.4f}",
            acc=f"{running_acc.update(acc):.4f}",
            refresh=False,
        )

    def on_epoch(r) -> None:
        bar.reset()
        bar.set_description(f"epoch {min(r.epoch + 1, epochs)}/{epochs}")
        val = f"  val_acc {r.val_accuracy:.4f}" if r.val_accuracy is not None else ""
        tqdm.write(
            f"epoch {r.epoch:3d}/{epochs}  loss {r.loss:.4f}  "
            f"train_acc {r.train_accuracy:.4f}{val}  lr {r.lr:.4g}  {r.seconds:.1f}s"
        )

    bar.set_description(f"epoch 1/{epochs}")
    return bar, on_batch, on_epoch


def tune_main(args: argparse.Namespace, data) -> int:
    """--tune: a random search on the validation split; prints the trials and the best."""
    base = config_from_args(args)
    limit = args.limit if args.limit is not None else tuning.DEFAULT_LIMIT
    try:
        (train_x, train_y), (val_x, val_y), story = training_data(
            data, dataclasses.replace(base, limit=limit), args.drawn_file
        )
    except DatasetError as exc:
        return fail(str(exc), os.EX_NOINPUT)
    n_settings = len(tuning.candidates(10**6, np.random.default_rng(0)))
    print(
        f"trying {min(args.trials, n_settings)} of {n_settings} settings of lr, weight decay and "
        f"epochs, each trial learning from {story.sentence()}"
    )

    def on_trial(trial: tuning.Trial, done: int, total: int) -> None:
        score = "diverged" if trial.val_accuracy is None else f"{trial.val_accuracy:.4f}"
        print(
            f"trial {done}/{total}: lr {trial.lr:g}, weight decay {trial.weight_decay:g}, "
            f"{trial.epochs} epochs -> val_acc {score}  ({trial.seconds:.1f}s)",
            flush=True,
        )

    trials = tuning.search(base, train_x, train_y, val_x, val_y, args.trials, on_trial)
    print(tuning.format_table(trials))
    top = tuning.best(trials)
    if top is None:
        return fail("every trial diverged; try another --optimizer.", 1)
    print(
        f"best: lr {top.lr:g}, weight decay {top.weight_decay:g}, {top.epochs} epochs "
        f"(validation accuracy {top.val_accuracy:.4f})"
    )
    command = ["python", "train.py", *config_to_args(tuning.apply(base, top))]
    print("train it with: " + " ".join(command))
    return 0


def finetune_inputs(args: argparse.Namespace):
    """(params, images, labels, user_data) for --finetune, or the exit code if one is missing."""
    user_data = args.user_data or default_path()
    if not user_data.is_file():
        return fail(
            f"{user_data} was not found; teach the app some digits first (Right / Wrong under "
            "each prediction) or give --user-data the samples database.",
            os.EX_NOINPUT,
        )
    try:
        params = load_params(args.start_from)
        images, labels = UserStore(user_data).arrays()
    except (ModelFileError, StoreError) as exc:
        return fail(str(exc), os.EX_NOINPUT)
    return params, images, labels, user_data


def finetune_main(args: argparse.Namespace, data) -> int:
    """--finetune: fine-tune a model on the app's taught digits and write the result."""
    inputs = finetune_inputs(args)
    if isinstance(inputs, int):
        return inputs
    params, images, labels, user_data = inputs
    config = FinetuneConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        replay=args.limit,
        weight_decay=args.weight_decay,
        augment=args.augment,
        seed=args.seed,
    )
    print(
        f"fine-tuning {args.start_from.name} on {len(labels)} samples from {user_data} "
        f"with MNIST replay, {config.epochs} epoch{'s' * (config.epochs != 1)}, lr {config.lr}"
    )
    started = time.perf_counter()
    # The replay's size (drawn digits and user samples included) is only known once finetune
    # has mixed it: fit announces it through on_start.
    bar, on_batch, on_epoch = progress_callbacks(None, config.epochs, args.no_progress)
    try:
        network, history, report = finetune(
            params, images, labels, data, config, on_batch, on_epoch, on_start=bar.reset
        )
    except FinetuneError as exc:
        return fail(str(exc), os.EX_DATAERR)
    except KeyboardInterrupt:
        return fail(f"interrupted; {args.output} was left unchanged.", 130)
    finally:
        bar.close()
    for line in report.lines():
        print(line)
    save_model(
        network.export(),
        history,
        {"finetune": asdict(config), "samples": len(labels)},
        args.output,
        FROM_TRAIN_PY,
        test_accuracy=report.mnist_after,
        seed=config.seed,
        train_seconds=round(time.perf_counter() - started, 1),
        finetuned_from=str(args.start_from),
        finetune_report=asdict(report),
    )
    print(f"wrote {args.output} and {history_path(args.output).name}")
    return 0


def describe_run(config: TrainConfig, story: DataStory) -> str:
    sizes = "-".join(map(str, (N_PIXELS, *config.hidden, N_CLASSES)))
    return (
        f"training {sizes} {config.activation} on {story.sentence()}; "
        f"{config.epochs} epoch{'s' * (config.epochs != 1)}, "
        f"{config.optimizer} lr {config.lr}, augmentation {'on' if config.augment else 'off'}"
    )


def train_main(args: argparse.Namespace, data, started: float) -> int:
    """The default mode: train a model from scratch, test it, write it and its history."""
    config = config_from_args(args)
    try:
        (train_x, train_y), (val_x, val_y), story = training_data(data, config, args.drawn_file)
    except DatasetError as exc:
        return fail(str(exc), os.EX_NOINPUT)
    print(describe_run(config, story))
    bar, on_batch, on_epoch = progress_callbacks(len(train_x), config.epochs, args.no_progress)
    try:
        network, history = fit(config, train_x, train_y, val_x, val_y, on_batch, on_epoch)
    except KeyboardInterrupt:
        return fail(f"interrupted; {args.output} was left unchanged.", 130)
    finally:
        bar.close()

    proba = predict_proba_batched(network.predict_proba, data.test_images)
    test_accuracy = accuracy(proba, data.test_labels)
    # The refusal line is set on the validation digits, never on the test set.
    not_a_digit_below = choose_refusal(predict_proba_batched(network.predict_proba, val_x))
    refusal = {
        "unsure_below": max(DEFAULT_REFUSAL["unsure_below"], not_a_digit_below),
        "not_a_digit_below": not_a_digit_below,
    }
    print(
        f"not a digit below a top probability of {not_a_digit_below:.3f} "
        f"({MAX_DIGIT_REFUSAL:.1%} of the validation digits)"
    )
    wall = time.perf_counter() - started
    print("confusion matrix on the 10,000 test images (rows: true digit, columns: predicted):")
    print(format_confusion(confusion_matrix(data.test_labels, proba.argmax(axis=1))))
    history_file = save_model(
        network.export(),
        history,
        config.to_dict(),
        args.output,
        FROM_TRAIN_PY,
        story,
        test_accuracy=test_accuracy,
        refusal=refusal,
        seed=config.seed,
        train_seconds=round(wall, 1),
        n_drawn=story.drawn,
        # Which drawn set, as it can be drawn again with other settings.
        drawn_sha256=(
            hashlib.sha256(args.drawn_file.read_bytes()).hexdigest() if story.drawn else None
        ),
    )
    print(
        f"test accuracy {test_accuracy:.4f}  ({wall:.0f}s)  wrote {args.output} and "
        f"{history_file.name}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        data = load_mnist(args.data_dir)
    except DatasetError as exc:
        return fail(str(exc), os.EX_NOINPUT)
    if args.tune:
        return tune_main(args, data)
    if args.finetune:
        return finetune_main(args, data)
    return train_main(args, data, started)


if __name__ == "__main__":
    sys.exit(main())
