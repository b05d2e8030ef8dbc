"""Training-time augmentation of uint8 digits: random affine warp and stroke thickness.

Real drawings from the app are off-centre, rotated, slanted, bigger or smaller and drawn with
a thicker or thinner brush than MNIST; `augment_batch` shows the network such variations.

Speed decides the design (an augmented epoch may cost at most twice a plain one):
- Images go through in chunks of CHUNK so every intermediate stays in the L2 cache.
- Source coordinates come from one float32 matmul per chunk, (2n, 3) @ (3, h*w), and are
  rounded to 4-bit fixed point by adding 2**23, which leaves the integer in the low mantissa
  bits: no float-to-int conversion pass.
- Each source pixel's 2x2 neighbourhood is packed into one uint32 of a zero-bordered table, so
  a single np.take fetches all four bilinear taps; the interpolation then runs as integer SIMD
  within a register (SWAR) on two 16-bit lanes, ending in one multiply that mixes the lanes.
- The border is wide enough that no bounded transform samples outside it: no clipping.
"""

from dataclasses import dataclass

import numpy as np

CHUNK = 128
FRAC_BITS = 4  # 1/16 px; the most that fits, since 255 * 2**(2 * FRAC_BITS) must stay < 2**16
_ONE = 1 << FRAC_BITS
_MAGIC = np.float32(2**23)  # x + 2**23 for x in [0, 2**23) is a float32 whose low bits are round(x)
_MANTISSA = (1 << 23) - 1
_BYTES = 0x00FF00FF  # the low byte of each 16-bit lane


@dataclass(frozen=True)
class AugmentConfig:
    """Bounds of the random per-sample augmentation; every parameter is drawn uniformly."""

    max_rotation_deg: float = 12.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    max_shear_deg: float = 12.0  # horizontal shear, i.e. slant
    max_shift_px: float = 2.5
    thickness_prob: float = 0.5  # chance that a sample's strokes get thicker or thinner
    max_thickness: float = 0.6  # largest blend towards the dilated or eroded image


def random_affine_matrices(
    n: int, rng: np.random.Generator, config: AugmentConfig, shape: tuple[int, int] = (28, 28)
) -> np.ndarray:
    """Random forward maps (n, 2, 3) float32 taking source pixel (x, y) to output M @ (x, y, 1)."""
    h, w = shape
    rotation = np.deg2rad(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg, n))
    scale = rng.uniform(*config.scale_range, n)
    slant = np.tan(np.deg2rad(rng.uniform(-config.max_shear_deg, config.max_shear_deg, n)))
    shift = rng.uniform(-config.max_shift_px, config.max_shift_px, (n, 2))
    cos, sin = np.cos(rotation), np.sin(rotation)
    # rotation @ shear @ scale, with y pointing down so a positive angle turns counter-clockwise
    # on screen.
    linear = np.empty((n, 2, 2))
    linear[:, 0, 0] = cos * scale
    linear[:, 0, 1] = (cos * slant + sin) * scale
    linear[:, 1, 0] = -sin * scale
    linear[:, 1, 1] = (cos - sin * slant) * scale
    # About the image centre rather than each digit's centre of mass: MNIST already puts the
    # centre of mass there (to within a pixel), and it keeps the maps independent of the pixels.
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    matrices = np.empty((n, 2, 3), np.float32)
    matrices[:, :, :2] = linear
    matrices[:, :, 2] = centre + shift - linear @ centre
    return matrices


