"""Specification of augment.py: random warps and stroke thickness for training digits."""

import itertools
from dataclasses import replace

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from digits.data.augment import (
    ELASTIC_GRID,
    WARP_CHUNK,
    AugmentConfig,
    augment_batch,
    elastic_basis,
    random_affine_matrices,
    random_displacements,
    random_thickness,
    stroke_thickness,
    warp_affine,
)
from digits.data.mnist import to_input

SIDE = 28
CENTRE = (SIDE - 1) / 2
STILL = AugmentConfig(
    max_rotation_deg=0, scale_range=(1, 1), max_shear_deg=0, max_shift_px=0, thickness_prob=0
)


@pytest.fixture(scope="module")
def digits(mnist):
    """300 MNIST test digits (300, 28, 28) uint8: more than WARP_CHUNK, and not a multiple of it."""
    assert 300 % WARP_CHUNK
    return mnist.test_images[:300]


def forward_map(angle_deg=0.0, scale=1.0, shift=(0.0, 0.0)) -> np.ndarray:
    """The forward map (1, 2, 3) that rotates counter-clockwise on screen and scales about the
    image centre, then shifts."""
    a = np.deg2rad(angle_deg)
    linear = scale * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    matrix = np.empty((1, 2, 3), np.float32)
    matrix[0, :, :2] = linear
    matrix[0, :, 2] = CENTRE + np.asarray(shift) - linear @ [CENTRE, CENTRE]
    return matrix


def reference_warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Slow per-pixel bilinear warp of a uint8 image (28, 28) by a forward map (2, 3), float64."""
    inverse = np.linalg.inv(matrix[:, :2].astype(np.float64))
    source = image.astype(np.float64) / 255

    def pixel(y, x):
        return source[y, x] if 0 <= y < SIDE and 0 <= x < SIDE else 0.0

    out = np.zeros((SIDE, SIDE))
    for i in range(SIDE):
        for j in range(SIDE):
            x, y = inverse @ (np.array([j, i]) - matrix[:, 2])
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            fx, fy = x - x0, y - y0
            top = (1 - fx) * pixel(y0, x0) + fx * pixel(y0, x0 + 1)
            bottom = (1 - fx) * pixel(y0 + 1, x0) + fx * pixel(y0 + 1, x0 + 1)
            out[i, j] = (1 - fy) * top + fy * bottom
    return out


def cross_filter(images: np.ndarray, extreme) -> np.ndarray:
    """np.max or np.min of uint8 images (n, h, w) over the 3x3 cross, outside counted as 0."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1))).astype(int)
    shifts = [padded[:, 1:-1, 1:-1], padded[:, :-2, 1:-1], padded[:, 2:, 1:-1]]
    shifts += [padded[:, 1:-1, :-2], padded[:, 1:-1, 2:]]
    return extreme(shifts, axis=0)


def test_output_is_float32_network_input_in_unit_range(digits):
    out = augment_batch(digits, np.random.default_rng(0))
    assert out.dtype == np.float32
    assert out.shape == (len(digits), SIDE * SIDE)
    assert out.min() >= 0
    assert out.max() <= 1


def test_identity_config_returns_the_plain_input(digits):
    out = augment_batch(digits, np.random.default_rng(0), STILL)
    np.testing.assert_allclose(out, digits.reshape(len(digits), -1) / 255, rtol=0, atol=1e-6)


def test_writes_into_out_when_given(digits):
    out = np.full((len(digits), SIDE * SIDE), -1, np.float32)
    returned = augment_batch(digits, np.random.default_rng(0), out=out)
    assert returned is out
    assert out.min() >= 0


