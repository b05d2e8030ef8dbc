"""Re-render MNIST digits the way people draw them: on the app's canvas and on paper.

Each digit is binarised at UPSCALE times its size, thinned to a one-pixel skeleton (Zhang-Suen)
and redrawn along that skeleton with a round brush, at a random size and place, then dressed
as the app or CLI would receive it:

- "canvas": white ink on the app's opaque black 280x280 canvas, RGBA.
- "paper": dark ink on unevenly lit, noisy off-white paper of odd size, RGB after a JPEG trip.
- "transparent": black ink in the alpha channel of a transparent 280x280 canvas, RGBA, as
  streamlit-drawable-canvas returns it by default.

Drawn test digits are what bench/bench_drawn.py scores the product on. Drawn *training* digits,
read back through the product's own `preprocess` into 28x28 inputs, are training data: a network
trained on MNIST alone misreads about a third more drawings than one that also saw drawn ones
(bench/bench_drawn.py measures it). They are too slow to make for every run of train.py, so
they are made once (`python -m digits.data.drawn_digits`) and kept in data/drawn/ beside MNIST;
only digits from the first TRAIN_SOURCES training images are drawn, so the validation split
stays MNIST's own.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypedDict

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from digits.data.mnist import DRAWN_PATH, TRAIN_SOURCES, Mnist, load_mnist, to_uint8
from digits.data.pad import CANVAS_SIDE
from digits.data.preprocess import preprocess

STYLES = ("canvas", "paper", "transparent")

# The drawn training set (kept at mnist.DRAWN_PATH): how many digits, drawn with which seed.
DRAWN_COUNT = 40_000
DRAWN_SEED = 2026

# The digit is binarised and thinned at this multiple of its 28x28 size, so the skeleton is
# fine enough to follow curves smoothly once scaled up to a canvas.
UPSCALE = 4
# MNIST's anti-aliased edges are half-covered pixels; a pen stroke is where coverage is more.
INK_LEVEL = 128
# Brush disks are drawn at this multiple of the output size and box-averaged down: anti-aliasing.
# Big images get less, down to MIN_SUPERSAMPLE, to keep the drawing under SUPERSAMPLED_SIDE.
SUPERSAMPLE = 3
MIN_SUPERSAMPLE = 2
SUPERSAMPLED_SIDE = 900
# Rounds of averaging each skeleton point with its neighbours, to smooth out the pixel grid.
SMOOTHING_PASSES = 8

# The ink's height as a fraction of the image's, and its width's cap as one of the image's;
# a margin of this many pixels keeps even the anti-aliased edge of the ink inside the image.
HEIGHT_FRACTION = (0.35, 0.9)
MAX_WIDTH_FRACTION = 0.95
MARGIN = 1.0
# Brush widths in pixels on the 280 px canvas (scaled with the image for paper), but never more
# than this fraction of the digit's height: nobody draws a loop their brush fills in.
STROKE_WIDTH = (6.0, 30.0)
MAX_STROKE_TO_HEIGHT = 0.2
# Pressure makes the width swell and thin by up to this fraction along the stroke, with a
# wavelength drawn from this range in digit pixels (a digit is about 20 tall).
WIDTH_WOBBLE = 0.15
WOBBLE_WAVELENGTH = (10.0, 30.0)

# Photos of paper: height, width-to-height ratio, paper brightness and warmth, ink brightness,
# blueness and opacity (levels 0-255), how much darker the far side and the corners get, sensor
# noise sigma, lens blur radius and JPEG quality.
PAPER_HEIGHT = (90, 420)
PAPER_ASPECT = (0.6, 1.6)
PAPER_LEVEL = (215.0, 250.0)
PAPER_TINT = (0.0, 18.0)
INK_LEVEL_ON_PAPER = (10.0, 80.0)
INK_BLUE = (0.0, 60.0)
INK_OPACITY = (0.75, 1.0)
LIGHTING_DROP = (0.0, 0.35)
VIGNETTE = (0.0, 0.3)
NOISE_SIGMA = (1.5, 7.0)
BLUR_RADIUS = (0.3, 1.2)
JPEG_QUALITY = (55, 92)

# Zhang-Suen's neighbours P2..P9, clockwise from north, as (row, column) offsets.
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
# Skeleton pixel pairs joined by a stroke segment: east, south-east, south, south-west, so each
# 8-neighbour pair appears once.
_FORWARD = ((0, 1), (1, 1), (1, 0), (1, -1))


def _deletion_tables() -> tuple[np.ndarray, np.ndarray]:
    """Zhang-Suen's two sub-iteration rules as (256,) bool tables over 8-neighbour codes."""
    codes = np.arange(256)
    p = (codes[:, None] >> np.arange(8)) & 1  # columns P2..P9
    count = p.sum(axis=1)
    # 0 -> 1 transitions around the ring P2, P3, ..., P9, P2: exactly one means the pixel joins
    # a single run of neighbours, so removing it cannot split the object.
    transitions = ((p == 0) & (np.roll(p, -1, axis=1) == 1)).sum(axis=1)
    p2, _, p4, _, p6, _, p8, _ = p.T
    # At least two neighbours keeps line ends; at most six keeps pixels inside the shape.
    removable = (count >= 2) & (count <= 6) & (transitions == 1)
    first = removable & (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)  # south-east boundary
    second = removable & (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)  # north-west boundary
    return first, second


