"""Turn any user image into the 28x28 white-on-black digit the network expects, the MNIST way."""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
from dataclasses import dataclass, field
from typing import BinaryIO, cast

import numpy as np
from PIL import Image, ImageChops, ImageFilter, ImageOps, UnidentifiedImageError

from digits.data.mnist import IMAGE_SIDE

# MNIST scaled each digit to fit a 20x20 box (keeping its aspect ratio) inside the 28x28 field.
FIT_SIDE = 20
# MNIST then moved the centre of mass to pixel index 14.0 in both axes (the test set's mean is
# 13.99 down, 14.01 across), i.e. half the side rather than the middle pixel's 13.5.
CENTRE = IMAGE_SIDE / 2

# The image formats the product reads by name, with their file extensions: the upload box
# offers these, and an unreadable file is told to be one of them.
FORMATS = {
    "PNG": ("png",),
    "JPEG": ("jpg", "jpeg"),
    "WebP": ("webp",),
    "BMP": ("bmp",),
    "GIF": ("gif",),
}
# Pillow's names for them, the only formats load_image lets it open.
PILLOW_FORMATS = tuple(name.upper() for name in FORMATS)
FILE_EXTENSIONS = tuple(ext for extensions in FORMATS.values() for ext in extensions)
FORMAT_NAMES = ", ".join(list(FORMATS)[:-1]) + " or " + list(FORMATS)[-1]

# Larger inputs are reduced first: a digit needs far fewer pixels than a phone photo has.
WORK_SIDE = 512
# The lighting is estimated on a coarse grid whose min filter spans about a quarter of the image,
# wider than any pen stroke, so strokes never leak into the background estimate.
GRID_SIDE = 32
GRID_MIN_WINDOW = 9
GRID_BLUR_RADIUS = 2
# A border whose pixels (2nd to 98th percentile) span at most this many grey levels is a clean
# digital background (a canvas, a screenshot), which needs no lighting correction.
CLEAN_BORDER_RANGE = 8

# Where a flat background is put, high enough above 0 that its noise is kept whole.
NOISE_PEDESTAL = 32
# Statistics of images at least twice this size on each side are taken from every other pixel.
SAMPLE_MIN_SIDE = 64
# The strokes must stand out from the background by four noise sigmas and by this much: about
# 6% of full scale, so that a clean digit at 10% contrast is read and one at 4% is not.
MIN_CONTRAST = 16
# Luminance is kept unless its spread is under this share of the colours' principal spread;
# a grey image's luminance keeps 0.58 of it, red ink on blue paper about 0.05.
LUMINANCE_SHARE = 0.3
LUMINANCE_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as PIL's "L"
MIN_CONTRAST_IN_SIGMAS = 4.0
# When Otsu's split falls inside the noise, strokes are the pixels this many noise sigmas above
# the background, if they are at least this share of the image: more than blank paper ever has,
# less than the thinnest 1 (docs/design-notes.md, "Stroke share").
SPLIT_SIGMAS = 5.0
MIN_STROKE_SHARE = 0.003
# The background is cut this many noise sigmas above its median, so noise becomes exact black.
NOISE_CUT_SIGMAS = 3.0

# A row or column holds ink if its ink adds up to a full pixel and 2% of the inkiest line.
LINE_MIN_PIXELS = 1.0
LINE_MIN_FRACTION = 0.02
# Separate ink is joined to the digit if it is this close (fraction of the digit's extent) and
# carries this share of the digit's ink; anything within NEAR_FRACTION of the image always is.
JOIN_GAP_FRACTION = 0.75
JOIN_MASS_FRACTION = 0.05
NEAR_FRACTION = 0.01
# Up to this many faint edge lines next to the box belong to the digit: a pixel or two is
# nothing in a large image but a tenth of the digit in a 28x28 one.
FRINGE_PIXELS = 2
# Ink whose bounding box is shorter than this (fraction of the image, or pixels) is a speck.
MIN_DIGIT_FRACTION = 0.05
MIN_DIGIT_PIXELS = 4

