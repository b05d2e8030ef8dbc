"""Digits in the hands MNIST rarely shows, as 28x28 images that drawn_digits.render redraws.

MNIST's writers were American: its 1 is a bar, its 7 has no crossbar, its 0 no slash and its
9 a curled stem. Much of Europe writes a 1 with a long flag (with or without a foot) and a 7
with a crossbar; programmers and Scandinavians slash the 0; the 4 is written open or closed,
the 9 with a straight stem. Each style here is a few pen strokes in a unit box, jittered,
slanted and sized at random, rasterised MNIST-like (white on black, the digit in the middle
20x20 of 28x28). drawn_digits.render then draws its pen path on the canvas or on paper like
every other drawn digit, so these go through the same pipeline as the rest of the drawn set.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from digits.data.drawn_digits import STYLES as DRAWN_STYLES
from digits.data.drawn_digits import draw_and_read, render
from digits.data.mnist import IMAGE_SIDE
from digits.data.styled_digits import Stroke, jitter_stroke, ring

# The seed of the held-out drawings bench/bench_drawn.py reads, and of the ones trained on.
TEST_SEED = 1
TRAIN_SEED = 2

# Each style: (label, strokes), a stroke a polyline of (x, y) in a unit box, y pointing down.
STYLES: dict[str, tuple[int, tuple[Stroke, ...]]] = {
    "1 with a flag": (1, (((0.15, 0.34), (0.62, 0.02), (0.62, 0.98)),)),
    "1 with a flag and a foot": (
        1,
        (((0.15, 0.34), (0.6, 0.02), (0.6, 0.98)), ((0.22, 0.98), (0.95, 0.98))),
    ),
    "7 with a crossbar": (
        7,
        (((0.08, 0.06), (0.92, 0.06), (0.38, 0.98)), ((0.28, 0.52), (0.86, 0.52))),
    ),
    "0 with a slash": (0, (ring(0.5, 0.5, 0.4, 0.47, 32), ((0.95, 0.0), (0.05, 1.0)))),
    "open 4": (4, (((0.18, 0.02), (0.1, 0.62), (0.94, 0.62)), ((0.7, 0.2), (0.7, 0.98)))),
    "closed 4": (4, (((0.7, 0.98), (0.7, 0.02), (0.06, 0.68), (0.94, 0.68)),)),
    "9 with a straight stem": (9, (ring(0.48, 0.28, 0.34, 0.27, 32), ((0.82, 0.28), (0.82, 0.98)))),
}
NAMES = tuple(STYLES)

# Size and shape: the digit's width to height, its slant (the shift of the top against the
# bottom, as a fraction of the height), and how far jitter_stroke moves strokes and corners:
# a little more than the fine-tuning hand's, as these stand for many writers, not one.
ASPECT = (0.45, 0.8)
SLANT = (-0.2, 0.3)
STROKE_JITTER = 0.06
POINT_JITTER = 0.05
# Drawn at SCALE times 28x28, then box-filtered down: MNIST's pen in 28x28 pixels, and the
# 20x20 box the digit's longer side fills.
SCALE = 4
PEN = (1.8, 3.2)
BOX = 20


def continental_digit(name: str, rng: np.random.Generator) -> np.ndarray:
    """One digit in style `name` (a key of STYLES) as (28, 28) uint8, white ink on black."""
    _, strokes = STYLES[name]
    aspect, slant = rng.uniform(*ASPECT), rng.uniform(*SLANT)
    paths = []
    for polyline in strokes:
        unit = jitter_stroke(polyline, rng, STROKE_JITTER, POINT_JITTER)
        x = unit[:, 0] * aspect + slant * (1 - unit[:, 1])
        paths.append(np.stack([x, unit[:, 1]], axis=1))
    points = np.concatenate(paths)
    low, size = points.min(axis=0), (points.max(axis=0) - points.min(axis=0)).max()
    side = IMAGE_SIDE * SCALE
    pen = rng.uniform(*PEN) * SCALE
    fit = (BOX * SCALE - pen) / size
    # The pen path's box in the middle of the image, as MNIST centres its 20x20 box.
    offset = (side - (points.max(axis=0) - low) * fit) / 2
    picture = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(picture)
    for path in paths:
        xy = [tuple(p) for p in ((path - low) * fit + offset).tolist()]
        draw.line(xy, fill=255, width=round(pen), joint="curve")
        for x, y in (xy[0], xy[-1]):
            draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill=255)
    return np.asarray(picture.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BOX))


def continental_set(
    n_each: int, seed: int, drawn: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n_each digits of every style: images (m, 28, 28) uint8, labels (m,), style (m,) indices.

    Digit i of style s depends only on (seed, s, i). With drawn, each is drawn in one of
    drawn_digits' styles in turn and read back by the app's preprocessing, as the drawn
    training digits are (kept as it was where the preprocessing finds no digit).
    """
    images, labels, styles = [], [], []
    for s, name in enumerate(NAMES):
        for i, rng in enumerate(np.random.default_rng([seed, s]).spawn(n_each)):
            digit = continental_digit(name, rng)
            if drawn:
                style = DRAWN_STYLES[i % len(DRAWN_STYLES)]
                read = draw_and_read(digit, style, np.random.default_rng([seed, s, i]))
                digit = digit if read is None else read
            images.append(digit)
            labels.append(STYLES[name][0])
            styles.append(s)
    return np.stack(images), np.array(labels, np.uint8), np.array(styles, np.uint8)


def continental_test_set(name: str, n: int, seed: int = TEST_SEED) -> tuple[list, np.ndarray]:
    """n digits in style `name`, each drawn in every drawn_digits style: 3n images as render()
    returns them, and their labels (3n,). Digit i depends only on (seed, style, i)."""
    s = NAMES.index(name)
    images = []
    for i, rng in enumerate(np.random.default_rng([seed, s]).spawn(n)):
        digit = continental_digit(name, rng)
        for k, style in enumerate(DRAWN_STYLES):
            images.append(render(digit, style, np.random.default_rng([seed, s, i, k])))
    return images, np.full(len(images), STYLES[name][0])
