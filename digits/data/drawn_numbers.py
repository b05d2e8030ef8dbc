"""Numbers of several MNIST digits written the way people write them, for bench_numbers.py.

Each digit is drawn with drawn_digits' round brush (its pen path redrawn at a random size and
stroke width) and cropped to its ink; the digits are set left to right on a baseline that drifts
up and down, at uneven heights, either with a gap between neighbours or pushed together until
their strokes overlap by a few pixels ("touching"). Then dressed as the app receives them:

- "canvas": white ink on black, RGBA, as the number pad sends it;
- "paper": a phone photo of dark ink on paper (drawn_digits.paper_photo), RGB.

Each digit is also kept alone, dressed the same way, so a benchmark can tell what reading the
digits one by one would give: the ceiling of reading them as a number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from digits.data.drawn_digits import paper_photo, pen_drawing
from digits.data.pad import NUMBER_PAD_HEIGHT

STYLES = ("canvas", "paper")
GROUPS = ("gaps", "touching")
# A number's digits are about this many pixels tall, each give or take a share, so heights
# vary within a number as in handwriting; one pen writes them all, its width a share of that
# height (MNIST's strokes are 10-15% of a digit's height).
NUMBER_HEIGHT = (70, 150)
HEIGHT_SPREAD = 0.15
PEN_SHARE = (0.07, 0.16)
CELL_FILL = 0.85
# Pixels between neighbours' inks with gaps; how far touching neighbours' strokes overlap,
# and how far their boxes may, so that shapes that fit into each other are not stacked.
GAP = (6, 30)
OVERLAP = (1, 5)
MAX_BOX_OVERLAP = 10
# How far (px) each digit's baseline moves from its left neighbour's, up or down.
BASELINE_STEP = 10
MARGIN = 24


@dataclass(frozen=True)
class DrawnNumber:
    """A drawn number: the image, the digits it shows, and each digit drawn alone."""

    image: np.ndarray
    text: str
    alone: list[np.ndarray]


def ink_patch(digit: np.ndarray, height: float, pen: float, rng: np.random.Generator) -> np.ndarray:
    """A digit drawn with a round brush `pen` px wide, about `height` px tall, cropped to its
    ink: (h, w) uint8 coverage."""
    target = height * rng.uniform(1 - HEIGHT_SPREAD, 1 + HEIGHT_SPREAD)
    # The digit fills most of a cell a little taller than itself, so only the place is random.
    side = round(target / CELL_FILL)
    coverage = pen_drawing(digit, side, rng, pen, (CELL_FILL, CELL_FILL))
    return np.asarray(coverage.crop(coverage.getbbox()))


def _touching_left(canvas: np.ndarray, patch: np.ndarray, top: int, overlap: int) -> int:
    """The left edge at which `patch` (its top at row `top`) overlaps the ink already on
    `canvas` by `overlap` pixels in the rows they share, or sits just beside it if none."""
    rows = range(top, top + patch.shape[0])
    gaps = []
    for row, patch_row in zip(rows, patch, strict=True):
        ink, own = np.nonzero(canvas[row])[0], np.nonzero(patch_row)[0]
        if ink.size and own.size:
            gaps.append(ink.max() + 1 - own.min())  # left edge at which this row just touches
    if not gaps:
        return int(np.nonzero(canvas.any(axis=0))[0].max()) + 1 - overlap
    return int(max(gaps)) - overlap


def compose(patches: list[np.ndarray], touching: bool, rng: np.random.Generator) -> np.ndarray:
    """Ink patches set left to right on a drifting baseline: (H, W) uint8 coverage."""
    tallest = max(p.shape[0] for p in patches)
    height = max(NUMBER_PAD_HEIGHT, tallest + 2 * MARGIN + 2 * BASELINE_STEP * len(patches))
    width = sum(p.shape[1] for p in patches) + GAP[1] * len(patches) + 2 * MARGIN
    canvas = np.zeros((height, width), np.uint8)
    baseline = height // 2 + tallest // 2
    right = MARGIN
    for i, patch in enumerate(patches):
        baseline += int(rng.integers(-BASELINE_STEP, BASELINE_STEP, endpoint=True)) if i else 0
        top = int(np.clip(baseline - patch.shape[0], 0, height - patch.shape[0]))
        if i == 0:
            left = right
        elif touching:
            overlap = int(rng.integers(*OVERLAP, endpoint=True))
            left = max(_touching_left(canvas, patch, top, overlap), right - MAX_BOX_OVERLAP)
        else:
            left = right + int(rng.integers(*GAP, endpoint=True))
        region = canvas[top : top + patch.shape[0], left : left + patch.shape[1]]
        np.maximum(region, patch, out=region)
        right = left + patch.shape[1]
    used = np.nonzero(canvas.any(axis=0))[0].max() + 1
    return canvas[:, : used + MARGIN]


def dress(coverage: np.ndarray, style: str, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage (H, W) as the app receives it in `style`: RGBA canvas or RGB photo."""
    if style == "canvas":
        opaque = np.full_like(coverage, 255)
        return np.stack([coverage, coverage, coverage, opaque], axis=-1)
    if style == "paper":
        return paper_photo(Image.fromarray(coverage), rng)
    raise ValueError(f"Unknown style {style!r}; choose one of {', '.join(STYLES)}.")


def draw_number(
    digits: list[np.ndarray], labels: list[int], style: str, touching: bool, seed: int
) -> DrawnNumber:
    """MNIST digits (28, 28) uint8 written as one number, with each digit also alone."""
    rng = np.random.default_rng(seed)
    height = rng.uniform(*NUMBER_HEIGHT)
    pen = height * rng.uniform(*PEN_SHARE)
    patches = [ink_patch(digit, height, pen, rng) for digit in digits]
    image = dress(compose(patches, touching, rng), style, rng)
    alone = [dress(np.pad(patch, MARGIN), style, rng) for patch in patches]
    return DrawnNumber(image, "".join(map(str, labels)), alone)