# Strokes are measured and evened out with the digit's long side at this many pixels, where
# one 3x3 filter pass changes their width by about a fifth of MNIST's.
STROKE_SIDE = 4 * FIT_SIDE
# Working pixels at least this bright (the brightest being 255) count as ink when measuring.
STROKE_INK_LEVEL = 128
# MNIST's median stroke width at STROKE_SIDE, as _stroke_width measures it on all 60,000
# training digits (docs/design-notes.md, "Stroke width").
MNIST_STROKE_WIDTH = 10.2
# Strokes are brought into this range by the least change, so MNIST digits stay nearly as they
# are while a thin or a thick pen comes close to MNIST's median. The thick side is tighter, as
# fat strokes fill loops.
STROKE_WIDTH_RANGE = (8.0, 12.0)
# How much one 3x3 max or min filter pass widens or narrows strokes as _stroke_width measures
# them (square filters move diagonal edges a little more).
WIDTH_PER_PASS = 2.3
# Thinning takes at most this share of the width, and stops short of erasing a stroke: more
# than this many working pixels of ink further than ERASED_DISTANCE from what is left.
MAX_THINNING = 0.5
ERASED_DISTANCE = 2
MAX_ERASED_PIXELS = 8

# load_image refuses anything bigger before decoding it.
# Salt-and-pepper noise: pixels this far above or below all eight of their neighbours, making
# up at least this share of the image (clean drawings and photos have next to none).
IMPULSE_JUMP = 64
IMPULSE_MIN_SHARE = 0.001

MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_PIXELS = 50_000_000

STAGE_NAMES = (
    "grayscale",
    "impulse noise removed",  # only when there was some
    "ink (polarity fixed)",
    "background flattened",
    "cropped",
    "stroke width evened",
    "fitted 20x20",
    "centred 28x28",
)


class ImageError(Exception):
    """An input that cannot be read as an image; the message is one sentence for the user."""


@dataclass(frozen=True)
class Preprocessed:
    """A digit ready for the network: image (28, 28) float32 in [0, 1] or None, and its stages.

    `stages` maps STAGE_NAMES, in order and as far as the pipeline got, to 2-D images for display:
    uint8 0-255 up to "stroke width evened", float32 0-1 after. `reason` says why there is no
    digit.
    """

    image: np.ndarray | None
    stages: dict[str, np.ndarray] = field(default_factory=dict)
    reason: str = ""

    @property
    def has_digit(self) -> bool:
        """Whether a digit was found (otherwise `reason` says why not)."""
        return self.image is not None

    @property
    def vector(self) -> np.ndarray:
        """The image flattened for the network: (784,) float32."""
        if self.image is None:
            raise ValueError(
                f"There is no digit to classify; check has_digit first ({self.reason})"
            )
        return self.image.reshape(-1)


def preprocess(image: Image.Image | np.ndarray) -> Preprocessed:
    """Find the digit in a PIL image or (H, W) / (H, W, 1-4) array and render it MNIST-style."""
    stages: dict[str, np.ndarray] = {}
    if isinstance(image, np.ndarray):
        if image.size == 0:
            return Preprocessed(None, stages, "No digit found: the image is empty.")
        pil = _array_to_image(image)
    elif isinstance(image, Image.Image):
        pil = to_8bit(upright(image))
    else:
        raise TypeError(
            f"preprocess() takes a PIL image or a NumPy array, not {type(image).__name__}."
        )

    gray = _grayscale(_shrink(pil))
    if gray is None:
        return Preprocessed(None, stages, "No digit found: the image is fully transparent.")
    stages["grayscale"] = np.asarray(gray)
    despeckled = _remove_impulses(gray)
    if despeckled is not None:
        gray = despeckled
        stages["impulse noise removed"] = np.asarray(gray)

    ink, flat = _ink_and_flatten(gray)
    stages["ink (polarity fixed)"] = np.asarray(ink)

    normalised, reason = _normalise_contrast(flat)
    if normalised is None:
        stages["background flattened"] = np.asarray(flat)
        return Preprocessed(None, stages, reason)
    stages["background flattened"] = np.asarray(normalised)

    box = _digit_box(stages["background flattened"])
    if box is None:
        return Preprocessed(None, stages, "No digit found: the image has no strokes.")
    left, top, right, bottom = box
    if max(right - left, bottom - top) < max(
        MIN_DIGIT_PIXELS, MIN_DIGIT_FRACTION * max(normalised.size)
    ):
        return Preprocessed(
            None, stages, "No digit found: the ink is too small; draw or crop the digit larger."
        )
    cropped = normalised.crop(box)
    stages["cropped"] = np.asarray(cropped)

    evened, fitted = _even_strokes(cropped)
    stages["stroke width evened"] = evened
    fitted = _full_contrast(fitted)
    stages["fitted 20x20"] = fitted
    if not fitted.any():
        return Preprocessed(None, stages, "No digit found: the strokes are too faint to read.")
    centred = _centre(fitted)
    stages["centred 28x28"] = centred
    return Preprocessed(centred, stages)


