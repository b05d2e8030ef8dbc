"""Specification of preprocess.py: every kind of user image becomes an MNIST-style 28x28 digit."""

import io
import warnings

import numpy as np
import pytest
from helpers.hostile import hostile_images, png_bytes, with_claimed_size
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFilter

from digits.data import preprocess
from digits.data.mnist import DATA_DIR, IMAGE_SIDE, N_PIXELS, find_file, read_idx
from digits.data.preprocess import (
    FILE_EXTENSIONS,
    FIT_SIDE,
    MNIST_STROKE_WIDTH,
    STROKE_SIDE,
    ImageError,
    load_image,
    naive_preprocess,
)

CANVAS = 280
# Test-set digits 0-4 are a 7, 2, 1 (thin), 0 and 4.
DIGITS = (0, 1, 2, 3, 4)
# Similarity (correlation) of two renderings of the same drawing, and of a drawing made by
# enlarging and thresholding an MNIST digit to that digit (the thresholding loses detail).
SAME_DRAWING = 0.95
CLOSE_TO_ORIGINAL = 0.9


@pytest.fixture(scope="module")
def test_images():
    return read_idx(find_file(DATA_DIR, "t10k-images-idx3-ubyte"))


def drawn(digit: np.ndarray, size: int, top: int, left: int, shape=(CANVAS, CANVAS)) -> np.ndarray:
    """Ink (H, W) float32 in [0, 1]: an MNIST digit enlarged to size px, thresholded like a pen."""
    big = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR))
    ink = np.zeros(shape, np.float32)
    ink[top : top + size, left : left + size] = big >= 128
    return ink


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Float values in [0, 1] as uint8 0-255."""
    return np.clip(np.round(values * 255), 0, 255).astype(np.uint8)


def white_on_black(ink: np.ndarray) -> np.ndarray:
    """The clean reference rendering: (H, W) uint8, ink 255 on 0."""
    return to_uint8(ink)


def paper_photo(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark ink on paper lit unevenly from one corner, with sensor noise: (H, W) uint8."""
    height, width = ink.shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    paper = 0.95 - 0.5 * (0.6 * cols / width + 0.4 * rows / height)
    photo = paper * (1 - 0.85 * ink) + rng.normal(0, 12 / 255, ink.shape)
    return to_uint8(photo)


