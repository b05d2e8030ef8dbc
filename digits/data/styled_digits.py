"""Digits in a hand MNIST rarely shows, drawn stroke by stroke on the app's canvas.

A slashed zero (the programmer's and the Scandinavian 0, which MNIST-trained networks read as
an 8), a continental 7 (a crossbar through its stem) and a 1 with a long flag and a foot, the
way much of Europe writes them. Each is a few pen strokes in a unit box, drawn with a round
brush at a random size, place, slant and pen width, its stroke ends jittered, as white ink on
the app's opaque black 280x280 canvas (RGBA). `styled_samples` then reads each drawing with
the app's own preprocessing, so the result is what the app stores when the user teaches it.
Shared by tests/test_finetune.py and bench/bench_finetune.py.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from digits.data.pad import CANVAS_SIDE, PEN_WIDTH_RANGE
from digits.data.preprocess import preprocess

Stroke = tuple[tuple[float, float], ...]


def ring(cx: float, cy: float, rx: float, ry: float, n: int = 40) -> Stroke:
    """A closed ellipse as a polyline of n points, starting at its right."""
    t = np.linspace(0, 2 * np.pi, n)
    return tuple(zip((cx + rx * np.cos(t)).tolist(), (cy + ry * np.sin(t)).tolist(), strict=True))


# Strokes as polylines of (x, y) points in a unit box, y pointing down, by digit.
STROKES: dict[int, tuple[Stroke, ...]] = {
    # A ring, and a slash from beyond its top right to beyond its bottom left.
    0: (ring(0.5, 0.5, 0.38, 0.46), ((1.0, -0.05), (0.0, 1.05))),
    # Top bar, then the long diagonal down to the foot, then the crossbar through its middle.
    7: (
        ((0.12, 0.05), (0.88, 0.05), (0.35, 0.98)),
        ((0.28, 0.52), (0.82, 0.52)),
    ),
    # A long flag rising to the top of the stem, the stem, and a foot as wide as the flag.
    1: (
        ((0.18, 0.32), (0.58, 0.03), (0.58, 0.97)),
        ((0.22, 0.97), (0.92, 0.97)),
    ),
}
DIGITS = tuple(STROKES)

# The digit's height as a fraction of the canvas, its width to height, and its slant (the
# horizontal shift of the top against the bottom, as a fraction of the height).
HEIGHT_FRACTION = (0.45, 0.85)
ASPECT = (0.5, 0.75)
SLANT = (-0.25, 0.3)
# No two drawn alike: each stroke is stretched, turned and moved by up to this fraction of the
# digit's size, and the corners of a straight-edged stroke (at most CORNERS points) move too.
STROKE_JITTER = 0.05
POINT_JITTER = 0.04
CORNERS = 4
# Pixels kept free of ink around the canvas's edge, against the brush's rounding.
MARGIN = 3
# Pen widths in canvas pixels: the app's pen slider's range, less its extremes.
PEN_WIDTH = (PEN_WIDTH_RANGE[0] + 4, PEN_WIDTH_RANGE[1] - 12)


def jitter_stroke(
    polyline: Stroke,
    rng: np.random.Generator,
    stroke_jitter: float = STROKE_JITTER,
    point_jitter: float = POINT_JITTER,
) -> np.ndarray:
    """A unit-box stroke as (k, 2) float64, stretched, turned and moved by up to stroke_jitter
    and, if it has at most CORNERS points, each corner moved by up to point_jitter."""
    unit = np.asarray(polyline)
    warp = np.eye(2) + rng.uniform(-stroke_jitter, stroke_jitter, (2, 2))
    unit = (unit - 0.5) @ warp + 0.5 + rng.uniform(-stroke_jitter, stroke_jitter, 2)
    if len(unit) <= CORNERS:
        unit = unit + rng.uniform(-point_jitter, point_jitter, unit.shape)
    return unit


def draw_styled(digit: int, rng: np.random.Generator) -> np.ndarray:
    """One `digit` of DIGITS drawn on the app's canvas: (280, 280, 4) RGBA uint8, white on black."""
    height = rng.uniform(*HEIGHT_FRACTION) * CANVAS_SIDE
    width = rng.uniform(*ASPECT) * height
    slant = rng.uniform(*SLANT)
    pen = rng.uniform(*PEN_WIDTH)
    strokes = []
    for polyline in STROKES[digit]:
        unit = jitter_stroke(polyline, rng)
        # Slanted: each point moves right by `slant` times its height above the baseline.
        x = unit[:, 0] * width + slant * (1 - unit[:, 1]) * height
        strokes.append(np.stack([x, unit[:, 1] * height], axis=1))
    # A random place on the canvas with the whole pen path, brush included, on it; a path
    # too wide for the canvas (the widest, most slanted digits) is drawn smaller.
    points = np.concatenate(strokes)
    shrink = min(
        1.0, (CANVAS_SIDE - pen - 2 * MARGIN - 1) / (points.max(axis=0) - points.min(axis=0)).max()
    )
    strokes, points = [stroke * shrink for stroke in strokes], points * shrink
    low, high = points.min(axis=0) - pen / 2, points.max(axis=0) + pen / 2
    offset = rng.uniform(MARGIN - low, CANVAS_SIDE - MARGIN - high)

    picture = Image.new("RGBA", (CANVAS_SIDE, CANVAS_SIDE), (0, 0, 0, 255))
    draw = ImageDraw.Draw(picture)
    for stroke in strokes:
        path = [tuple(p) for p in (stroke + offset).tolist()]
        draw.line(path, fill="white", width=round(pen), joint="curve")
        # Round pen ends, as the canvas draws them.
        for x, y in (path[0], path[-1]):
            draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill="white")
    return np.asarray(picture)


def styled_drawings(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """n drawings, the DIGITS in turn: a list of (280, 280, 4) RGBA uint8 and labels (n,)."""
    rng = np.random.default_rng(seed)
    labels = np.array([DIGITS[i % len(DIGITS)] for i in range(n)], dtype=np.int64)
    return [draw_styled(int(label), rng) for label in labels], labels


def styled_samples(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """n drawings, their network inputs (n, 28, 28) float32 as the app makes them, labels (n,)."""
    drawings, labels = styled_drawings(n, seed)
    inputs = np.stack([_network_input(drawing) for drawing in drawings])
    return drawings, inputs, labels


def _network_input(drawing: np.ndarray) -> np.ndarray:
    """The app's (28, 28) float32 input for one styled drawing."""
    image = preprocess(drawing).image
    assert image is not None, "every styled drawing holds a digit the app finds"
    return image