def naive_preprocess(image: Image.Image | np.ndarray) -> np.ndarray:
    """The baseline that only resizes: (28, 28) float32 in [0, 1], no polarity fix or centring."""
    pil = _array_to_image(image) if isinstance(image, np.ndarray) else to_8bit(image)
    # Bicubic is what Pillow's resize() uses when not told otherwise.
    small = pil.convert("L").resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BICUBIC)
    return np.asarray(small, dtype=np.float32) / 255


def load_image(source: str | os.PathLike[str] | bytes | BinaryIO) -> Image.Image:
    """Open an image file, bytes or upload safely: first frame, upright, bombs refused unread.

    Only the formats in FORMATS are opened, so a bomb in any other format is never parsed.
    """
    data = _read_capped(source)
    # Pillow warns about corrupt EXIF blocks and images between its bomb limit and ours; our
    # answer (the image, or one ImageError) says all a user needs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = _open(data)
        width, height = img.size
        if width * height > MAX_PIXELS:
            raise _too_large()
        if width == 0 or height == 0:
            raise ImageError("The image has no pixels.")
        # JPEG can decode at 1/2, 1/4 or 1/8 scale, which makes large photos cheap.
        img.draft(None, (2 * WORK_SIDE, 2 * WORK_SIDE))
        try:
            img.seek(0)
            img.load()
            return upright(img)
        except (OSError, SyntaxError, EOFError, ValueError, struct.error):
            raise _damaged() from None


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; a corrupt EXIF block is ignored quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ImageOps.exif_transpose(image)


def _open(data: bytes) -> Image.Image:
    """Image.open restricted to FORMATS, with every failure turned into one ImageError."""
    try:
        return Image.open(io.BytesIO(data), formats=PILLOW_FORMATS)
    except UnidentifiedImageError:
        if b"<svg" in data[:4096].lower():
            raise ImageError("SVG drawings are not supported; export it as PNG.") from None
        raise ImageError(
            f"This file is not an image that can be read; use {FORMAT_NAMES}."
        ) from None
    except Image.DecompressionBombError:
        raise _too_large() from None
    # Headers that lie (oversized text or colour profiles, impossible fields) fail while opening.
    except (OSError, SyntaxError, EOFError, ValueError, struct.error):
        raise _damaged() from None


def _damaged() -> ImageError:
    return ImageError(
        "The image file is damaged or incomplete; save it again from the app that made it."
    )


def _too_large() -> ImageError:
    """The error for images over MAX_PIXELS."""
    return ImageError(
        f"The image is too large; use one under {MAX_PIXELS // 1_000_000} million pixels."
    )


