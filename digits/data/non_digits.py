"""Drawings that are not one digit, for teaching the network to refuse (outlier exposure).

Letters in the DejaVu fonts, pen scribbles, outlined and filled shapes, and two or three MNIST
digits run together, each read by the product's preprocessing into an MNIST-style 28x28 image.
bench/bench_not_a_digit.py draws its own, different ones to test the refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digits.data.mnist import IMAGE_SIDE
from digits.data.preprocess import preprocess

# Drawn on a square this size, about the app's pad, then preprocessed like a drawing.
SIDE = 140
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
# Letters that no digit is written like (no O, l, I, S, Z, B, g, q, b, G, T, J, D).
LETTERS = "ACEFHKMNPRUVWXYacefhkmnprtuvwxy"
KINDS = ("letter", "scribble", "shape", "several digits")


def non_digit_images(
    n: int, rng: np.random.Generator, digits: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """n non-digits as (n, 28, 28) uint8 and their kinds; `digits` (M, 28, 28) uint8 to join."""
    makers: dict[str, Callable[[np.random.Generator], Image.Image]] = {
        "letter": _letter,
        "scribble": _scribble,
        "shape": _shape,
        "several digits": lambda r: _several_digits(r, digits),
    }
    images: list[np.ndarray] = []
    kinds: list[str] = []
    while len(images) < n:
        kind = KINDS[len(images) % len(KINDS)]
        result = preprocess(np.asarray(makers[kind](rng)))
        if result.image is not None:
            images.append(np.round(result.image * 255).astype(np.uint8))
            kinds.append(kind)
    return np.stack(images) if images else np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.uint8), kinds


def _pad() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("L", (SIDE, SIDE), 0)
    return image, ImageDraw.Draw(image)


def _letter(rng: np.random.Generator) -> Image.Image:
    image, draw = _pad()
    font = ImageFont.truetype(str(FONT_DIR / FONT_FILES[rng.integers(len(FONT_FILES))]), 110)
    draw.text(
        (SIDE / 2, SIDE / 2), str(rng.choice(list(LETTERS))), fill=255, font=font, anchor="mm"
    )
    return image.rotate(float(rng.uniform(-15, 15)), Image.Resampling.BILINEAR)


def _scribble(rng: np.random.Generator) -> Image.Image:
    """A pen wandering with momentum: loops and tangles, not a figure."""
    image, draw = _pad()
    points, position = [], rng.uniform(30, SIDE - 30, 2)
    velocity = rng.normal(0, 8, 2)
    for _ in range(int(rng.integers(25, 60))):
        velocity = 0.85 * velocity + rng.normal(0, 5, 2)
        position = np.clip(position + velocity, 5, SIDE - 5)
        points.append(tuple(position))
    draw.line(points, fill=255, width=int(rng.integers(4, 10)), joint="curve")
    return image


def _shape(rng: np.random.Generator) -> Image.Image:
    """A rectangle, triangle, star or grid, outlined or filled (no circle: that is a 0)."""
    image, draw = _pad()
    width = int(rng.integers(4, 10))
    fill = 255 if rng.random() < 0.3 else None
    low, high = rng.uniform(15, 40, 2), rng.uniform(SIDE - 40, SIDE - 15, 2)
    shape = rng.integers(4)
    if shape == 0:
        draw.rectangle([*low, *high], outline=255, width=width, fill=fill)
    elif shape == 1:
        corners = [(low[0], high[1]), (high[0], high[1]), (rng.uniform(low[0], high[0]), low[1])]
        draw.polygon(corners, outline=255, width=width, fill=fill)
    elif shape == 2:
        angles = np.linspace(0, 4 * np.pi, 6)[:-1] + rng.uniform(0, np.pi)
        radius = (high - low).min() / 2
        centre = (low + high) / 2
        star = [(centre[0] + radius * np.cos(a), centre[1] + radius * np.sin(a)) for a in angles]
        draw.line([*star, star[0]], fill=255, width=width, joint="curve")
    else:
        for t in np.linspace(0, 1, int(rng.integers(3, 5))):
            x, y = low + t * (high - low)
            draw.line([(x, low[1]), (x, high[1])], fill=255, width=width)
            draw.line([(low[0], y), (high[0], y)], fill=255, width=width)
    return image.rotate(float(rng.uniform(-30, 30)), Image.Resampling.BILINEAR)


def _several_digits(rng: np.random.Generator, digits: np.ndarray) -> Image.Image:
    """Two or three MNIST digits side by side, touching, as one piece of ink."""
    count = int(rng.integers(2, 4))
    picks = digits[rng.integers(len(digits), size=count)]
    step = IMAGE_SIDE - int(rng.integers(6, 10))  # overlap so that they touch
    row = np.zeros((IMAGE_SIDE, step * (count - 1) + IMAGE_SIDE), np.uint8)
    for i, digit in enumerate(picks):
        part = row[:, i * step : i * step + IMAGE_SIDE]
        np.maximum(part, digit, out=part)
    return Image.fromarray(row).resize((row.shape[1] * 5, IMAGE_SIDE * 5))
