"""Time augment_batch against the plain uint8 -> float32 input conversion on MNIST's 60,000 images.

Run from the repo root: python bench/bench_augment.py [--repeats N]
Wall-clock times come from time.perf_counter; on a busy machine the minimum is the steadier
figure, so both the median and the minimum are printed.
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from digits.data import augment
from digits.data.augment import AugmentConfig, augment_batch, stroke_thickness, warp_affine
from digits.data.mnist import load_mnist, to_input
from digits.training.trainer import PREFETCH_CHUNK, RECIPE_AUGMENT


def timings(fn, repeats: int) -> np.ndarray:
    """Wall-clock seconds (repeats,) of fn(), after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case")
    args = parser.parse_args()

    images = np.ascontiguousarray(load_mnist().train_images)
    n = len(images)
    config = AugmentConfig()
    rng = np.random.default_rng(0)
    out = np.empty((n, images[0].size), np.float32)
    matrices = augment.random_affine_matrices(n, rng, config)
    thickness = augment.random_thickness(n, rng, config)
    order = rng.permutation(n)

    def trainer_calls():
        for start in range(0, n, PREFETCH_CHUNK):
            augment_batch(images[order[start : start + PREFETCH_CHUNK]], rng, config)

    cases = {
        "plain: images.reshape(B, -1).astype(np.float32) / 255": lambda: (
            images.reshape(n, -1).astype(np.float32) / 255
        ),
        "plain: mnist.to_input(images), one pass": lambda: to_input(images),
        "augment_batch(images, rng)": lambda: augment_batch(images, rng, config),
        "augment_batch(images, rng, out=out)": lambda: augment_batch(images, rng, config, out=out),
        f"augment_batch in trainer-style calls of {PREFETCH_CHUNK}": trainer_calls,
        "  part: warp_affine(images, matrices, out=out)": lambda: warp_affine(
            images, matrices, out
        ),
        "  part: stroke_thickness(images, amounts)": lambda: stroke_thickness(images, thickness),
        "augment_batch, elastic (the recipe's elastic_px)": lambda: augment_batch(
            images, rng, replace(config, elastic_px=RECIPE_AUGMENT.elastic_px), out=out
        ),
        "augment_batch, the recipe (RECIPE_AUGMENT)": lambda: augment_batch(
            images, rng, RECIPE_AUGMENT, out=out
        ),
    }
    print(
        f"{n} images; chunk {augment.WARP_CHUNK} images (thickness groups of {augment.GROUP}); "
        f"median (min) of {args.repeats} runs"
    )
    results = {name: timings(fn, args.repeats) for name, fn in cases.items()}
    plain = np.median(next(iter(results.values())))
    for name, times in results.items():
        median = np.median(times)
        print(
            f"  {name:56s} {median * 1e3:6.0f} ms ({times.min() * 1e3:4.0f})"
            f"  {median / n * 1e6:5.2f} us/image  {median / plain:4.2f}x plain"
        )


if __name__ == "__main__":
    main()