def _read_capped(source: str | os.PathLike[str] | bytes | BinaryIO) -> bytes:
    """The bytes of a path, bytes object or binary file, refusing more than MAX_FILE_BYTES."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = source.read(MAX_FILE_BYTES + 1)
    else:
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise ImageError(f"There is no file at {os.fspath(source)}.") from None
        except IsADirectoryError:
            raise ImageError(f"{os.fspath(source)} is a folder, not an image file.") from None
        except PermissionError:
            raise ImageError(f"{os.fspath(source)} cannot be read (permission denied).") from None
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(
            f"The file is too large; use one under {MAX_FILE_BYTES // (1024 * 1024)} MB."
        )
    return data


def _array_to_image(array: np.ndarray) -> Image.Image:
    """An (H, W) or (H, W, 1-4) array of any numeric dtype as an 8-bit L, LA, RGB or RGBA image."""
    if not (array.ndim == 2 or (array.ndim == 3 and 1 <= array.shape[2] <= 4)):
        raise ValueError(f"Expected an (H, W) or (H, W, 1-4) image array, got {array.shape}.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(_to_uint8(array)))


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale an array to uint8, reading its range from its dtype or, failing that, its values."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.view(np.uint8) * np.uint8(255)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"Expected a numeric image array, got dtype {array.dtype}.")
    values = np.nan_to_num(array.astype(np.float64), nan=0.0)
    low, high = values.min(), values.max()
    # Common conventions first: [0, 1] floats or masks, 8-bit and 16-bit ranges.
    if low >= 0 and high <= 1:
        values = values * 255
    elif low >= 0 and high <= 255:
        pass
    elif low >= 0 and high <= 65535:
        values = values / 257
    else:
        # Halving first keeps the span finite for values near the float64 limits.
        span = high / 2 - low / 2
        values = (values / 2 - low / 2) * (255 / span) if span > 0 else np.zeros_like(values)
    return (values + 0.5).astype(np.uint8)


def to_8bit(image: Image.Image) -> Image.Image:
    """A PIL image of any mode as 8-bit L, LA, RGB or RGBA."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _array_to_image(np.asarray(image))
    if mode in ("1", "La"):
        return image.convert("L" if mode == "1" else "LA")
    try:
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    except ValueError:
        raise ImageError(f"Images in colour mode {mode} are not supported.") from None


def _shrink(image: Image.Image) -> Image.Image:
    """The image reduced with area averaging so that its long side is at most WORK_SIDE."""
    scale = WORK_SIDE / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX, reducing_gap=2.0)


def _grayscale(image: Image.Image) -> Image.Image | None:
    """Luminance with transparency composited over the colour the strokes contrast with, or None."""
    gray = image.convert("L") if image.mode != "LA" else image.getchannel("L")
    if image.mode == "RGB":
        return _colour_contrast(image, gray)
    if image.mode == "L":
        return gray
    alpha = image.getchannel("A")
    alpha_low, alpha_high = alpha.getextrema()
    if alpha_low == 255:
        return gray
    if alpha_high == 0:
        return None
    # The opaque pixels are the drawing; a canvas leaves the rest transparent with arbitrary RGB.
    weights, luminance = np.asarray(alpha), np.asarray(gray)
    if _sample(weights).any():  # else the sample missed every opaque pixel: use them all
        weights, luminance = _sample(weights), _sample(luminance)
    weights = weights.ravel().astype(np.float32)
    stroke_luminance = (luminance.ravel().astype(np.float32) @ weights) / weights.sum()
    backdrop = Image.new("L", gray.size, 0 if stroke_luminance >= 128 else 255)
    return Image.composite(gray, backdrop, alpha)


def _colour_contrast(image: Image.Image, gray: Image.Image) -> Image.Image:
    """Grey levels along the colour direction with the most spread, where luminance hides it.

    Red ink on blue paper has close luminances but far-apart colours; the principal axis of
    the pixels' colours keeps the ink-to-paper contrast that luminance loses.
    """
    rgb = np.asarray(image)
    sample = rgb[::2, ::2] if min(rgb.shape[:2]) >= 2 * SAMPLE_MIN_SIDE else rgb
    colours = sample.reshape(-1, 3).astype(np.float32)
    if len(colours) < 2:  # one pixel has no spread to follow
        return gray
    spreads, axes = np.linalg.eigh(np.cov(colours, rowvar=False))
    axis = axes[:, -1]
    if np.std(np.asarray(gray, dtype=np.float32)) >= LUMINANCE_SHARE * np.sqrt(max(spreads[-1], 0)):
        return gray
    axis = axis if axis @ LUMINANCE_WEIGHTS >= 0 else -axis
    projected = rgb.astype(np.float32) @ axis
    low, high = projected.min(), projected.max()
    return Image.fromarray(np.round((projected - low) * (255 / (high - low))).astype(np.uint8))