def random_thickness(n: int, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Random stroke-thickness amounts (n,) float32 for `stroke_thickness`, 0 for most samples."""
    picked = rng.random(n) < config.thickness_prob
    amount = rng.uniform(-config.max_thickness, config.max_thickness, n)
    return np.where(picked, amount, 0.0).astype(np.float32)


def stroke_thickness(images: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Blend uint8 images (n, h, w) towards their grey dilation (amount > 0) or erosion (< 0).

    The structuring element is the 3x3 cross; amount (n,) in [-1, 1] is the blend weight, so
    1 is a full dilation, -1 a full erosion and 0 leaves the image unchanged. Returns uint8.
    """
    sign = np.where(amount < 0, -1, 1).astype(np.float32)[:, None, None]
    # Erosion is the negated dilation of the negated image, so one max-filter serves both.
    signed = images * sign
    grown = signed.copy()
    np.maximum(grown[:, 1:], signed[:, :-1], out=grown[:, 1:])
    np.maximum(grown[:, :-1], signed[:, 1:], out=grown[:, :-1])
    np.maximum(grown[:, :, 1:], signed[:, :, :-1], out=grown[:, :, 1:])
    np.maximum(grown[:, :, :-1], signed[:, :, 1:], out=grown[:, :, :-1])
    weight = amount.astype(np.float32)[:, None, None]
    # x + |a| * (sign * grown - x) with sign * |a| = a and sign * signed = x.
    blended = grown * weight
    blended += signed * (sign * (1 - np.abs(weight)))
    return np.rint(blended, out=blended).astype(np.uint8)


def _inverse_maps(matrices: np.ndarray) -> np.ndarray:
    """The inverses (n, 2, 3) float64 of forward maps (n, 2, 3): output pixel -> source pixel."""
    linear = np.linalg.inv(matrices[:, :, :2].astype(np.float64))
    inverse = np.empty((len(matrices), 2, 3))
    inverse[:, :, :2] = linear
    inverse[:, :, 2] = -(linear @ matrices[:, :, 2, None].astype(np.float64))[:, :, 0]
    return inverse


def _pack_neighbourhoods(images: np.ndarray, table: np.ndarray, margin: int) -> None:
    """Write each pixel's 2x2 neighbourhood of uint8 images (n, h, w) into table (>=n, hp, wp).

    Byte k of table[b, y, x] is the pixel at (y + k // 2, x + k % 2) of image b placed at
    (margin, margin); bytes off the image stay 0 because every chunk writes the same spots.
    """
    n, h, w = images.shape
    top, left = margin, margin
    halves = table.view("<u2").reshape(*table.shape, 2)
    # A uint16 read at byte (y, x) of a row-major uint8 image is the horizontal pair
    # (x, x + 1), so the two halves of each table entry are two strided copies.
    pairs = np.ndarray((n, h, w - 1), "<u2", images, 0, (h * w, w, 1))
    halves[:n, top : top + h, left : left + w - 1, 0] = pairs
    halves[:n, top - 1 : top - 1 + h, left : left + w - 1, 1] = pairs
    # The pairs that hang over the left and right edges of a row.
    octets = table.view(np.uint8).reshape(*table.shape, 4)
    octets[:n, top : top + h, left + w - 1, 0] = images[:, :, -1]
    octets[:n, top - 1 : top - 1 + h, left + w - 1, 2] = images[:, :, -1]
    octets[:n, top : top + h, left - 1, 1] = images[:, :, 0]
    octets[:n, top - 1 : top - 1 + h, left - 1, 3] = images[:, :, 0]


def warp_affine(
    images: np.ndarray,
    matrices: np.ndarray,
    thickness: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Warp uint8 images (n, h, w) by forward maps (n, 2, 3) into float32 (n, h*w) in [0, 1].

    Bilinear, in 1/16-pixel fixed point, with zeros outside the image. `thickness` (n,), if
    given, first applies `stroke_thickness` to the samples where it is non-zero.
    """
    n, h, w = images.shape
    hw = h * w
    if out is None:
        out = np.empty((n, hw), np.float32)
    if n == 0:
        return out
    images = np.ascontiguousarray(images, dtype=np.uint8)
    inverse = _inverse_maps(matrices)

    # The border must hold every sample position, rounded and its 2x2 neighbourhood included.
    corners = np.array([[0, 0, w - 1, w - 1], [0, h - 1, 0, h - 1], [1, 1, 1, 1]], np.float64)
    reach = inverse @ corners  # (n, 2, 4) source positions of the output's corners
    overhang = max(-reach.min(), reach[:, 0].max() - (w - 1), reach[:, 1].max() - (h - 1))
    margin = int(np.ceil(max(overhang, 0.0))) + 2
    hp, wp = h + 2 * margin, w + 2 * margin
    chunk = min(CHUNK, n)

    # coefficients @ (j, i, 1) is the source position in 1/16 px of the padded frame, with y
    # also counting the frames of the earlier images in the chunk, so it indexes the table.
    coefficients = inverse * _ONE
    coefficients[:, :, 2] += margin * _ONE
    coefficients[:, 1, 2] += (np.arange(n) % chunk) * (hp * _ONE)
    rows, cols = np.divmod(np.arange(hw), w)
    grid = np.stack([cols, rows, np.ones(hw)]).astype(np.float32)

    table = np.zeros((chunk, hp, wp), "<u4")
    table_flat = table.reshape(-1)
    position = np.empty((2 * chunk, hw), np.float32)
    index = np.empty((chunk, hw), np.int64)
    taps = np.empty((chunk, hw), "<u4")
    scratch = np.empty((chunk, h, w), np.uint8) if thickness is not None else None

    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        m = stop - start
        source = images[start:stop]
        if thickness is not None and np.any(thickness[start:stop]):
            source = scratch[:m]
            source[:] = images[start:stop]
            picked = np.flatnonzero(thickness[start:stop])
            source[picked] = stroke_thickness(source[picked], thickness[start + picked])
        _pack_neighbourhoods(source, table, margin)

        pos = position[: 2 * m]
        np.matmul(
            coefficients[start:stop].transpose(1, 0, 2).reshape(2 * m, 3).astype(np.float32),
            grid,
            out=pos,
        )
        pos += _MAGIC
        bits = pos.view(np.uint32)
        x_bits, y_bits = bits[:m], bits[m:]
        # Flat table index floor(y) * wp + floor(x), built on the 16x scaled integers.
        flat = taps[:m]
        low = index[:m].view(np.uint32)[:, :hw]  # scratch: index is written only further down
        np.bitwise_and(y_bits, _MANTISSA & ~(_ONE - 1), out=flat)
        flat *= wp
        np.bitwise_and(x_bits, _MANTISSA, out=low)
        flat += low
        flat >>= FRAC_BITS
        idx = index[:m]
        np.copyto(idx, flat)
        np.bitwise_and(bits, _ONE - 1, out=bits)  # now the fractions: fx, fy in 0..15
        fx, fy = x_bits, y_bits

        q = taps[:m]
        np.take(table_flat, idx, out=q, mode="clip")
        # q holds bytes (p00, p01, p10, p11). Split into lanes (p00, p10) and (p01, p11), then
        # lerp along x in both lanes at once: 16 * left + fx * (right - left) per row.
        work = index[:m].view(np.uint32)
        left, mix = work[:, :hw], work[:, hw:]
        np.bitwise_and(q, _BYTES, out=left)
        q >>= 8
        q &= _BYTES
        q -= left  # lane-wise differences; a negative lane borrows from the next, and the
        q *= fx  # borrow is paid back when left is added, as the total is non-negative
        left <<= FRAC_BITS
        left += q
        # Along y: multiplying by fy + (16 - fy) << 16 puts top * (16 - fy) + bottom * fy in the
        # upper lane (no carry, as every partial product stays < 2**16).
        np.multiply(fy, (1 << 16) - 1, out=mix)
        np.subtract(_ONE << 16, mix, out=mix)
        left *= mix
        left >>= 16
        rows_out = out[start:stop]
        np.copyto(rows_out, left.view(np.int32), casting="unsafe")
        rows_out *= np.float32(1 / (255 * _ONE * _ONE))
    return out


def augment_batch(
    images: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig = AugmentConfig(),
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Randomly warp and thicken uint8 images (B, 28, 28) into network input float32 (B, 784).

    Pixels are scaled to [0, 1] like the plain input; the same rng state gives the same output.
    """
    n = len(images)
    matrices = random_affine_matrices(n, rng, config, images.shape[1:])
    thickness = random_thickness(n, rng, config)
    return warp_affine(images, matrices, thickness, out)