def vignetted_photo(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark ink on paper with dark corners and a bright centre: (H, W) uint8."""
    height, width = ink.shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = np.hypot((rows - height / 2) / height, (cols - width / 2) / width)
    paper = 0.9 - 0.9 * radius**2
    return to_uint8(paper * (1 - 0.8 * ink) + rng.normal(0, 6 / 255, ink.shape))


def shifted_similarity(image: np.ndarray, reference: np.ndarray) -> float:
    """Best correlation over 1-px shifts, since centring rounds to whole pixels as MNIST did."""
    best = -1.0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = np.roll(image, (dy, dx), axis=(0, 1))
            best = max(best, float(np.corrcoef(shifted.ravel(), reference.ravel())[0, 1]))
    return best


def assert_mnist_like(result: preprocess.Preprocessed) -> None:
    """A found digit: (28, 28) float32 in [0, 1], long side ~20 px, centre of mass at the centre."""
    assert result.has_digit, result.reason
    image = result.image
    assert image.shape == (IMAGE_SIDE, IMAGE_SIDE)
    assert image.dtype == np.float32
    assert np.isfinite(image).all()
    assert image.min() >= 0
    assert image.max() == pytest.approx(1, abs=0.1)
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    long_side = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    assert abs(long_side - FIT_SIDE) <= 1
    centre_y, centre_x = centre_of_mass(image)
    assert abs(centre_y - IMAGE_SIDE / 2) <= 1
    assert abs(centre_x - IMAGE_SIDE / 2) <= 1


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of an (H, W) image's centre of mass."""
    total = image.sum()
    rows = np.arange(image.shape[0]) @ image.sum(axis=1) / total
    cols = np.arange(image.shape[1]) @ image.sum(axis=0) / total
    return float(rows), float(cols)


def rgba(rgb, alpha) -> np.ndarray:
    """An (H, W, 4) uint8 array from colours and alpha, each an image or one value to broadcast."""
    alpha, rgb = np.asarray(alpha), np.asarray(rgb)
    out = np.empty((*(alpha.shape if alpha.ndim == 2 else rgb.shape[:2]), 4), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = alpha
    return out


def palette_with_transparency(ink: np.ndarray) -> Image.Image:
    """Mode P: index 0 transparent (its colour black, like the ink), index 1 dark-blue ink."""
    indices = (ink >= 0.5).astype(np.uint8)
    image = Image.frombytes("P", (ink.shape[1], ink.shape[0]), indices.tobytes())
    image.putpalette([0, 0, 0, 20, 30, 160])
    image.info["transparency"] = 0
    return image


def cmyk(ink: np.ndarray) -> Image.Image:
    """Mode CMYK: black (K) ink on white paper."""
    channels = np.zeros((*ink.shape, 4), np.uint8)
    channels[..., 3] = to_uint8(ink)
    return Image.frombytes("CMYK", (ink.shape[1], ink.shape[0]), channels.tobytes())


def sixteen_bit(ink: np.ndarray) -> Image.Image:
    """Mode I;16: dark ink on white, full 16-bit range."""
    values = np.round((1 - 0.9 * ink) * 65535).astype("<u2")
    return Image.frombytes("I;16", (ink.shape[1], ink.shape[0]), values.tobytes())


def garbage_under_transparency(ink: np.ndarray) -> np.ndarray:
    """Red ink on transparent pixels whose hidden colours are random: (H, W, 4) uint8."""
    colours = np.random.default_rng(1).integers(0, 256, (*ink.shape, 3), dtype=np.uint8)
    colours[ink >= 0.5] = (200, 20, 20)
    return rgba(colours, to_uint8(ink))


INPUT_KINDS = {
    "black ink in the alpha channel of a transparent canvas": lambda ink: rgba(0, to_uint8(ink)),
    "white ink in the alpha channel of a transparent canvas": lambda ink: rgba(255, to_uint8(ink)),
    "coloured ink over random colours hidden by transparency": garbage_under_transparency,
    "white ink on an opaque black RGBA canvas": lambda ink: rgba(to_uint8(ink)[..., None], 255),
    "white-on-black RGB": lambda ink: np.repeat(to_uint8(ink)[..., None], 3, axis=2),
    "black-on-white L image": lambda ink: Image.fromarray(to_uint8(1 - ink)),
    "dark ink on unevenly lit noisy paper": lambda ink: paper_photo(ink, np.random.default_rng(0)),
    "dark ink on vignetted paper": lambda ink: vignetted_photo(ink, np.random.default_rng(0)),
    "grey with alpha (H, W, 2) array": lambda ink: np.stack([to_uint8(ink), to_uint8(ink)], -1),
    "palette image with a transparent index": palette_with_transparency,
    "CMYK image": cmyk,
    "16-bit I;16 image": sixteen_bit,
    "32-bit I image": lambda ink: Image.fromarray(to_uint8(ink).astype(np.int32)),
    "F (float32) image": lambda ink: Image.fromarray(ink.astype(np.float32)),
    "1-bit image": lambda ink: Image.fromarray(ink >= 0.5).convert("1"),
    "uint16 array": lambda ink: np.round(ink * 60000).astype(np.uint16),
    "float array in [0, 1]": lambda ink: ink.astype(np.float64),
    "float array in [0, 255], dark on light": lambda ink: (1 - ink) * 255,
    "bool array": lambda ink: ink >= 0.5,
    "(H, W, 1) array": lambda ink: to_uint8(ink)[..., None],
}


@pytest.mark.parametrize("kind", INPUT_KINDS)
@pytest.mark.parametrize("digit", DIGITS[:3])
def test_every_input_kind_becomes_the_same_mnist_style_digit(test_images, kind, digit):
    ink = drawn(test_images[digit], size=200, top=70, left=15)
    reference = preprocess.preprocess(white_on_black(ink))
    result = preprocess.preprocess(INPUT_KINDS[kind](ink))
    assert_mnist_like(result)
    assert shifted_similarity(result.image, reference.image) >= SAME_DRAWING


@pytest.mark.parametrize("digit", DIGITS)
def test_a_drawn_digit_comes_back_close_to_the_mnist_original(test_images, digit):
    ink = drawn(test_images[digit], size=200, top=10, left=75)
    result = preprocess.preprocess(rgba(0, to_uint8(ink)))
    assert_mnist_like(result)
    assert shifted_similarity(result.image, test_images[digit] / 255) >= CLOSE_TO_ORIGINAL


@pytest.mark.parametrize(
    ("shape", "size", "top", "left"),
    [((CANVAS, CANVAS), 60, 200, 200), ((300, 480), 280, 10, 190), ((40, 40), 36, 2, 0)],
    ids=["small digit in a corner", "wide landscape image", "small 40 px image"],
)
def test_position_and_image_size_do_not_matter(test_images, shape, size, top, left):
    # Small drawings are thresholded at low resolution, so they are compared less strictly.
    reference = preprocess.preprocess(white_on_black(drawn(test_images[0], 200, 40, 40)))
    result = preprocess.preprocess(white_on_black(drawn(test_images[0], size, top, left, shape)))
    assert_mnist_like(result)
    assert shifted_similarity(result.image, reference.image) >= CLOSE_TO_ORIGINAL


def test_mnist_digits_pass_through_nearly_unchanged(test_images):
    similarities = [
        shifted_similarity(preprocess.preprocess(digit).image, digit / 255)
        for digit in test_images[:100]
    ]
    assert min(similarities) >= 0.9
    assert np.median(similarities) >= 0.99


def test_the_input_is_left_untouched(test_images):
    canvas = rgba(0, to_uint8(drawn(test_images[0], 200, 40, 40)))
    before = canvas.copy()
    image = Image.fromarray(canvas)
    preprocess.preprocess(canvas)
    preprocess.preprocess(image)
    np.testing.assert_array_equal(canvas, before)
    np.testing.assert_array_equal(np.asarray(image), before)


def test_specks_far_from_the_digit_do_not_change_the_crop(test_images):
    ink = drawn(test_images[1], size=200, top=40, left=40)
    clean = preprocess.preprocess(white_on_black(ink))
    for row, col in [(5, 5), (5, 270), (270, 10), (150, 272), (270, 270)]:
        ink[row : row + 3, col : col + 3] = 1
    specked = preprocess.preprocess(white_on_black(ink))
    assert specked.stages["cropped"].shape == clean.stages["cropped"].shape
    np.testing.assert_array_equal(specked.image, clean.image)


def test_a_digit_whose_strokes_are_apart_is_cropped_whole(test_images):
    ink = drawn(test_images[1], size=200, top=40, left=40)
    ink[30:36, 100:180] = 1  # a separate bar above the 2, like a detached 5's flag
    result = preprocess.preprocess(white_on_black(ink))
    assert result.stages["cropped"].shape[0] >= 170


def test_a_narrow_digits_far_flag_is_cropped_with_it():
    # A 5 whose flag was drawn apart, further to the right than the body is wide.
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(image)
    draw.line([(60, 70), (70, 180), (60, 250), (20, 255)], fill=255, width=8, joint="curve")
    draw.line([(150, 60), (260, 30)], fill=255, width=8)
    result = preprocess.preprocess(np.asarray(image))
    assert result.stages["cropped"].shape[1] >= 230


def test_a_digit_cut_by_the_edge_is_still_found(test_images):
    ink = drawn(test_images[0], size=200, top=40, left=40)
    first_column = np.flatnonzero(ink.any(axis=0))[0]
    cut = ink[:, first_column + 5 :]
    assert_mnist_like(preprocess.preprocess(rgba(0, to_uint8(cut))))


@pytest.mark.parametrize("format_", ["GIF", "WEBP", "PNG"])
def test_the_first_frame_of_an_animation_is_used(test_images, format_):
    first = white_on_black(drawn(test_images[0], 200, 40, 40))
    second = white_on_black(drawn(test_images[1], 200, 40, 40))
    buffer = io.BytesIO()
    Image.fromarray(first).save(
        buffer, format_, save_all=True, append_images=[Image.fromarray(second)], duration=100
    )
    image = load_image(buffer.getvalue())
    assert getattr(image, "n_frames", 1) == 1
    result = preprocess.preprocess(image)
    assert_mnist_like(result)
    assert shifted_similarity(result.image, preprocess.preprocess(first).image) >= SAME_DRAWING


def exif_rotated_jpeg(upright: np.ndarray) -> bytes:
    """JPEG bytes stored on its side with an EXIF Orientation tag (6) that turns it upright."""
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was rotated: display after turning 90 degrees clockwise
    buffer = io.BytesIO()
    sideways = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    sideways.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize("opener", [load_image, lambda data: Image.open(io.BytesIO(data))])
def test_an_exif_rotated_photo_is_turned_upright(test_images, opener):
    upright = to_uint8(1 - drawn(test_images[0], 200, 20, 60, shape=(CANVAS, 360)))
    reference = preprocess.preprocess(upright)
    image = opener(exif_rotated_jpeg(upright))
    result = preprocess.preprocess(image)
    assert_mnist_like(result)
    assert shifted_similarity(result.image, reference.image) >= SAME_DRAWING


def test_a_large_photo_is_reduced_and_still_read(test_images):
    ink = drawn(test_images[2], 1800, 500, 1400, shape=(3000, 4000))
    buffer = io.BytesIO()
    Image.fromarray(paper_photo(ink, np.random.default_rng(2))).save(buffer, "JPEG", quality=85)
    result = preprocess.preprocess(load_image(buffer.getvalue()))
    reference = preprocess.preprocess(white_on_black(drawn(test_images[2], 200, 40, 40)))
    assert_mnist_like(result)
    assert shifted_similarity(result.image, reference.image) >= SAME_DRAWING


def specks(count: int, rng: np.random.Generator) -> np.ndarray:
    """A 280x280 white-on-black image with `count` 3x3 specks at random places."""
    image = np.zeros((CANVAS, CANVAS), np.uint8)
    for row, col in rng.integers(0, CANVAS - 3, (count, 2)):
        image[row : row + 3, col : col + 3] = 255
    return image


NOT_A_DIGIT = {
    "a fully transparent canvas": np.zeros((CANVAS, CANVAS, 4), np.uint8),
    "an opaque black canvas": rgba(0, np.full((CANVAS, CANVAS), 255)),
    "a white page": np.full((CANVAS, CANVAS), 255, np.uint8),
    "a uniform colour": np.full((120, 90, 3), (120, 200, 40), np.uint8),
    "a uniform float image": np.full((50, 50), 0.3),
    "a few specks": specks(4, np.random.default_rng(0)),
    "a few specks of alpha ink": rgba(0, specks(6, np.random.default_rng(1))),
    "pure noise": np.random.default_rng(0).integers(0, 256, (CANVAS, CANVAS), dtype=np.uint8),
    "gaussian noise on grey": to_uint8(0.5 + np.random.default_rng(0).normal(0, 0.1, (200, 200))),
    "blank paper lit unevenly, with noise": paper_photo(
        np.zeros((134, 169), np.float32), np.random.default_rng(3)
    ),
    "blank vignetted paper": vignetted_photo(
        np.zeros((134, 169), np.float32), np.random.default_rng(4)
    ),
    "a 1x1 image": np.ones((1, 1), np.uint8),
    "an empty array": np.zeros((0, 5), np.uint8),
}


@pytest.mark.parametrize("kind", NOT_A_DIGIT)
def test_blank_or_nearly_blank_images_give_no_digit(kind):
    result = preprocess.preprocess(NOT_A_DIGIT[kind])
    assert not result.has_digit
    assert result.image is None
    assert result.reason.endswith(".")


def test_strokes_too_faint_to_see_give_no_digit(test_images):
    ink = drawn(test_images[0], 200, 40, 40)
    result = preprocess.preprocess(to_uint8(0.98 - 0.04 * ink))
    assert not result.has_digit
    assert "faint" in result.reason


@pytest.mark.parametrize("digit", DIGITS)
def test_red_ink_on_blue_paper_is_read_although_its_grey_levels_are_close(test_images, digit):
    # Luminance 81 against 70: as plain grey the strokes were refused as too faint.
    ink = drawn(test_images[digit], 200, 40, 40)[..., None]
    red, blue = np.array([200, 30, 30]), np.array([40, 60, 200])
    photo = to_uint8((ink * red + (1 - ink) * blue) / 255)
    result = preprocess.preprocess(photo)
    reference = preprocess.preprocess(white_on_black(ink[..., 0])).image
    assert_mnist_like(result)
    assert shifted_similarity(result.image, reference) >= SAME_DRAWING


def photo_of(ink: np.ndarray, contrast: float, seed: int, impulses: float = 0.0) -> np.ndarray:
    """Dark ink on grey paper (H, W) uint8 at `contrast` of full scale, with a little sensor
    noise and, if asked, that share of salt-and-pepper pixels."""
    rng = np.random.default_rng(seed)
    photo = 200 - contrast * 255 * ink + rng.normal(0, 1.5, ink.shape)
    hit = rng.random(ink.shape)
    photo[hit < impulses / 2] = 0
    photo[(hit >= impulses / 2) & (hit < impulses)] = 255
    return np.clip(photo, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("digit", DIGITS)
def test_a_faint_but_clean_digit_at_10_percent_contrast_is_read(test_images, digit):
    ink = drawn(test_images[digit], 200, 40, 40)
    result = preprocess.preprocess(photo_of(ink, 0.10, seed=digit))
    assert_mnist_like(result)
    assert shifted_similarity(result.image, preprocess.preprocess(white_on_black(ink)).image) >= (
        SAME_DRAWING
    )


def test_a_digit_at_4_percent_contrast_is_still_too_faint(test_images):
    result = preprocess.preprocess(photo_of(drawn(test_images[0], 200, 40, 40), 0.04, seed=0))
    assert not result.has_digit
    assert "faint" in result.reason


@pytest.mark.parametrize("digit", DIGITS)
def test_salt_and_pepper_noise_is_removed_before_the_ink_is_found(test_images, digit):
    ink = drawn(test_images[digit], 200, 40, 40)
    result = preprocess.preprocess(photo_of(ink, 0.6, seed=digit, impulses=0.05))
    assert "impulse noise removed" in result.stages, "the stage gallery shows the step"
    assert_mnist_like(result)
    assert shifted_similarity(result.image, preprocess.preprocess(white_on_black(ink)).image) >= (
        SAME_DRAWING
    )


def test_a_clean_photo_or_drawing_skips_the_impulse_noise_step(test_images):
    ink = drawn(test_images[1], 200, 40, 40)
    for clean in (photo_of(ink, 0.6, seed=1), white_on_black(ink)):
        assert "impulse noise removed" not in preprocess.preprocess(clean).stages


def test_a_thin_pen_photo_of_a_1_is_read_as_a_digit():
    # A 1 is so little ink (under 1% of this photo) that the strokes must not be mistaken for
    # noise in the vignetting the lighting correction leaves behind.
    height, width = 134, 169
    pen = Image.new("L", (width, height), 0)
    ImageDraw.Draw(pen).line([(88, 40), (80, 100)], fill=255, width=3)
    ink = np.asarray(pen.filter(ImageFilter.GaussianBlur(0.7)), np.float32) / 255
    for seed in range(3):
        result = preprocess.preprocess(vignetted_photo(ink, np.random.default_rng(seed)))
        assert_mnist_like(result)


def test_a_tiny_scribble_gives_no_digit(test_images):
    result = preprocess.preprocess(white_on_black(drawn(test_images[0], 16, 100, 100)))
    assert not result.has_digit
    assert "too small" in result.reason


def pen_drawing(digit: str, pen: int, size: int = 200) -> np.ndarray:
    """An 8, 0 or 7 drawn size px tall with a round pen `pen` px wide: (280, 280) uint8."""
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(image)
    offset = (CANVAS - size) / 2

    def at(x: float, y: float) -> tuple[float, float]:
        return offset + x * size, offset + y * size

    if digit == "8":
        draw.ellipse([*at(0.25, 0.0), *at(0.75, 0.48)], outline=255, width=pen)
        draw.ellipse([*at(0.2, 0.44), *at(0.8, 1.0)], outline=255, width=pen)
    elif digit == "0":
        draw.ellipse([*at(0.2, 0.0), *at(0.8, 1.0)], outline=255, width=pen)
    else:
        draw.line([at(0.2, 0.0), at(0.8, 0.0), at(0.4, 1.0)], fill=255, width=pen, joint="curve")
    return np.asarray(image)


# A pen as wide relative to a 200 px digit as MNIST's typical stroke.
MNIST_PEN = round(MNIST_STROKE_WIDTH / STROKE_SIDE * 200)


@pytest.mark.parametrize("digit", ["8", "0", "7"])
@pytest.mark.parametrize("pen", [4, 40], ids=["thin pen", "thick pen"])
def test_thin_and_thick_pens_come_out_with_mnist_like_strokes(digit, pen):
    result = preprocess.preprocess(pen_drawing(digit, pen))
    typical = preprocess.preprocess(pen_drawing(digit, MNIST_PEN))
    assert_mnist_like(result)
    evened = preprocess._stroke_width(result.stages["stroke width evened"])
    assert evened == pytest.approx(MNIST_STROKE_WIDTH, rel=0.25)
    # Unevened, the thin pen's ink is a fifth of the typical pen's and the thick one's twice it.
    assert result.image.sum() == pytest.approx(typical.image.sum(), rel=0.3)


def test_a_thick_digit_is_thinned_but_never_loses_a_thin_stroke():
    def crossed_seven(bar: int) -> np.ndarray:
        image = Image.new("L", (CANVAS, CANVAS), 0)
        draw = ImageDraw.Draw(image)
        draw.line([(50, 50), (230, 50), (130, 250)], fill=255, width=60, joint="curve")
        if bar:
            draw.line([(30, 160), (220, 160)], fill=255, width=bar)
        return np.asarray(image)

    plain = preprocess.preprocess(crossed_seven(0))
    assert preprocess._stroke_width(plain.stages["stroke width evened"]) <= 1.3 * MNIST_STROKE_WIDTH
    crossed = preprocess.preprocess(crossed_seven(6))
    # The bar is the only long run of ink in the lower half.
    assert (crossed.image[IMAGE_SIDE // 2 :] > 0.5).sum(axis=1).max() >= 10


def test_faint_thin_strokes_come_out_at_full_intensity():
    # MNIST's strokes all peak at full intensity, however faint or thin the pen was.
    grey_ink = np.round(0.3 * pen_drawing("7", pen=4)).astype(np.uint8)
    result = preprocess.preprocess(grey_ink)
    assert_mnist_like(result)
    assert result.image.max() == 1
    assert np.percentile(result.image[result.image > 0], 90) >= 0.9


def test_the_vector_is_the_flattened_image_for_the_network(test_images):
    result = preprocess.preprocess(test_images[0])
    assert result.vector.shape == (N_PIXELS,)
    assert result.vector.dtype == np.float32
    np.testing.assert_array_equal(result.vector, result.image.ravel())


def test_asking_a_blank_result_for_its_vector_is_an_error():
    with pytest.raises(ValueError, match="no digit"):
        _ = preprocess.preprocess(np.zeros((28, 28), np.uint8)).vector


def test_stages_are_two_dimensional_images_in_pipeline_order(test_images):
    result = preprocess.preprocess(rgba(0, white_on_black(drawn(test_images[0], 200, 40, 40))))
    optional = "impulse noise removed"  # only for a noisy image
    assert tuple(result.stages) == tuple(s for s in preprocess.STAGE_NAMES if s != optional)
    for image in result.stages.values():
        assert image.ndim == 2
        assert image.dtype in (np.uint8, np.float32)
    assert result.stages["fitted 20x20"].shape[0] == FIT_SIDE
    np.testing.assert_array_equal(result.stages["centred 28x28"], result.image)


def test_a_blank_result_still_shows_the_stages_it_reached():
    result = preprocess.preprocess(np.full((CANVAS, CANVAS), 255, np.uint8))
    assert list(result.stages)[:2] == ["grayscale", "ink (polarity fixed)"]


def test_unsupported_array_shapes_and_types_are_refused_plainly():
    with pytest.raises(ValueError, match="image array"):
        preprocess.preprocess(np.zeros((4, 4, 5)))
    with pytest.raises(TypeError, match="numeric"):
        preprocess.preprocess(np.zeros((4, 4), complex))
    with pytest.raises(TypeError, match="PIL image or a NumPy array"):
        preprocess.preprocess([[0, 1], [1, 0]])


def test_naive_preprocess_only_resizes(test_images):
    dark_on_light = to_uint8(1 - drawn(test_images[0], 200, 40, 40))
    naive = naive_preprocess(dark_on_light)
    assert naive.shape == (IMAGE_SIDE, IMAGE_SIDE)
    assert naive.dtype == np.float32
    assert naive.min() >= 0
    assert naive.max() <= 1
    assert naive[0, 0] == 1  # the white paper stays white: no polarity fix
    # A canvas whose ink lives only in the alpha channel looks empty to it.
    assert naive_preprocess(rgba(0, to_uint8(drawn(test_images[0], 200, 40, 40)))).max() == 0


@st.composite
def any_array(draw) -> np.ndarray:
    """Arrays of any supported shape and dtype, with noise, flat, blob or extreme contents."""
    height = draw(st.integers(1, 400))
    width = draw(st.integers(1, 400))
    channels = draw(st.sampled_from([None, 1, 2, 3, 4]))
    shape = (height, width) if channels is None else (height, width, channels)
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, bool]))
    content = draw(st.sampled_from(["noise", "flat", "blobs", "extremes"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype is bool:
        return rng.random(shape) < draw(st.floats(0, 1))
    scale = {np.uint8: 255, np.uint16: 65535, np.int32: 2**31 - 1}.get(
        dtype, draw(st.sampled_from([1.0, 255.0, 1e6, 1e300]))
    )
    low = -scale if dtype in (np.int32, np.float32, np.float64) and draw(st.booleans()) else 0
    if content == "noise":
        values = rng.uniform(low, scale, shape)
    elif content == "flat":
        values = np.full(shape, rng.uniform(low, scale))
    elif content == "blobs":
        values = np.full(shape, rng.uniform(low, scale))
        for _ in range(rng.integers(1, 6)):
            top, left = rng.integers(0, height), rng.integers(0, width)
            values[top : top + rng.integers(1, 100), left : left + rng.integers(1, 100)] = (
                rng.uniform(low, scale)
            )
    else:
        specials = [low, scale, 0]
        if np.issubdtype(dtype, np.floating):
            specials += [np.nan, np.inf, -np.inf]
        values = rng.choice(specials, shape)
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(dtype)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_array())
def test_any_array_gives_a_valid_digit_or_no_digit_never_a_crash(array):
    result = preprocess.preprocess(array)
    if result.has_digit:
        assert result.image.shape == (IMAGE_SIDE, IMAGE_SIDE)
        assert result.image.dtype == np.float32
        assert np.isfinite(result.image).all()
        assert result.image.min() >= 0
        assert result.image.max() <= 1
    else:
        assert result.image is None
        assert result.reason
    for image in result.stages.values():
        assert image.ndim == 2


def assert_one_sentence(message: str) -> None:
    """A user-facing message: one line ending in a full stop."""
    assert "\n" not in message
    assert message.endswith(".")
    assert message[0].isupper() or message[0] == "/"


def test_load_image_opens_paths_bytes_and_file_objects(tmp_path, test_images):
    path = tmp_path / "digit.png"
    Image.fromarray(test_images[0]).save(path)
    data = path.read_bytes()
    for source in (path, str(path), data, io.BytesIO(data)):
        image = load_image(source)
        assert image.size == (IMAGE_SIDE, IMAGE_SIDE)
        np.testing.assert_array_equal(np.asarray(image), test_images[0])


def test_load_image_turns_exif_rotated_photos_upright():
    upright = np.zeros((100, 60), np.uint8)
    image = load_image(exif_rotated_jpeg(upright))
    assert image.size == (60, 100)


@pytest.mark.parametrize(
    ("make_source", "expected"),
    [
        (lambda tmp: tmp / "missing.png", "no file"),
        (lambda tmp: tmp, "folder"),
        (lambda tmp: b"hello, this is not an image", "not an image"),
        (lambda tmp: b"", "not an image"),
        (lambda tmp: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (lambda tmp: b'<svg width="10" height="10"><circle r="4"/></svg>', "SVG"),
    ],
    ids=["missing file", "directory", "text", "empty file", "SVG with XML header", "bare SVG"],
)
def test_load_image_refuses_what_is_not_an_image_in_one_sentence(tmp_path, make_source, expected):
    with pytest.raises(ImageError, match=expected) as caught:
        load_image(make_source(tmp_path))
    assert_one_sentence(str(caught.value))


def test_load_image_refuses_a_truncated_png():
    noise = np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8)
    data = png_bytes(Image.fromarray(noise))
    with pytest.raises(ImageError, match="damaged or incomplete") as caught:
        load_image(data[: len(data) * 2 // 3])
    assert_one_sentence(str(caught.value))


@pytest.mark.parametrize(
    "size",
    [(100_000, 100_000), (8_000, 8_000)],
    ids=["beyond Pillow's own bomb limit", "beyond this module's pixel limit"],
)
def test_load_image_refuses_decompression_bombs_without_decoding_them(size):
    bomb = with_claimed_size(png_bytes(Image.new("1", (1, 1))), *size)
    # Decoding would fail as truncated, so "too large" shows the pixels were never decoded.
    with pytest.raises(ImageError, match="too large") as caught:
        load_image(bomb)
    assert_one_sentence(str(caught.value))


def test_load_image_refuses_a_cheap_but_huge_1_bit_png():
    huge = Image.new("1", (20_000, 20_000))
    with pytest.raises(ImageError, match="too large"):
        load_image(png_bytes(huge))


def test_load_image_refuses_an_oversized_file(monkeypatch):
    monkeypatch.setattr(preprocess, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ImageError, match="file is too large") as caught:
        load_image(io.BytesIO(b"\0" * 2000))
    assert_one_sentence(str(caught.value))


def test_with_a_trained_model_preprocessing_reads_canvas_drawings_better_than_resizing(
    test_images,
):
    model_loader = pytest.importorskip("model_loader")
    if not model_loader.MODEL_PATH.exists():
        pytest.skip("no trained model_params.pkl")
    classifier = model_loader.load_classifier()
    labels = read_idx(find_file(DATA_DIR, "t10k-labels-idx1-ubyte"))
    rng = np.random.default_rng(0)
    smart = naive = 0
    count = 100
    for index in range(count):
        size = int(rng.integers(120, 260))
        top, left = rng.integers(0, CANVAS - size + 1, 2)
        canvas = rgba(0, to_uint8(drawn(test_images[index], size, top, left)))
        result = preprocess.preprocess(canvas)
        if result.has_digit:
            smart += classifier.predict_proba(result.vector).argmax() == labels[index]
        naive += (
            classifier.predict_proba(naive_preprocess(canvas).ravel()).argmax() == labels[index]
        )
    assert smart >= 0.9 * count
    assert smart > naive


@pytest.mark.parametrize("extension", FILE_EXTENSIONS)
def test_every_format_the_upload_box_offers_is_read(extension, test_images):
    digit = Image.fromarray(255 - test_images[0]).resize((112, 112)).convert("RGB")
    pillow_format = {"jpg": "JPEG"}.get(extension, extension.upper())
    data = io.BytesIO()
    digit.save(data, format=pillow_format)
    assert preprocess.preprocess(load_image(data.getvalue())).has_digit


# ---- hostile files: each gets one plain sentence, or is read as the harmless image it is ----

HOSTILE = hostile_images()


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_image_file_gets_one_sentence_or_is_read_harmlessly(name):
    data, phrase = HOSTILE[name]
    try:
        result = preprocess.preprocess(load_image(data))
    except ImageError as exc:
        message = str(exc)
    else:
        message = result.reason
    assert phrase in message
    assert_one_sentence(message)


def test_a_corrupt_exif_block_is_ignored_without_a_warning():
    data, _ = HOSTILE["JPEG with a broken EXIF block"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = load_image(data)
        preprocess.preprocess(image)
    assert image.size == (32, 32)


def test_formats_outside_the_list_are_never_parsed(test_images):
    for format_ in ("TIFF", "PPM", "TGA", "ICO"):
        buffer = io.BytesIO()
        Image.fromarray(test_images[0]).save(buffer, format_)
        with pytest.raises(ImageError, match="not an image that can be read"):
            load_image(buffer.getvalue())


# What Pillow writes in each offered format, by mode.
MODES_BY_FORMAT = {
    "PNG": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"),
    "JPEG": ("L", "RGB", "CMYK"),
    "WEBP": ("L", "RGB", "RGBA"),
    "BMP": ("1", "L", "P", "RGB"),
    "GIF": ("L", "P"),
}


@st.composite
def any_image_file(draw):
    """Bytes of a random valid image: any format offered, any mode it holds, any size."""
    format_ = draw(st.sampled_from(sorted(MODES_BY_FORMAT)))
    mode = draw(st.sampled_from(MODES_BY_FORMAT[format_]))
    width, height = draw(st.integers(1, 700)), draw(st.integers(1, 700))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    if draw(st.booleans()):  # a flat page with a few strokes, not only noise
        pixels[:] = 255
        for _ in range(rng.integers(1, 5)):
            top, left = rng.integers(0, height), rng.integers(0, width)
            pixels[top : top + rng.integers(1, 60), left : left + rng.integers(1, 60), :3] = 0
    image = Image.fromarray(pixels, "RGBA").convert("RGB" if mode == "CMYK" else "RGBA")
    image = image.convert(mode) if mode != "I;16" else image.convert("L").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format_)
    return buffer.getvalue()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_image_file())
def test_any_valid_image_file_is_read_as_a_digit_or_no_digit(data):
    result = preprocess.preprocess(load_image(data))
    assert result.has_digit or result.reason


@settings(max_examples=200, deadline=2000)
@given(st.binary(max_size=4096))
def test_random_bytes_are_refused_in_one_sentence_and_nothing_else(data):
    try:
        preprocess.preprocess(load_image(data))
    except ImageError as exc:
        assert_one_sentence(str(exc))


@st.composite
def damaged_image_file(draw):
    """A small valid image file with some bytes changed, cut off or inserted."""
    format_ = draw(st.sampled_from(sorted(MODES_BY_FORMAT)))
    noise = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).convert("RGB").save(buffer, format_)
    data = bytearray(buffer.getvalue())
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        if not data:
            break
    return bytes(data)


@settings(max_examples=300, deadline=2000)
@given(damaged_image_file())
def test_a_damaged_image_file_is_read_or_refused_in_one_sentence_never_a_crash(data):
    try:
        preprocess.preprocess(load_image(data))
    except ImageError as exc:
        assert_one_sentence(str(exc))