def _remove_impulses(gray: Image.Image) -> Image.Image | None:
    """The image with salt-and-pepper noise replaced by the local median, or None if it has none.

    Only pixels that stand out from their 3x3 median are replaced (a switching median), so the
    strokes keep their edges; the noise itself is found as pixels apart from all neighbours.
    """
    pixels = np.asarray(gray, dtype=np.int16)
    padded = np.pad(pixels, 1, mode="edge")
    height, width = pixels.shape
    neighbours = np.stack(
        [
            padded[dy : dy + height, dx : dx + width]
            for dy in range(3)
            for dx in range(3)
            if (dy, dx) != (1, 1)
        ]
    )
    isolated = (pixels - neighbours.max(axis=0) > IMPULSE_JUMP) | (
        neighbours.min(axis=0) - pixels > IMPULSE_JUMP
    )
    if isolated.mean() < IMPULSE_MIN_SHARE:
        return None
    median = np.asarray(gray.filter(ImageFilter.MedianFilter(3)), dtype=np.int16)
    outliers = np.abs(pixels - median) > IMPULSE_JUMP
    return Image.fromarray(np.where(outliers, median, pixels).astype(np.uint8))


def _ink_and_flatten(gray: Image.Image) -> tuple[Image.Image, Image.Image]:
    """The grey image with ink made bright, and the same with the background lighting removed."""
    pixels = np.asarray(gray)
    border = np.sort(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]))
    low, level, high = border[[len(border) // 50, len(border) // 2, -1 - len(border) // 50]]
    if high - low <= CLEAN_BORDER_RANGE:
        # A flat background: ink is whatever differs from it, on whichever side the mean lies.
        ink_is_dark = pixels.sum(dtype=np.uint64) < int(level) * pixels.size
        ink = ImageChops.invert(gray) if ink_is_dark else gray
        # The background is lowered to NOISE_PEDESTAL, not to 0: clipping the noise below it
        # would hide it from the noise estimate, and faint strokes would drown in it.
        offset = max((255 - int(level) if ink_is_dark else int(level)) - NOISE_PEDESTAL, 0)
        if offset == 0:
            return ink, ink
        return ink, ink.point([max(v - offset, 0) for v in range(256)])

    # Uneven lighting: judge polarity by the skew of detail left after removing the lighting,
    # since strokes are sharp outliers on one side while lighting and vignetting are smooth.
    grid = gray.resize(_grid_size(gray.size), Image.Resampling.BOX)
    detail = np.asarray(grid, dtype=np.float32) - np.asarray(
        grid.filter(ImageFilter.GaussianBlur(GRID_MIN_WINDOW / 2)), dtype=np.float32
    )
    ink_is_dark = float((detail**3).sum()) < 0
    ink = ImageChops.invert(gray) if ink_is_dark else gray
    ink_grid = ImageChops.invert(grid) if ink_is_dark else grid
    lighting = (
        ink_grid.filter(ImageFilter.MinFilter(GRID_MIN_WINDOW))
        .filter(ImageFilter.GaussianBlur(GRID_BLUR_RADIUS))
        .resize(gray.size, Image.Resampling.BILINEAR)
    )
    return ink, ImageChops.subtract(ink, lighting)


def _grid_size(size: tuple[int, int]) -> tuple[int, int]:
    """The coarse grid for lighting estimates: long side GRID_SIDE, same aspect ratio."""
    scale = min(1.0, GRID_SIDE / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _normalise_contrast(flat: Image.Image) -> tuple[Image.Image | None, str]:
    """Stretch bright-ink-on-black so the background is 0 and stroke cores 255, or say why not."""
    hist = np.bincount(_sample(np.asarray(flat)).ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    background = _histogram_median(hist)
    if hist[background + 1 :].sum() == 0:
        return None, "No digit found: the image has no strokes."
    # The median absolute deviation, turned into a Gaussian sigma, measures the noise.
    deviations = np.bincount(np.abs(np.arange(256) - background), weights=hist, minlength=256)
    sigma = 1.4826 * _histogram_median(deviations)

    # Otsu's threshold splits background from strokes.
    below = np.cumsum(hist)
    moment = np.cumsum(hist * levels)
    above = below[-1] - below
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (moment[-1] * below - moment * below[-1]) ** 2 / (below * above)
    threshold = int(np.argmax(np.nan_to_num(between, nan=-1.0)))
    if hist[threshold + 1 :].sum() == 0:
        return None, "No digit found: the image has no strokes."
    stroke_level = _stroke_level(hist, threshold)
    min_contrast = max(MIN_CONTRAST, MIN_CONTRAST_IN_SIGMAS * sigma)
    if stroke_level - background < min_contrast:
        # Thin strokes can be so few pixels that Otsu's split falls inside the noise, and the
        # noise then drags the strokes' median down. Pixels far out of the noise are strokes,
        # provided there are more of them than a blank page's noise ever gives.
        threshold = int(background + SPLIT_SIGMAS * sigma)
        if hist[threshold + 1 :].sum() < MIN_STROKE_SHARE * hist.sum():
            return None, "No digit found: the strokes are too faint or too noisy to read."
        stroke_level = _stroke_level(hist, threshold)
        if stroke_level - background < min_contrast:
            return None, "No digit found: the strokes are too faint or too noisy to read."
    low = background + NOISE_CUT_SIGMAS * sigma
    gain = 255 / (stroke_level - low)
    lut = np.clip((levels - low) * gain, 0, 255).round().astype(np.uint8)
    return (flat if low <= 0 and gain == 1 else flat.point(lut.tolist())), ""


def _stroke_level(hist: np.ndarray, threshold: int) -> int:
    """The median level of a 256-bin histogram's pixels above `threshold`: the strokes' level."""
    strokes = hist.copy()
    strokes[: threshold + 1] = 0
    return _histogram_median(strokes)


def _sample(pixels: np.ndarray) -> np.ndarray:
    """Every other row and column of a large (H, W) image, which is plenty for its statistics."""
    if min(pixels.shape) >= 2 * SAMPLE_MIN_SIDE:
        return pixels[::2, ::2]
    return pixels


def _histogram_median(hist: np.ndarray) -> int:
    """The median level of a 256-bin histogram."""
    cumulative = np.cumsum(hist)
    return int(np.searchsorted(cumulative, cumulative[-1] / 2))


def _digit_box(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """The digit's (left, top, right, bottom) in an (H, W) uint8 ink map, ignoring specks."""
    top, bottom = 0, ink.shape[0]
    left, right = 0, ink.shape[1]
    # Alternate so that specks sharing rows with the digit but not its columns fall away.
    for round_ in range(2):
        # A narrow digit's parts can lie further apart across than its width (a 5's flag far
        # to the right of its body), so gaps are judged against its height as well.
        width = right - left if round_ else 0
        rows = _ink_span(ink[:, left:right].sum(axis=1, dtype=np.int32), width)
        if rows is None:
            return None
        top, bottom = rows
        columns = _ink_span(ink[top:bottom].sum(axis=0, dtype=np.int32), bottom - top)
        if columns is None:
            return None
        left, right = columns
    # The thresholds above skip the faintest edge lines.
    top, bottom = _grow(np.asarray(ink[:, left:right].any(axis=1)), top, bottom, FRINGE_PIXELS)
    left, right = _grow(np.asarray(ink[top:bottom].any(axis=0)), left, right, FRINGE_PIXELS)
    return left, top, right, bottom


def _grow(has_ink: np.ndarray, start: int, stop: int, limit: int) -> tuple[int, int]:
    """Widen [start, stop) by up to `limit` lines each way while the (n,) bool has_ink holds."""
    before = has_ink[max(0, start - limit) : start][::-1]
    after = has_ink[stop : stop + limit]
    start -= len(before) if before.all() else int(before.argmin())
    stop += len(after) if after.all() else int(after.argmin())
    return start, stop


def _ink_span(profile: np.ndarray, across: int) -> tuple[int, int] | None:
    """The [start, stop) run of an ink profile (ink per row or column) that holds the digit.

    `across` is the digit's extent the other way (0 if unknown): gaps are judged against it too.
    """
    inky = profile >= max(LINE_MIN_PIXELS * 255, LINE_MIN_FRACTION * profile.max())
    if not inky.any():
        return None
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inky.view(np.int8), [0]))))
    starts, stops = edges[::2], edges[1::2]
    cumulative = np.concatenate(([0], np.cumsum(profile)))
    mass = cumulative[stops] - cumulative[starts]
    main = int(np.argmax(mass))
    near = max(1.0, NEAR_FRACTION * len(profile))

    def joins(gap: int, run: int, extent: int) -> bool:
        big = mass[run] >= JOIN_MASS_FRACTION * mass[main]
        return gap <= near or (big and gap <= JOIN_GAP_FRACTION * max(extent, across))

    first = last = main
    while first > 0 and joins(
        starts[first] - stops[first - 1], first - 1, stops[last] - starts[first]
    ):
        first -= 1
    while last < len(starts) - 1 and joins(
        starts[last + 1] - stops[last], last + 1, stops[last] - starts[first]
    ):
        last += 1
    return int(starts[first]), int(stops[last])


def _even_strokes(cropped: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The cropped digit with MNIST's stroke width: (h, w) uint8 at STROKE_SIDE, fitted float32.

    The first is for display; the second is the digit fitted into FIT_SIDE, in [0, 1].
    """
    scale = STROKE_SIDE / max(cropped.size)
    size = (max(1, round(cropped.width * scale)), max(1, round(cropped.height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    work = _full_scale(cropped.resize(size, resample))
    change = _width_change(_stroke_width(np.asarray(work)))
    if change == 0:
        return np.asarray(work), np.asarray(_fit(cropped), dtype=np.float32) / 255
    passes = abs(change) / WIDTH_PER_PASS
    pad = math.ceil(passes)
    ink = np.zeros((work.height + 2 * pad, work.width + 2 * pad), np.uint8)
    ink[pad : pad + work.height, pad : pad + work.width] = np.asarray(work)
    if change > 0:
        ink, moved = _thicken(ink, passes), passes
    else:
        ink, moved = _thin(ink, passes)
        moved = -moved
    # A wider pen makes the digit bigger as well, a narrower one smaller: each filter pass moves
    # the outline one pixel out or in, into the padding, and the digit is fitted with it.
    box = (pad - moved, pad - moved, work.width + pad + moved, work.height + pad + moved)
    return ink, np.asarray(_fit(Image.fromarray(ink), box), dtype=np.float32) / 255


def _full_scale(image: Image.Image) -> Image.Image:
    """The "L" image stretched so its brightest pixel is 255."""
    high = cast(int, image.getextrema()[1])  # a one-band image's extrema are (low, high) ints
    if high in (0, 255):
        return image
    lut = np.minimum(np.arange(256) * (255 / high) + 0.5, 255).astype(np.uint8)
    return image.point(lut.tolist())


def _thicken(ink: np.ndarray, passes: float) -> np.ndarray:
    """(h, w) uint8 grey-dilated by `passes` 3x3 max filters, a last fraction by blending."""
    for _ in range(int(passes)):
        ink = _filter3(ink, np.maximum)
    fraction = passes - int(passes)
    return _blend(ink, _filter3(ink, np.maximum), fraction) if fraction else ink


def _thin(ink: np.ndarray, passes: float) -> tuple[np.ndarray, float]:
    """(h, w) uint8 grey-eroded by up to `passes` 3x3 min filters, and how many were done.

    Fewer are done where a stroke thinner than the rest would vanish. Dilating the eroded digit
    back (an opening) restores every stroke that survived, give or take a pixel at corners, so
    ink further than ERASED_DISTANCE from the restored digit is a stroke that was erased.
    """
    eroded = [ink]
    for _ in range(math.ceil(passes)):
        eroded.append(_filter3(eroded[-1], np.minimum))
    strokes = ink >= STROKE_INK_LEVEL
    for count in range(len(eroded) - 1, 0, -1):
        near = eroded[count]
        for _ in range(count + ERASED_DISTANCE):
            near = _filter3(near, np.maximum)
        if np.count_nonzero(strokes & (near < STROKE_INK_LEVEL)) <= MAX_ERASED_PIXELS:
            fraction = min(1.0, passes - (count - 1))
            return _blend(eroded[count - 1], eroded[count], fraction), count - 1 + fraction
    return ink, 0.0


def _filter3(image: np.ndarray, pick: np.ufunc) -> np.ndarray:
    """A 3x3 max (pick=np.maximum) or min (np.minimum) filter of an (h, w) array, done 3x1, 1x3."""
    rows = image.copy()
    pick(rows[1:], image[:-1], out=rows[1:])
    pick(rows[:-1], image[1:], out=rows[:-1])
    out = rows.copy()
    pick(out[:, 1:], rows[:, :-1], out=out[:, 1:])
    pick(out[:, :-1], rows[:, 1:], out=out[:, :-1])
    return out


def _blend(first: np.ndarray, second: np.ndarray, fraction: float) -> np.ndarray:
    """(h, w) uint8 images mixed: `fraction` of the second, the rest of the first."""
    mixed = first * np.float32(1 - fraction) + second * np.float32(fraction)
    return (mixed + 0.5).astype(np.uint8)


def _stroke_width(work: np.ndarray) -> float:
    """The mean stroke width in pixels of an (h, w) uint8 ink image: twice area over perimeter.

    The perimeter is counted as ink/background changes along rows and columns times pi/4, which
    is unbiased over stroke directions (Crofton), and stays right down to one-pixel strokes.
    """
    ink = work >= STROKE_INK_LEVEL
    # Changes between neighbours, plus ink on the image's edge, which meets the outside.
    crossings = (
        np.count_nonzero(ink[:, 1:] != ink[:, :-1])
        + np.count_nonzero(ink[1:] != ink[:-1])
        + np.count_nonzero(ink[[0, -1]])
        + np.count_nonzero(ink[:, [0, -1]])
    )
    if crossings == 0:
        return 0.0
    return 2 * float(np.count_nonzero(ink)) / (crossings * np.pi / 4)


def _width_change(width: float) -> float:
    """How much to widen strokes (negative: narrow them) that measure `width` at STROKE_SIDE."""
    if width <= 0:
        return 0.0
    low, high = STROKE_WIDTH_RANGE
    return max(min(max(width, low), high) - width, -MAX_THINNING * width)


def _full_contrast(fitted: np.ndarray) -> np.ndarray:
    """The (h, w) float32 digit scaled so its brightest pixel is 1, as in every MNIST digit."""
    peak = fitted.max()
    return fitted / peak if 0 < peak < 1 else fitted


def _fit(image: Image.Image, box: tuple[float, ...] | None = None) -> Image.Image:
    """Scale the image, or its (left, top, right, bottom) region, so its long side is FIT_SIDE.

    The region's edges may fall between pixels. The short side is extended (right or down) to
    whole output pixels rather than stretched to them, so that a digit a little wider comes out
    a little wider, not resampled on a shifted grid.
    """
    left, top, right, bottom = box if box is not None else (0, 0, *image.size)
    width, height = right - left, bottom - top
    scale = FIT_SIDE / max(width, height)
    size = (max(1, math.ceil(width * scale - 1e-6)), max(1, math.ceil(height * scale - 1e-6)))
    right, bottom = left + size[0] / scale, top + size[1] / scale
    if right > image.width or bottom > image.height:
        grown = Image.new("L", (math.ceil(right), math.ceil(bottom)), 0)
        grown.paste(image)
        image = grown
    region = (left, top, right, bottom)
    # Area averaging anti-aliases a downscale without ringing; upscales need interpolation.
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return image.resize(size, resample, box=region)


def _centre(fitted: np.ndarray) -> np.ndarray:
    """Paste an (h, w) digit into the (28, 28) field with its centre of mass at CENTRE."""
    height, width = fitted.shape
    total = fitted.sum()
    com_y = (fitted.sum(axis=1) @ np.arange(height, dtype=np.float32)) / total
    com_x = (fitted.sum(axis=0) @ np.arange(width, dtype=np.float32)) / total
    # Keep the whole digit inside the field even when its mass sits far to one side.
    top = int(np.clip(round(CENTRE - com_y), 0, IMAGE_SIDE - height))
    left = int(np.clip(round(CENTRE - com_x), 0, IMAGE_SIDE - width))
    placed = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    placed[top : top + height, left : left + width] = fitted
    return placed
