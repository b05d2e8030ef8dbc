"""How fragile the shipped network is, and what the "Why?" page's explanations cost.

Prints, for a fixed sample of MNIST test digits:
- the edits of digits/app/explain.py (steps of at most one pen dab of ink, kept in [0, 1]):
  the share that reaches its target within the step budget, and the ink it took (median and
  90th percentile, in pixels of full ink, and as a share of the digit's own ink), with the
  runner-up as target (the page's default) and with a random other digit;
- how far integrated-gradient scores are from adding up to the logit change (median, max);
- the median milliseconds of one saliency map, one edit and one moving grid.

    python bench/bench_explain.py [--digits 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from digits.app import explain
from digits.data.mnist import load_mnist, to_input
from model_loader import load_classifier

TIMED = 30  # digits each explanation is timed on


def flips(classifier, x: np.ndarray, targets: np.ndarray) -> str:
    """One line on how many inputs reach their target and with how much ink."""
    frames = explain.edit_steps(classifier, x, targets)
    read = classifier.predict_proba(frames.reshape(-1, x.shape[1])).argmax(axis=1)
    hit = read.reshape(frames.shape[:2]) == targets
    reached = hit.any(axis=0)
    first = hit.argmax(axis=0)
    ink = np.abs(frames[first, np.arange(len(x))] - x).sum(axis=1)[reached]
    share = ink / x[reached].sum(axis=1)
    return (
        f"{reached.mean():.1%} reach it within {explain.STEP_BUDGET} steps; ink it took: "
        f"median {np.median(ink):.1f} px ({np.median(share):.0%} of the digit's), 90th "
        f"percentile {np.percentile(ink, 90):.1f} px; median steps {np.median(first[reached]):g}"
    )


def median_ms(fn, inputs) -> float:
    """Median milliseconds of fn(x) over the inputs, after one warm-up call."""
    fn(inputs[0])
    times = []
    for x in inputs:
        started = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=1000, help="MNIST test digits sampled")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    classifier = load_classifier()
    mnist = load_mnist()
    rng = np.random.default_rng(args.seed)
    index = rng.choice(len(mnist.test_images), args.digits, replace=False)
    x, labels = to_input(mnist.test_images[index]), mnist.test_labels[index]
    proba = classifier.predict_proba(x)
    runner_up = np.argsort(proba, axis=1)[:, -2]
    other = (proba.argmax(axis=1) + rng.integers(1, 10, len(x))) % 10
    print(f"{args.digits} MNIST test digits (seed {args.seed}), edits towards a digit:")
    print(f"  the runner-up: {flips(classifier, x, runner_up)}")
    print(f"  a random other digit: {flips(classifier, x, other)}")

    gaps = []
    for xi, digit in zip(x[: TIMED * 10], proba.argmax(axis=1), strict=False):
        found = explain.saliency(classifier, xi, int(digit))
        gaps.append(abs(found.scores.sum() - found.change) / abs(found.change))
    print(
        f"integrated gradients ({explain.IG_STEPS} steps) miss the logit change by a median "
        f"{np.median(gaps):.1%}, at most {np.max(gaps):.1%} ({len(gaps)} digits)"
    )

    sample = list(zip(x[:TIMED], runner_up[:TIMED], strict=True))
    images = mnist.test_images[index[:TIMED]] / 255
    print(f"median ms over {TIMED} digits:")
    saliency = median_ms(lambda s: explain.saliency(classifier, s[0], int(labels[0])), sample)
    edit = median_ms(lambda s: explain.edit_towards(classifier, s[0], int(s[1])), sample)
    moves = median_ms(lambda image: explain.read_moves(classifier, image), images)
    print(f"  saliency map {saliency:.2f}, edit {edit:.2f}, moving grid {moves:.1f}")


if __name__ == "__main__":
    main()
