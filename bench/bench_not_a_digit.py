"""How well the model says "not a digit": non-digits from a generator unlike the trained one.

Its letters are in the Liberation fonts (training used DejaVu), its shapes are hearts,
arrows, spirals and crescents (training: rectangles, triangles, stars, grids), its scribbles
zigzags, hatching and waves (training: wandering loops), and its several digits are MNIST test
digits apart or touching (training: training digits touching). Each is drawn on a pad and read
by the app's own decision (digits.app.logic.read_digits). The digits are the MNIST test set and
every style of bench/bench_drawn.py. It prints, per kind, how many are answered as a sure digit
and how many as "not a digit", the digit refusal rate, MNIST test accuracy, and the trade-off
curve of the top-probability threshold with the model's chosen point.

    python bench/bench_not_a_digit.py [--n 2000] [--digits 2000] [--seed 1] [--model PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digits.app.logic import DIGIT, NOT_A_DIGIT, Reading, mnist_input, read_digits
from digits.data.drawn_digits import STYLES, drawn_test_set
from digits.data.mnist import IMAGE_SIDE, load_mnist
from digits.data.preprocess import preprocess
from digits.training.evaluation import accuracy, predict_proba_batched, refusal_curve
from model_loader import MODEL_PATH, load_classifier

SIDE = 140
FONTS = [
    f"/usr/share/fonts/truetype/liberation/Liberation{face}.ttf"
    for face in ("Sans-Regular", "Serif-Regular", "Sans-Bold", "Mono-Regular", "SansNarrow-Italic")
]
# Letters unlike any digit, as in training, but in other fonts.
LETTERS = "ACEFHKMNPRUVWXYacefhkmnprtuvwxy"
KINDS = ("letter", "shape", "scribble", "several digits")
TARGETS = {"not sure digit": 0.95, "not a digit": 0.85, "digit refusal": 0.02, "mnist": 0.992}


def letter(rng: np.random.Generator, _digits) -> Image.Image:
    image = Image.new("L", (SIDE, SIDE), 0)
    font = ImageFont.truetype(FONTS[rng.integers(len(FONTS))], int(rng.integers(80, 120)))
    ImageDraw.Draw(image).text(
        (SIDE / 2, SIDE / 2), str(rng.choice(list(LETTERS))), fill=255, font=font, anchor="mm"
    )
    return image


def shape(rng: np.random.Generator, _digits) -> Image.Image:
    """A heart, an arrow, a spiral or a crescent."""
    image = Image.new("L", (SIDE, SIDE), 0)
    draw = ImageDraw.Draw(image)
    width = int(rng.integers(5, 11))
    t = np.linspace(0, 2 * np.pi, 80)
    kind = rng.integers(4)
    if kind == 0:
        x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t))
    elif kind == 1:
        x = np.array([-20, 10, 10, 20, 10, 10, -20, -20.0])
        y = np.array([-4, -4, -12, 0, 12, 4, 4, -4.0])
    elif kind == 2:
        s = np.linspace(0, 3 * 2 * np.pi, 160)
        x, y = s * np.cos(s), s * np.sin(s)
    else:
        x = np.concatenate([16 * np.cos(t[:40]), 10 * np.cos(t[39::-1]) + 6])
        y = np.concatenate([16 * np.sin(t[:40]), 12 * np.sin(t[39::-1])])
    scale = 45 / max(np.ptp(x), np.ptp(y))
    points = list(
        zip(
            SIDE / 2 + scale * (x - x.mean()),
            SIDE / 2 + scale * (y - y.mean()),
            strict=True,
        )
    )
    draw.line([*points, points[0]] if kind != 2 else points, fill=255, width=width, joint="curve")
    return image.rotate(float(rng.uniform(-40, 40)), Image.Resampling.BILINEAR)


def scribble(rng: np.random.Generator, _digits) -> Image.Image:
    """A zigzag, hatching or a wave."""
    image = Image.new("L", (SIDE, SIDE), 0)
    draw = ImageDraw.Draw(image)
    width = int(rng.integers(3, 9))
    kind = rng.integers(3)
    if kind == 0:
        xs = np.linspace(20, SIDE - 20, int(rng.integers(5, 12)))
        ys = np.where(np.arange(len(xs)) % 2, 30, SIDE - 30) + rng.normal(0, 8, len(xs))
        draw.line(list(zip(xs, ys, strict=True)), fill=255, width=width, joint="curve")
    elif kind == 1:
        for offset in np.linspace(-60, 60, int(rng.integers(4, 9))):
            draw.line([(20 + offset + 60, 20), (offset + 20, SIDE - 20)], fill=255, width=width)
    else:
        xs = np.linspace(15, SIDE - 15, 100)
        ys = SIDE / 2 + 30 * np.sin(xs / SIDE * 2 * np.pi * rng.uniform(1.5, 4))
        draw.line(list(zip(xs, ys, strict=True)), fill=255, width=width, joint="curve")
    return image.rotate(float(rng.uniform(-30, 30)), Image.Resampling.BILINEAR)


def several_digits(rng: np.random.Generator, digits: np.ndarray) -> Image.Image:
    """Two to four MNIST test digits in a row, some apart, some touching."""
    count = int(rng.integers(2, 5))
    step = IMAGE_SIDE + int(rng.integers(-8, 6))
    row = np.zeros((IMAGE_SIDE, step * (count - 1) + IMAGE_SIDE), np.uint8)
    for i, digit in enumerate(digits[rng.integers(len(digits), size=count)]):
        part = row[:, i * step : i * step + IMAGE_SIDE]
        np.maximum(part, digit, out=part)
    return Image.fromarray(row).resize((row.shape[1] * 5, IMAGE_SIDE * 5))


MAKERS = {"letter": letter, "shape": shape, "scribble": scribble, "several digits": several_digits}


def non_digits(n: int, seed: int, digits: np.ndarray) -> dict[str, list]:
    """n // 4 preprocessed drawings of each kind that the preprocessing finds ink in."""
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {}
    for kind, make in MAKERS.items():
        found = []
        while len(found) < n // len(KINDS):
            result = preprocess(np.asarray(make(rng, digits)))
            if result.has_digit:
                found.append(result)
        out[kind] = found
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="non-digits, a quarter of each kind")
    p.add_argument("--digits", type=int, default=2000, help="drawn test digits per style")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--model", type=Path, default=MODEL_PATH)
    args = p.parse_args(argv)
    start = time.perf_counter()
    classifier = load_classifier(args.model)
    data = load_mnist()
    refusal = classifier.params["refusal"]
    print(f"model {args.model}; not a digit below {refusal['not_a_digit_below']:.3f}")

    print(f"\n{'non-digits (other generator)':<30}{'n':>6}{'sure digit':>12}{'not a digit':>13}")
    others = non_digits(args.n, args.seed, data.test_images)
    all_other: list[Reading] = []
    for kind, inputs in others.items():
        readings = read_digits(classifier, inputs)
        all_other += readings
        sure = np.mean([r.status == DIGIT for r in readings])
        refused = np.mean([r.status == NOT_A_DIGIT for r in readings])
        print(f"{kind:<30}{len(readings):>6}{sure:>12.1%}{refused:>13.1%}")
    sure = np.mean([r.status == DIGIT for r in all_other])
    refused = np.mean([r.status == NOT_A_DIGIT for r in all_other])
    print(f"{'all':<30}{len(all_other):>6}{sure:>12.1%}{refused:>13.1%}")

    print(f"\n{'real digits':<30}{'n':>6}{'refused':>12}")
    digit_readings = read_digits(classifier, [mnist_input(image) for image in data.test_images])
    rows = {"mnist test": digit_readings}
    for style in STYLES:
        images, _ = drawn_test_set(style, args.digits, 0, data)
        rows[style] = read_digits(classifier, [preprocess(image) for image in images])
    all_digits = [r for readings in rows.values() for r in readings]
    for name, readings in rows.items():
        share = np.mean([r.status == NOT_A_DIGIT for r in readings])
        print(f"{name:<30}{len(readings):>6}{share:>12.1%}")
    digit_refused = np.mean([r.status == NOT_A_DIGIT for r in all_digits])
    print(f"{'all':<30}{len(all_digits):>6}{digit_refused:>12.1%}")
    test_accuracy = accuracy(
        predict_proba_batched(classifier.predict_proba, data.test_images), data.test_labels
    )
    print(f"\nMNIST test accuracy {test_accuracy:.2%}")

    print("\ntrade-off (top probability under the threshold is 'not a digit'; several-digit")
    print("images are refused by their pieces whatever the threshold):")
    print(f"{'threshold':>10}{'digits refused':>16}{'non-digits refused':>20}")
    digit_proba = np.stack([r.proba for r in all_digits if r.proba is not None])
    other_proba = np.stack([r.proba for r in all_other if r.proba is not None])
    chosen = refusal["not_a_digit_below"]
    thresholds = np.unique(np.round(np.concatenate([np.linspace(0.3, 0.99, 24), [chosen]]), 3))
    for threshold, digits_below, others_below in refusal_curve(
        digit_proba, other_proba, thresholds
    ):
        mark = "  <- chosen" if np.isclose(threshold, round(chosen, 3)) else ""
        print(f"{threshold:>10.3f}{digits_below:>16.1%}{others_below:>20.1%}{mark}")

    checks = {
        "not sure digit": 1 - sure >= TARGETS["not sure digit"],
        "not a digit": refused >= TARGETS["not a digit"],
        "digit refusal": digit_refused <= TARGETS["digit refusal"],
        "mnist": test_accuracy >= TARGETS["mnist"],
    }
    print("\ntargets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in checks.items()))
    print(f"total time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