def test_same_seed_gives_the_same_output_and_another_seed_a_different_one(digits):
    first = augment_batch(digits, np.random.default_rng(7))
    again = augment_batch(digits, np.random.default_rng(7))
    other = augment_batch(digits, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_every_sample_gets_its_own_transform(digits):
    copies = np.repeat(digits[:1], 8, axis=0)
    out = augment_batch(copies, np.random.default_rng(0))
    assert len({row.tobytes() for row in out}) == 8


def test_empty_batch_gives_empty_output():
    out = augment_batch(np.zeros((0, SIDE, SIDE), np.uint8), np.random.default_rng(0))
    assert out.shape == (0, SIDE * SIDE)


@pytest.mark.parametrize(("dx", "dy"), [(3, 0), (0, -2), (-4, 5), (2, 2)])
def test_integer_shift_moves_the_digit_by_that_many_pixels(digits, dx, dy):
    out = warp_affine(digits, np.repeat(forward_map(shift=(dx, dy)), len(digits), axis=0))
    expected = np.zeros(digits.shape)
    rows, cols = slice(max(dy, 0), SIDE + min(dy, 0)), slice(max(dx, 0), SIDE + min(dx, 0))
    source_rows = slice(max(-dy, 0), SIDE + min(-dy, 0))
    source_cols = slice(max(-dx, 0), SIDE + min(-dx, 0))
    expected[:, rows, cols] = digits[:, source_rows, source_cols] / 255
    np.testing.assert_allclose(out.reshape(digits.shape), expected, rtol=0, atol=1e-6)


def test_quarter_turn_is_exactly_rot90(digits):
    out = warp_affine(digits, np.repeat(forward_map(angle_deg=90), len(digits), axis=0))
    expected = np.rot90(digits, axes=(1, 2)) / 255
    np.testing.assert_allclose(out.reshape(digits.shape), expected, rtol=0, atol=1e-6)


def test_sixteenth_pixel_shifts_interpolate_exactly(digits):
    # Positions on the 1/16-pixel grid are exact, so this checks the fixed-point bilinear
    # arithmetic for every pair of fractions against the float formula.
    fractions = np.arange(16) / 16
    fx, fy = (f.ravel() for f in np.meshgrid(fractions, fractions))
    images = digits[: len(fx)]
    matrices = np.concatenate([forward_map(shift=(-x, -y)) for x, y in zip(fx, fy, strict=True)])
    out = warp_affine(images, matrices).reshape(images.shape)
    source = np.pad(images / 255, ((0, 0), (0, 1), (0, 1)))
    x, y = fx[:, None, None], fy[:, None, None]
    top = (1 - x) * source[:, :-1, :-1] + x * source[:, :-1, 1:]
    bottom = (1 - x) * source[:, 1:, :-1] + x * source[:, 1:, 1:]
    np.testing.assert_allclose(out, (1 - y) * top + y * bottom, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("angle", "scale"), [(30.0, 1.0), (-11.0, 0.9), (7.0, 1.15)])
def test_rotation_matches_a_per_pixel_bilinear_reference(digits, angle, scale):
    matrix = forward_map(angle_deg=angle, scale=scale, shift=(0.7, -1.3))
    out = warp_affine(digits[:2], np.repeat(matrix, 2, axis=0)).reshape(2, SIDE, SIDE)
    for image, warped in zip(digits[:2], out, strict=True):
        error = np.abs(warped - reference_warp(image, matrix[0]))
        # Sample positions are rounded to within 1/16 px, and a bilinear image changes by at
        # most 1 per pixel along each axis.
        assert error.max() <= 2 / 16
        assert error.mean() < 0.005


def test_warp_handles_any_image_size():
    images = np.random.default_rng(0).integers(0, 256, (5, 20, 31), dtype=np.uint8)
    matrices = np.repeat(np.eye(2, 3, dtype=np.float32)[None], 5, axis=0)
    out = warp_affine(images, matrices)
    np.testing.assert_allclose(out, images.reshape(5, -1) / 255, rtol=0, atol=1e-6)


def test_rotations_stay_within_max_rotation():
    config = replace(STILL, max_rotation_deg=10)
    turns = random_affine_matrices(1000, np.random.default_rng(0), config)
    linear = turns[:, :, :2].astype(np.float64)
    rotation_only = linear @ linear.transpose(0, 2, 1)
    np.testing.assert_allclose(rotation_only, np.broadcast_to(np.eye(2), (1000, 2, 2)), atol=1e-6)
    angles = np.rad2deg(np.arctan2(linear[:, 0, 1], linear[:, 0, 0]))
    assert np.abs(angles).max() <= 10
    assert np.abs(angles).max() > 9


def test_rotation_and_scale_keep_the_image_centre_in_place():
    config = replace(AugmentConfig(), max_shift_px=0)
    matrices = random_affine_matrices(500, np.random.default_rng(0), config)
    centre = matrices[:, :, :2] @ [CENTRE, CENTRE] + matrices[:, :, 2]
    np.testing.assert_allclose(centre, CENTRE, atol=1e-4)
    determinants = np.linalg.det(matrices[:, :, :2].astype(np.float64))
    low, high = config.scale_range
    assert determinants.min() >= low**2 - 1e-6
    assert determinants.max() <= high**2 + 1e-6


def test_shifts_stay_within_max_shift():
    config = replace(STILL, max_shift_px=2.5)
    matrices = random_affine_matrices(1000, np.random.default_rng(0), config)
    np.testing.assert_array_equal(matrices[:, :, :2], np.broadcast_to(np.eye(2), (1000, 2, 2)))
    assert np.abs(matrices[:, :, 2]).max() <= 2.5
    assert np.abs(matrices[:, :, 2]).max() > 2.4


def test_mild_warps_roughly_preserve_ink(digits):
    config = replace(AugmentConfig(), thickness_prob=0)
    out = augment_batch(digits, np.random.default_rng(0), config)
    ratio = out.sum(axis=1) / (digits.reshape(len(digits), -1).sum(axis=1) / 255)
    # Ink scales with the area, scale**2 in [0.81, 1.21]; interpolation keeps it otherwise.
    assert 0.95 < ratio.mean() < 1.05
    assert ratio.min() > 0.75
    assert ratio.max() < 1.3


def test_thickening_adds_ink_and_thinning_removes_it(digits):
    n = len(digits)
    ink = digits.reshape(n, -1).sum(axis=1, dtype=np.int64)
    thicker = stroke_thickness(digits, np.full(n, 0.5, np.float32))
    thinner = stroke_thickness(digits, np.full(n, -0.5, np.float32))
    assert (thicker.reshape(n, -1).sum(axis=1, dtype=np.int64) > ink).all()
    assert (thinner.reshape(n, -1).sum(axis=1, dtype=np.int64) < ink).all()
    assert (thicker >= digits).all()
    assert (thinner <= digits).all()


def test_zero_thickness_leaves_the_image_unchanged(digits):
    amount = np.zeros(len(digits), np.float32)
    amount[::2] = 0.5  # neighbours in the batch must not leak into the unchanged ones
    out = stroke_thickness(digits, amount)
    np.testing.assert_array_equal(out[1::2], digits[1::2])


def test_full_thickening_is_the_cross_dilation(digits):
    out = stroke_thickness(digits, np.ones(len(digits), np.float32))
    dilated = cross_filter(digits, np.max)
    # The blend keeps the change to a multiple of 8 grey levels, rounded down.
    assert (out <= dilated).all()
    assert (out > dilated - 8).all()


def test_full_thinning_is_the_cross_erosion(digits):
    out = stroke_thickness(digits, -np.ones(len(digits), np.float32))
    eroded = cross_filter(digits, np.min)
    assert (out >= eroded).all()
    assert (out < eroded + 8).all()


def test_random_thickness_picks_about_thickness_prob_of_the_samples():
    config = AugmentConfig(thickness_prob=0.3, max_thickness=0.6)
    amount = random_thickness(10_000, np.random.default_rng(0), config)
    assert 0.27 < np.count_nonzero(amount) / 10_000 < 0.33
    assert np.abs(amount).max() <= 0.6


def test_prob_zero_passes_every_sample_through_plain(digits):
    out = augment_batch(digits, np.random.default_rng(0), AugmentConfig(prob=0.0))
    np.testing.assert_array_equal(out, to_input(digits))


def test_prob_augments_about_that_share_of_the_samples(digits):
    out = augment_batch(digits, np.random.default_rng(0), AugmentConfig(prob=0.5))
    plain = np.all(out == to_input(digits), axis=1)
    assert 0.35 < plain.mean() < 0.65


def test_elastic_basis_weights_add_up_to_one_at_every_pixel():
    basis = elastic_basis((SIDE, SIDE))
    assert basis.shape == (ELASTIC_GRID**2, SIDE * SIDE)
    np.testing.assert_array_equal(basis.sum(axis=0), 1)


def test_an_image_warps_the_same_whatever_batch_it_is_in_and_however_many_threads(digits):
    # BLAS sums in an order that depends on the matrix shapes and the threads; the positions
    # must not, or a training run would depend on how its batches were split between processes.
    config = AugmentConfig(elastic_px=0.7)
    rng = np.random.default_rng(3)
    matrices = random_affine_matrices(len(digits), rng, config)
    offsets = random_displacements(len(digits), rng, config)
    whole = warp_affine(digits, matrices, displacements=offsets)
    bounds = [0, 1, 8, 9, 100, 164, 300]
    pieces = [
        warp_affine(digits[a:b], matrices[a:b], displacements=offsets[a:b])
        for a, b in itertools.pairwise(bounds)
    ]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    with threadpool_limits(1, "blas"):
        np.testing.assert_array_equal(warp_affine(digits, matrices, displacements=offsets), whole)


def test_the_same_offset_at_every_grid_point_is_a_shift(digits):
    # The weights add up to one, so the field is that offset everywhere: output pixel p
    # samples p + offset, i.e. the digit moves by minus the offset.
    offsets = np.zeros((len(digits), 2, ELASTIC_GRID**2), np.float32)
    offsets[:, 0], offsets[:, 1] = 2, -3
    identity = np.repeat(forward_map(), len(digits), axis=0)
    moved = warp_affine(digits, identity, displacements=offsets)
    shifted = warp_affine(digits, np.repeat(forward_map(shift=(-2, 3)), len(digits), axis=0))
    np.testing.assert_array_equal(moved, shifted)


def test_uneven_offsets_bend_the_digit_and_keep_most_of_its_ink(digits):
    config = replace(STILL, elastic_px=1.5)
    out = augment_batch(digits, np.random.default_rng(0), config)
    assert np.all(np.any(out != to_input(digits), axis=1))
    ink_ratio = out.sum(axis=1) / to_input(digits).sum(axis=1)
    assert 0.8 < np.median(ink_ratio) < 1.2


def test_no_elastic_offsets_are_drawn_unless_asked_for():
    assert random_displacements(5, np.random.default_rng(0), AugmentConfig()) is None
    offsets = random_displacements(4000, np.random.default_rng(0), AugmentConfig(elastic_px=1.5))
    assert offsets.shape == (4000, 2, ELASTIC_GRID**2)
    assert abs(offsets.std() - 1.5) < 0.02