def _simple_table() -> np.ndarray:
    """Whether deleting a pixel keeps the topology, as a (256,) bool table over 8-neighbour codes.

    Yokoi's 8-connectivity number is 1 exactly for such "simple" pixels; ends of lines (one
    neighbour) are simple too but would shorten a stroke, so they are excluded.
    """
    codes = np.arange(256)
    empty = 1 - ((codes[:, None] >> np.arange(8)) & 1)  # columns P2..P9, 1 where background
    edges = np.arange(0, 8, 2)  # P2, P4, P6, P8: the 4-neighbours
    number = (
        empty[:, edges] - empty[:, edges] * empty[:, (edges + 1) % 8] * empty[:, (edges + 2) % 8]
    ).sum(axis=1)
    return (number == 1) & (empty.sum(axis=1) <= 6)


_DELETABLE = _deletion_tables()
_SIMPLE = _simple_table()


def skeletonize(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of (H, W) bool to a skeleton (H, W) bool: 1 px wide, same topology.

    Same topology: as many 8-connected pieces and as many holes as the mask, down to specks
    (which plain Zhang-Suen erases) and stroke crossings (where it leaves 2x2 blocks).
    """
    padded = np.pad(np.asarray(mask, dtype=bool), 1)
    width = padded.shape[1]
    flat = padded.ravel()
    # Only object pixels can be deleted, so each pass looks at their neighbours alone: far fewer
    # than the whole image, and fewer with every pass.
    pixels = np.flatnonzero(flat)
    neighbours = pixels[:, None] + np.array([dy * width + dx for dy, dx in _NEIGHBOURS])
    # Zhang-Suen deletes a small blob whole when all of it is boundary at once; the first
    # pixel (no object neighbour above or to the left) of such a blob is kept instead.
    earlier = np.array([dy < 0 or (dy == 0 and dx < 0) for dy, dx in _NEIGHBOURS])
    doomed_flat = np.zeros_like(flat)
    changed = True
    while changed:
        changed = False
        for deletable in _DELETABLE:
            around = flat[neighbours]
            doomed = deletable[np.packbits(around, axis=1, bitorder="little")[:, 0]]
            if not doomed.any():
                continue
            candidates = np.flatnonzero(doomed)
            doomed_flat[pixels[candidates]] = True
            near = around[candidates]
            alone = ~(near & ~doomed_flat[neighbours[candidates]]).any(axis=1)
            first = ~near[:, earlier].any(axis=1)
            doomed_flat[pixels[candidates]] = False
            doomed[candidates[alone & first]] = False
            flat[pixels[doomed]] = False
            pixels, neighbours = pixels[~doomed], neighbours[~doomed]
            changed = changed or bool(doomed.any())
    _break_blocks(padded)
    return padded[1:-1, 1:-1].copy()


def _break_blocks(padded: np.ndarray) -> None:
    """Thin the 2x2 blocks Zhang-Suen leaves where strokes cross: (H, W) bool, in place."""
    width = padded.shape[1]
    flat = padded.ravel()
    offsets = np.array([dy * width + dx for dy, dx in _NEIGHBOURS])
    changed = True
    while changed:
        changed = False
        # Every block has one pixel of each (row, column) parity, and pixels of one parity are
        # never neighbours, so deleting simple ones of one parity at once keeps the topology.
        for row_parity, col_parity in ((0, 0), (0, 1), (1, 0), (1, 1)):
            block = padded[:-1, :-1] & padded[1:, :-1] & padded[:-1, 1:] & padded[1:, 1:]
            ys, xs = np.nonzero(block)
            ys += (ys + row_parity) % 2
            xs += (xs + col_parity) % 2
            pixels = np.unique(ys * width + xs)
            codes = np.packbits(flat[pixels[:, None] + offsets], axis=1, bitorder="little")
            doomed = pixels[_SIMPLE[codes[:, 0]]]
            if doomed.size:
                flat[doomed] = False
                changed = True


def digit_skeleton(digit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pen path of a (28, 28) uint8 digit: points (K, 2), segments (M, 2, 2); (y, x) in px."""
    rows, cols = np.nonzero(digit >= INK_LEVEL)
    if rows.size == 0:
        raise ValueError("The digit has no pixel bright enough to count as ink.")
    # Crop (with a pixel of margin for the interpolation) so the thinning works on less.
    top, left = max(rows.min() - 1, 0), max(cols.min() - 1, 0)
    crop = digit[top : rows.max() + 2, left : cols.max() + 2]
    size = (crop.shape[1] * UPSCALE, crop.shape[0] * UPSCALE)
    big = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
    skeleton = skeletonize(big >= INK_LEVEL)
    ys, xs = np.nonzero(skeleton)
    index = np.full(skeleton.shape, -1, np.int64)
    index[ys, xs] = np.arange(ys.size)

    # Every pair of 8-neighbouring skeleton pixels, once: the segments a pen moves along.
    padded = np.pad(skeleton, 1)
    height, width = skeleton.shape
    by_direction = []
    for dy, dx in _FORWARD:
        neighbour = padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
        y, x = np.nonzero(skeleton & neighbour)
        by_direction.append(np.stack([index[y, x], index[y + dy, x + dx]], axis=1))
    pairs = np.concatenate(by_direction)

    # Pixel centres, back in 28x28 digit pixels.
    points = (np.stack([ys, xs], axis=1) + 0.5) / UPSCALE + np.array([top, left])
    # The skeleton zigzags along the upscaled pixel grid, which a big drawing would magnify into
    # wobbly strokes; averaging each point with its neighbours makes the pen path smooth.
    degree = 1 + np.bincount(pairs.ravel(), minlength=len(points))[:, None]
    for _ in range(SMOOTHING_PASSES):
        total = points.copy()
        np.add.at(total, pairs[:, 0], points[pairs[:, 1]])
        np.add.at(total, pairs[:, 1], points[pairs[:, 0]])
        points = total / degree
    points = points.astype(np.float32)
    segments = points[pairs]
    return points, segments


def _stroke_coverage(
    points: np.ndarray,
    segments: np.ndarray,
    shape: tuple[int, int],
    stroke_width: float,
    rng: np.random.Generator,
    height_fraction: tuple[float, float] = HEIGHT_FRACTION,
) -> Image.Image:
    """Ink coverage as an (H, W) "L" image: the pen path drawn at a random size and place."""
    height, width = shape
    low, high = points.min(axis=0), points.max(axis=0)
    extent = np.maximum(high - low, 1.0)  # (2,) path height and width in digit pixels
    ink_height = rng.uniform(*height_fraction) * height
    stroke_width = min(stroke_width, MAX_STROKE_TO_HEIGHT * ink_height)
    widest = stroke_width * (1 + WIDTH_WOBBLE)
    scale = min(
        (ink_height - widest) / extent[0], (MAX_WIDTH_FRACTION * width - widest) / extent[1]
    )
    size = extent * scale + widest
    top = rng.uniform(MARGIN, height - MARGIN - size[0])
    left = rng.uniform(MARGIN, width - MARGIN - size[1])
    offset = np.array([top, left]) + widest / 2 - low * scale

    # Width varies smoothly along the stroke, like a changing pen pressure.
    angle = rng.uniform(0, 2 * np.pi)
    wave = np.array([np.sin(angle), np.cos(angle)]) * 2 * np.pi / rng.uniform(*WOBBLE_WAVELENGTH)
    phase = rng.uniform(0, 2 * np.pi)

    def radius(at: np.ndarray) -> np.ndarray:
        return stroke_width / 2 * (1 + WIDTH_WOBBLE * np.sin(at @ wave + phase))

    k = max(MIN_SUPERSAMPLE, min(SUPERSAMPLE, SUPERSAMPLED_SIDE // max(shape)))
    point_radius = radius(points) * k
    centres = (points * scale + offset) * k
    segment_width = np.rint(2 * k * np.minimum(radius(segments[:, 0]), radius(segments[:, 1])))
    ends = (segments * scale + offset) * k

    big = Image.new("L", (width * k, height * k), 0)
    draw = ImageDraw.Draw(big)
    # A few hundred disks and segments per digit, each rasterised by Pillow in C: the pen's path.
    for (y0, x0), (y1, x1), w in zip(ends[:, 0], ends[:, 1], segment_width, strict=True):
        draw.line([(x0, y0), (x1, y1)], fill=255, width=int(w))
    for (y, x), r in zip(centres, point_radius, strict=True):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    return big.reduce(k)


def _brush_width(rng: np.random.Generator, side: float) -> float:
    """A brush width drawn from STROKE_WIDTH, scaled from the app's canvas to an image side."""
    return rng.uniform(*STROKE_WIDTH) * side / CANVAS_SIDE


def paper_photo(coverage: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """A phone photo of ink on paper: an (H, W) "L" coverage image -> (H, W, 3) uint8 RGB."""
    width, height = coverage.size
    level = rng.uniform(*PAPER_LEVEL)
    # Paper is warm: blue and green lag behind red.
    tint = rng.uniform(*PAPER_TINT)
    paper = (round(level), round(level - tint / 3), round(level - tint))
    ink_level = rng.uniform(*INK_LEVEL_ON_PAPER)
    # Ballpoint blue half the time, otherwise near-black or graphite.
    blue = rng.uniform(*INK_BLUE) if rng.random() < 0.5 else 0.0
    ink = (round(ink_level), round(ink_level + blue / 3), round(ink_level + blue))
    opacity = rng.uniform(*INK_OPACITY)

    # The lens blurs the ink's edges; light and noise come after it.
    coverage = coverage.filter(ImageFilter.GaussianBlur(rng.uniform(*BLUR_RADIUS)))
    alpha = coverage.point((np.arange(256) * opacity).round().astype(np.uint8).tolist())
    drawn = Image.composite(
        Image.new("RGB", coverage.size, ink), Image.new("RGB", coverage.size, paper), alpha
    )

    # A light source off to one side, and a lens that darkens the corners.
    y = (np.arange(height, dtype=np.float32) / height - 0.5)[:, None]
    x = (np.arange(width, dtype=np.float32) / width - 0.5)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    gradient = (y * np.sin(angle) + x * np.cos(angle)) / np.sqrt(0.5) + 0.5
    darkening = rng.uniform(*LIGHTING_DROP) * gradient + rng.uniform(*VIGNETTE) * 2 * (y**2 + x**2)
    lighting = Image.fromarray(np.clip((1 - darkening) * 255 + 0.5, 0, 255).astype(np.uint8))
    lit = ImageChops.multiply(drawn, Image.merge("RGB", (lighting,) * 3))

    # Sensor noise is mostly in brightness, so one noise plane serves all three channels.
    noise = rng.standard_normal((height, width), dtype=np.float32) * rng.uniform(*NOISE_SIGMA)
    noise_plane = Image.fromarray(np.clip(noise + 128.5, 0, 255).astype(np.uint8))
    photo = ImageChops.add(lit, Image.merge("RGB", (noise_plane,) * 3), offset=-128)

    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=int(rng.integers(*JPEG_QUALITY, endpoint=True)))
    return np.asarray(Image.open(buffer).convert("RGB"))


def pen_drawing(
    digit: np.ndarray,
    side: int,
    rng: np.random.Generator,
    stroke_width: float | None = None,
    height_fraction: tuple[float, float] = HEIGHT_FRACTION,
) -> Image.Image:
    """A (28, 28) uint8 digit's pen path drawn with a round brush in a (side, side) cell, its
    height that share of the side, at a random place: its ink coverage as an "L" image, as
    "canvas" draws it. The brush is `stroke_width` px, or one drawn from STROKE_WIDTH."""
    points, segments = digit_skeleton(digit)
    width = _brush_width(rng, side) if stroke_width is None else stroke_width
    return _stroke_coverage(points, segments, (side, side), width, rng, height_fraction)


def render(digit: np.ndarray, style: str, rng: np.random.Generator) -> np.ndarray:
    """A (28, 28) uint8 MNIST digit drawn in a STYLES style: (H, W, 4) RGBA or (H, W, 3) RGB uint8.

    "canvas" and "transparent" are (280, 280, 4); "paper" is (H, W, 3) with H in PAPER_HEIGHT
    and W / H in PAPER_ASPECT.
    """
    if style not in STYLES:
        raise ValueError(f"Unknown style {style!r}; choose one of {', '.join(STYLES)}.")
    if style == "paper":
        points, segments = digit_skeleton(digit)
        height = int(rng.integers(*PAPER_HEIGHT, endpoint=True))
        width = round(height * rng.uniform(*PAPER_ASPECT))
        width += width == height  # a cropped photo is never exactly square
        stroke_width = _brush_width(rng, min(height, width))
        coverage = _stroke_coverage(points, segments, (height, width), stroke_width, rng)
        return paper_photo(coverage, rng)

    ink = pen_drawing(digit, CANVAS_SIDE, rng)
    if style == "canvas":
        channels = (ink, ink, ink, Image.new("L", ink.size, 255))
    else:
        black = Image.new("L", ink.size, 0)
        channels = (black, black, black, ink)
    return np.asarray(Image.merge("RGBA", channels))


def drawn_test_set(
    style: str, n: int, seed: int, data: Mnist | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """The first n MNIST test digits drawn in `style`: n images as render() returns, labels (n,).

    Digit i's drawing depends only on (style, seed, i), so a smaller n gives a prefix of a larger.
    """
    data = load_mnist() if data is None else data
    return list(drawn_test_drawings(style, n, seed, data)), np.array(data.test_labels[:n])


def drawn_test_drawings(style: str, n: int, seed: int, data: Mnist) -> Iterator[np.ndarray]:
    """drawn_test_set's drawings one at a time, so that only one is held (a canvas is large)."""
    if style not in STYLES:
        raise ValueError(f"Unknown style {style!r}; choose one of {', '.join(STYLES)}.")
    if not 0 <= n <= len(data.test_images):
        raise ValueError(f"n must be between 0 and {len(data.test_images)}, not {n}.")
    rngs = np.random.default_rng([seed, STYLES.index(style)]).spawn(n)
    return (
        render(digit, style, rng) for digit, rng in zip(data.test_images[:n], rngs, strict=True)
    )


def draw_and_read(digit: np.ndarray, style: str, rng: np.random.Generator) -> np.ndarray | None:
    """A (28, 28) uint8 digit drawn in `style` and read back by `preprocess`: uint8 or None."""
    image = preprocess(render(digit, style, rng)).image
    if image is None:
        return None
    return to_uint8(image)


def _draw_training_digits(args: tuple[np.ndarray, np.ndarray, np.ndarray, int]) -> np.ndarray:
    """Worker: digits (k, 28, 28) with their source indices (k,) and styles (k,) -> (k, 28, 28)."""
    digits, sources, styles, seed = args
    out = np.zeros_like(digits)
    for j, (digit, source, style) in enumerate(zip(digits, sources, styles, strict=True)):
        rng = np.random.default_rng([seed, int(source), int(style)])
        read = draw_and_read(digit, STYLES[style], rng)
        if read is not None:
            out[j] = read
    return out


class DrawnTrainingSet(TypedDict):
    """The arrays of a drawn training set, as make_drawn_training_set describes them."""

    images: np.ndarray
    labels: np.ndarray
    source: np.ndarray
    style: np.ndarray


def make_drawn_training_set(
    data: Mnist, n: int = DRAWN_COUNT, seed: int = DRAWN_SEED, workers: int = 2
) -> DrawnTrainingSet:
    """n MNIST training digits drawn in random styles and preprocessed, as the product reads them.

    Returns images (m, 28, 28) uint8, labels (m,) uint8, source (m,) int32, the index of each
    digit's MNIST training image, and style (m,) uint8, its index in STYLES; m <= n, as
    drawings `preprocess` finds no digit in are left out. The drawing of training image i in
    style s depends only on (seed, i, s), whatever the number of workers.
    """
    if not 0 < n <= TRAIN_SOURCES:
        raise ValueError(f"n must be between 1 and {TRAIN_SOURCES}, not {n}.")
    rng = np.random.default_rng(seed)
    sources = np.sort(rng.permutation(TRAIN_SOURCES)[:n]).astype(np.int32)
    styles = rng.integers(len(STYLES), size=n)
    parts = np.array_split(np.arange(n), max(1, workers * 8))
    jobs = [(data.train_images[sources[p]], sources[p], styles[p], seed) for p in parts]
    with ProcessPoolExecutor(workers) as pool:
        images = np.concatenate(list(pool.map(_draw_training_digits, jobs)))
    kept = images.reshape(n, -1).any(axis=1)
    return {
        "images": images[kept],
        "labels": np.asarray(data.train_labels[sources[kept]], np.uint8),
        "source": sources[kept],
        "style": styles[kept].astype(np.uint8),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Draw MNIST training digits as people draw them, read them back through "
        "the product's preprocessing, and save them as training data."
    )
    parser.add_argument("--n", type=int, default=DRAWN_COUNT, help="digits to draw")
    parser.add_argument("--seed", type=int, default=DRAWN_SEED)
    parser.add_argument("--workers", type=int, default=2, help="processes drawing at once")
    parser.add_argument("--output", type=Path, default=DRAWN_PATH)
    args = parser.parse_args(argv)
    if not 0 < args.n <= TRAIN_SOURCES:
        parser.error(f"--n must be between 1 and {TRAIN_SOURCES}, not {args.n}")
    if args.workers < 1:
        parser.error(f"--workers must be 1 or more, not {args.workers}")
    start = time.perf_counter()
    drawn = make_drawn_training_set(load_mnist(), args.n, args.seed, args.workers)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "wb") as file:  # a path given to savez would gain ".npz"
        np.savez_compressed(file, **drawn)
    print(
        f"drew {len(drawn['images'])} of {args.n} digits in {time.perf_counter() - start:.0f} s; "
        f"wrote {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
