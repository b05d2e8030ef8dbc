"""How well the product reads numbers of several digits, as people write them and photograph them.

Numbers of 2 to 6 MNIST test digits (never trained on) are written as digits/data/drawn_numbers.py
writes them: each digit's pen path redrawn with a round brush, heights varying within a number,
a drifting baseline; in two groups, with gaps between neighbours and with neighbours pushed
together until their strokes touch, and in two styles, canvas ink (as the Number tab's pad sends
it) and phone photos of ink on paper. The drawing generator is the one the drawn training digits
come from (drawn_digits.py), so the strokes resemble the training drawings; the layout into
numbers, the touching and the photos of whole numbers are new to the network.

Each number is read by the product (number.read_number: segmentation by recognition, every piece
through the single-digit preprocessing) and counts as right only if every digit is. Per digit,
a digit is right if the number was cut into the right count and that place reads right. Beside
them, the ceiling: each digit of the same numbers drawn alone and read as a single digit, and the
share of numbers whose digits are all read right alone. Last, the latency of reading a 6-digit
canvas number, median in-process.

    python bench/bench_numbers.py [--n 500] [--seed 0] [--model PATH] [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from digits.app.logic import read_digits
from digits.app.number import number_text, read_number
from digits.data.drawn_numbers import GROUPS, STYLES, draw_number
from digits.data.mnist import DatasetError, load_mnist
from digits.data.preprocess import preprocess
from model_loader import MODEL_PATH, ModelFileError, load_classifier

LENGTHS = (2, 6)  # digits per number, both included
TARGETS = {"gaps": 0.93, "touching": 0.80}
LATENCY_TARGET_MS = 20.0
LATENCY_NUMBERS = 40


def plan(n: int, seed: int, n_test: int) -> list[tuple[list[int], int]]:
    """n numbers: the test-set indices of their digits, and each number's drawing seed."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(LENGTHS[0], LENGTHS[1], n, endpoint=True)
    return [(rng.integers(0, n_test, k).tolist(), int(rng.integers(2**32))) for k in lengths]


def score_numbers(
    model: Path, style: str, group: str, numbers: list[tuple[list[int], int]]
) -> dict[str, int]:
    """Counts for numbers read whole and digit by digit, and for their digits read alone."""
    data = load_mnist()
    classifier = load_classifier(model)
    counts = dict.fromkeys(("numbers", "exact", "digits", "digits_right", "alone_right"), 0)
    counts["all_alone_right"] = 0
    for indices, seed in numbers:
        digits = [data.test_images[i] for i in indices]
        labels = [int(data.test_labels[i]) for i in indices]
        drawn = draw_number(digits, labels, style, group == "touching", seed)
        read = number_text(read_number(classifier, drawn.image)) or ""
        alone = read_digits(classifier, [preprocess(image) for image in drawn.alone])
        alone_right = [
            r.has_digit and r.digit == label for r, label in zip(alone, labels, strict=True)
        ]
        counts["numbers"] += 1
        counts["exact"] += read == drawn.text
        counts["digits"] += len(labels)
        if len(read) == len(labels):
            counts["digits_right"] += sum(a == b for a, b in zip(read, drawn.text, strict=True))
        counts["alone_right"] += sum(alone_right)
        counts["all_alone_right"] += all(alone_right)
    return counts


def run(model: Path, n: int, seed: int, workers: int) -> dict:
    """Every style and group's counts, the jobs split over `workers` processes."""
    n_test = len(load_mnist().test_labels)
    jobs = {}
    with ProcessPoolExecutor(workers) as pool:
        for s, style in enumerate(STYLES):
            for g, group in enumerate(GROUPS):
                numbers = plan(n, seed + 10 * s + g, n_test)
                halves = [numbers[i::workers] for i in range(workers)]
                jobs[style, group] = [
                    pool.submit(score_numbers, model, style, group, half) for half in halves
                ]
        rows = {}
        for (style, group), parts in jobs.items():
            counts = [part.result() for part in parts]
            rows[f"{style}/{group}"] = {k: sum(c[k] for c in counts) for k in counts[0]}
    return rows


def latency_ms(model: Path, seed: int) -> list[float]:
    """In-process times of reading 6-digit canvas numbers (after one unmeasured read)."""
    data = load_mnist()
    classifier = load_classifier(model)
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(LATENCY_NUMBERS):
        indices = rng.integers(0, len(data.test_labels), 6)
        labels = [int(data.test_labels[i]) for i in indices]
        digits = [data.test_images[i] for i in indices]
        images.append(draw_number(digits, labels, "canvas", False, int(rng.integers(2**32))).image)
    read_number(classifier, images[0])
    times = []
    for image in images:
        started = time.perf_counter()
        read_number(classifier, image)
        times.append((time.perf_counter() - started) * 1000)
    return times


def format_table(rows: dict, times: list[float]) -> str:
    lines = [
        f"{'style/group':20} {'numbers':>7} {'exact':>7} {'target':>7} {'per digit':>9} "
        f"{'alone':>7} {'all alone':>9}",
        "-" * 72,
    ]
    for name, c in rows.items():
        target = TARGETS[name.split("/")[1]]
        exact = c["exact"] / c["numbers"]
        verdict = "ok" if exact >= target else "MISS"
        lines.append(
            f"{name:20} {c['numbers']:7d} {exact:7.1%} {target:6.0%}{verdict[0]} "
            f"{c['digits_right'] / c['digits']:9.1%} {c['alone_right'] / c['digits']:7.1%} "
            f"{c['all_alone_right'] / c['numbers']:9.1%}"
        )
    median = statistics.median(times)
    lines += [
        "",
        "exact: every digit of the number right; per digit: right count and that place right;",
        "alone: each digit drawn alone and read as one digit; all alone: numbers whose digits",
        "are all read right alone, the ceiling for exact.",
        f"6-digit canvas number read in {median:.1f} ms median, {max(times):.1f} ms at most "
        f"({len(times)} numbers, in-process; target {LATENCY_TARGET_MS:.0f} ms)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="numbers per style and group")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=MODEL_PATH)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)
    try:
        load_classifier(args.model)
        started = time.perf_counter()
        rows = run(args.model, args.n, args.seed, args.workers)
        times = latency_ms(args.model, args.seed)
    except (DatasetError, ModelFileError) as exc:
        print(f"bench_numbers.py: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"rows": rows, "latency_ms": times}))
        return 0
    print(f"Numbers of {LENGTHS[0]}-{LENGTHS[1]} MNIST test digits (seed {args.seed}), "
          f"model {args.model}\n")  # fmt: skip
    print(format_table(rows, times))
    print(f"Total time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
