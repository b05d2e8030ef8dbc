"""How the product reads photos that are hard for a grey-level pipeline: faint ink, impulse noise.

MNIST test digits (never trained on) are enlarged and printed as dark ink on grey paper with a
little sensor noise: at several contrasts, and with salt-and-pepper noise on a share of the
pixels. Each is read with the product pipeline (`preprocess`) and the committed model; a photo
it finds no digit in counts as not read. The photos are generated here, unlike any training
image (the training set has no paper, noise or faint ink); the 4% row should stay unread.

    python bench/bench_photos.py [--n 300] [--seed 0] [--model PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
from PIL import Image

from digits.data.mnist import load_mnist
from digits.data.preprocess import preprocess
from model_loader import MODEL_PATH, load_classifier

PAPER, SENSOR_NOISE, SIDE = 200.0, 1.5, 200
# (name, contrast, share of salt-and-pepper pixels)
CONDITIONS = [
    ("clean, 60% contrast", 0.60, 0.0),
    ("faint, 10% contrast", 0.10, 0.0),
    ("fainter, 7%", 0.07, 0.0),
    ("too faint, 4%", 0.04, 0.0),
    ("1% salt and pepper", 0.60, 0.01),
    ("2% salt and pepper", 0.60, 0.02),
    ("5% salt and pepper", 0.60, 0.05),
]


def photo(digit: np.ndarray, contrast: float, impulses: float, rng) -> np.ndarray:
    """A (SIDE, SIDE) uint8 photo of the MNIST digit (28, 28) uint8."""
    ink = np.asarray(Image.fromarray(digit).resize((SIDE, SIDE), Image.Resampling.BILINEAR))
    grey = PAPER - contrast * ink.astype(np.float32) + rng.normal(0, SENSOR_NOISE, ink.shape)
    hit = rng.random(ink.shape)
    grey[hit < impulses / 2] = 0
    grey[(hit >= impulses / 2) & (hit < impulses)] = 255
    return np.clip(grey, 0, 255).round().astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="test digits per condition")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=MODEL_PATH)
    args = parser.parse_args()
    data, classifier = load_mnist(), load_classifier(args.model)
    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(len(data.test_labels), args.n, replace=False)
    print(f"{args.n} MNIST test digits as photos (seed {args.seed}), model {args.model}\n")
    print(f"{'condition':24s} {'read':>7s} {'right':>7s}")
    for name, contrast, impulses in CONDITIONS:
        read = right = 0
        for index in chosen:
            result = preprocess(photo(data.test_images[index], contrast, impulses, rng))
            if result.image is None:
                continue
            read += 1
            right += int(
                classifier.predict_proba(result.vector[None]).argmax() == data.test_labels[index]
            )
        print(f"{name:24s} {read / args.n:7.1%} {right / args.n:7.1%}")


if __name__ == "__main__":
    main()
