"""How well the product reads digits as people draw them: MNIST test digits redrawn three ways.

For each style of drawn_digits.py (app canvas, photo of paper, transparent canvas) it
draws the first n MNIST test digits, reads them with the product pipeline (`preprocess`; a
drawing it finds no digit in counts as wrong) and with the resize-only baseline
(`naive_preprocess`), and prints both accuracies of one model side by side, with the same
model's accuracy on the stored MNIST test digits as the reference. No training digit is used.

Then the hands MNIST rarely shows (continental_digits.py: a 1 with a long flag, a crossed 7,
a slashed 0, ...): --continental digits of each, from their held-out seed, each drawn in the
three styles, read the same way (target: at least 97% each).

    python bench/bench_drawn.py [--n 10000] [--seed 0] [--continental 300] [--model PATH]
                                [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from digits.data.continental_digits import NAMES as CONTINENTAL
from digits.data.continental_digits import continental_test_set
from digits.data.drawn_digits import STYLES, drawn_test_set
from digits.data.mnist import DatasetError, Mnist, load_mnist
from digits.data.preprocess import naive_preprocess, preprocess
from digits.training.evaluation import accuracy, predict_proba_batched
from model_loader import MODEL_PATH, ModelFileError, load_classifier
from network import Classifier

# The reference row: the stored MNIST digits themselves, fed to both pipelines.
STORED = "mnist as stored"


def read_images(classifier: Classifier, images: list[np.ndarray], labels: np.ndarray) -> dict:
    """Accuracy of the product pipeline and of the naive baseline on images with labels (n,)."""
    start = time.perf_counter()
    results = [preprocess(image) for image in images]
    found = np.array([result.has_digit for result in results], dtype=bool)
    vectors = [result.vector for result in results if result.has_digit]
    vectors += [naive_preprocess(image).ravel() for image in images]
    # One forward pass for both pipelines: the found digits first, then every naive input.
    predicted = classifier.predict_proba(np.stack(vectors)).argmax(axis=1)
    product = np.full(len(images), -1)
    product[found] = predicted[: found.sum()]
    naive = predicted[found.sum() :]
    return {
        "n": len(images),
        "preprocess": float(np.mean(product == labels)),
        "no_digit": int(len(images) - found.sum()),
        "naive": float(np.mean(naive == labels)),
        "read_seconds": time.perf_counter() - start,
    }


def score_style(model: Path, style: str, n: int, seed: int) -> dict:
    """One style's scores: the first n test digits drawn in it and read by the model's file."""
    data = load_mnist()
    start = time.perf_counter()
    images, labels = drawn_test_set(style, n, seed, data)
    render_seconds = time.perf_counter() - start
    row = read_images(load_classifier(model), images, labels)
    return {**row, "render_seconds": render_seconds}


def score_continental(model: Path, name: str, n: int) -> dict:
    """One continental style's scores: n held-out digits, each drawn in the three styles."""
    start = time.perf_counter()
    images, labels = continental_test_set(name, n)
    render_seconds = time.perf_counter() - start
    row = read_images(load_classifier(model), images, labels)
    return {**row, "render_seconds": render_seconds}


def run(
    model: Path, data: Mnist, n: int, seed: int, workers: int = 2, continental: int = 0
) -> dict:
    """Every style's scores, the stored digits' scores, and the full MNIST test accuracy."""
    # Each style in a process of its own: drawing and reading are pure Python-and-Pillow work
    # on one core each, and the styles do not depend on each other.
    with ProcessPoolExecutor(workers) as pool:
        jobs = {style: pool.submit(score_style, model, style, n, seed) for style in STYLES}
        hands = {
            name: pool.submit(score_continental, model, name, continental)
            for name in (CONTINENTAL if continental else ())
        }
        rows = {style: job.result() for style, job in jobs.items()}
        continental_rows = {name: job.result() for name, job in hands.items()}
    classifier = load_classifier(model)
    stored = list(data.test_images[:n])
    rows[STORED] = {**read_images(classifier, stored, data.test_labels[:n]), "render_seconds": 0.0}
    proba = predict_proba_batched(classifier.predict_proba, data.test_images)
    return {
        "n": n,
        "seed": seed,
        "styles": rows,
        "continental": continental_rows,
        "mnist_test_accuracy": accuracy(proba, data.test_labels),
        "mnist_test_size": len(data.test_labels),
    }


def format_table(report: dict, model: str) -> str:
    """The report as aligned text: one row per style, then the reference lines."""
    header = (
        f"{'style':<16}{'preprocess':>11}{'no digit':>10}{'naive':>8}{'render s':>10}{'read s':>8}"
    )
    lines = [
        f"First {report['n']} MNIST test digits redrawn (seed {report['seed']}), model {model}",
        "",
        header,
        "-" * len(header),
    ]
    for style, row in report["styles"].items():
        lines.append(
            f"{style:<16}{row['preprocess']:>11.1%}{row['no_digit']:>10}{row['naive']:>8.1%}"
            f"{row['render_seconds']:>10.1f}{row['read_seconds']:>8.1f}"
        )
    if report["continental"]:
        lines += [
            "",
            f"Hands MNIST rarely shows: {report['continental_n']} held-out digits each, drawn in "
            f"the {len(STYLES)} styles (target: at least 97% each)",
            "",
            f"{'hand':<28}{'preprocess':>11}{'no digit':>10}{'naive':>8}",
            "-" * 57,
        ]
        for name, row in report["continental"].items():
            lines.append(
                f"{name:<28}{row['preprocess']:>11.1%}{row['no_digit']:>10}{row['naive']:>8.1%}"
            )
    lines += [
        "",
        f"MNIST test set, all {report['mnist_test_size']} digits as stored: "
        f"{report['mnist_test_accuracy']:.2%}",
        f"Total time: {report['seconds']:.1f} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n", type=int, default=10_000, help="test digits per style (default: all 10,000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawings (default 0)")
    parser.add_argument(
        "--continental", type=int, default=300, help="held-out digits per hand (0: none)"
    )
    parser.add_argument("--model", type=Path, default=MODEL_PATH, help="model file to score")
    parser.add_argument("--workers", type=int, default=2, help="processes drawing at once")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        load_classifier(args.model)  # refuse a bad file before starting the workers
        data = load_mnist()
    except (ModelFileError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not 1 <= args.n <= len(data.test_images):
        parser.error(f"--n must be between 1 and {len(data.test_images)}, not {args.n}")
    if args.workers < 1:
        parser.error(f"--workers must be 1 or more, not {args.workers}")
    if args.seed < 0:
        parser.error(f"--seed must be 0 or more, not {args.seed}")
    if args.continental < 0:
        parser.error(f"--continental must be 0 or more, not {args.continental}")
    report = run(args.model, data, args.n, args.seed, args.workers, args.continental)
    report["continental_n"] = args.continental
    report["seconds"] = time.perf_counter() - start
    if args.json:
        print(json.dumps({"model": str(args.model), **report}))
    else:
        print(format_table(report, str(args.model)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
