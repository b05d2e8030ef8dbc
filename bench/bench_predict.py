"""In-process latency of reading one drawing, and throughput of batch prediction.

Prints the median time to preprocess and predict one 280x280 RGBA canvas drawing (the app's
input, white ink on black, rendered from MNIST test digits by drawn_digits.py), split
into its two parts, and the time to predict all 10,000 MNIST test images in one batch.

    python bench/bench_predict.py [--drawings 50] [--repeats 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from digits.data.drawn_digits import drawn_test_set
from digits.data.mnist import load_mnist, to_input
from digits.data.preprocess import preprocess
from digits.training.evaluation import predict_proba_batched
from model_loader import load_classifier


def median_ms(fn, inputs, repeats: int) -> float:
    """Median milliseconds of fn(x) over every input, each timed `repeats` times."""
    times = []
    for x in inputs:
        fn(x)  # warm-up: first-call costs are not what a user waits for on every stroke
        for _ in range(repeats):
            started = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drawings", type=int, default=50, help="canvas drawings to time")
    parser.add_argument("--repeats", type=int, default=20, help="timings per drawing")
    args = parser.parse_args()

    classifier = load_classifier()
    data = load_mnist()
    drawings, _ = drawn_test_set("canvas", args.drawings, seed=0, data=data)

    def read(drawing):
        return classifier.predict_proba(preprocess(drawing).vector)

    vectors = [preprocess(d).vector for d in drawings]
    total = median_ms(read, drawings, args.repeats)
    prep = median_ms(preprocess, drawings, args.repeats)
    predict = median_ms(classifier.predict_proba, vectors, args.repeats)

    batch_times, convert_times = [], []
    for _ in range(7):
        started = time.perf_counter()
        x = to_input(data.test_images)
        converted = time.perf_counter()
        classifier.predict_proba(x)
        batch_times.append(time.perf_counter() - converted)
        convert_times.append(converted - started)
    chunked = []
    for _ in range(7):
        started = time.perf_counter()
        predict_proba_batched(classifier.predict_proba, data.test_images)
        chunked.append(time.perf_counter() - started)

    print(f"one 280x280 RGBA canvas, median of {args.drawings} drawings x {args.repeats} runs:")
    print(f"  preprocess + predict  {total:.3f} ms  (target <= 2 ms)")
    print(f"  preprocess alone      {prep:.3f} ms")
    print(f"  predict alone         {predict:.3f} ms")
    print("10,000 MNIST test images, median of 7 runs:")
    print(
        f"  one predict_proba call      {1000 * np.median(batch_times):.1f} ms "
        f"(+ {1000 * np.median(convert_times):.1f} ms uint8 -> float32)"
    )
    print(f"  evaluation.predict_proba_batched  {1000 * np.median(chunked):.1f} ms")


if __name__ == "__main__":
    main()
