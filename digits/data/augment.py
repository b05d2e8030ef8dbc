"""Training-time augmentation of uint8 digits: random affine warp and stroke thickness.

Drawings from the app are off-centre, rotated, slanted, bigger or smaller and drawn with a
thicker or thinner brush than MNIST; `augment_batch` shows the network such variations.

Speed shapes the code, as an augmented epoch may cost at most twice a plain one. A pass over
the pixels costs about the bytes it moves through the L2 cache, and a NumPy call about a
microsecond, so (bench/bench_augment.py measures the result):
- Images go in chunks of WARP_CHUNK, so every intermediate stays in cache, in buffers reused
  across chunks, with no per-sample or per-pixel Python loop.
- Each source pixel's 2x2 neighbourhood is packed into one uint32 of a table, so a single
  np.take fetches all four bilinear taps; the interpolation then runs as integer arithmetic
  on two 16-bit lanes of each uint32 (SIMD within a register), in 1/16-pixel fixed point.
- The table is built from a zero-bordered frame filled by whole-row copies (a row of pixels
  viewed as one 28-byte item), then one unaligned uint16 read, a shift and an or.
- Source positions come from one small float32 matmul per chunk. Its terms are multiples of
  2**-12 small enough that every sum is exact, so no BLAS kernel or thread count changes a
  position; adding 2**23 then rounds each to an integer and keeps it in its low bits.
- Clipping positions to the one-pixel zero border stands in for a wide margin.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from digits.data.mnist import to_input

WARP_CHUNK = 64
GROUP = 1024  # images per augment_batch step; their thickness frames take about 1 MB
FRAC_BITS = 4  # 1/16 px; the most that fits, as 255 * 2**(2 * FRAC_BITS) must stay < 2**16
_ONE = 1 << FRAC_BITS
_MAGIC = 2**23  # a float32 in [2**23, 2**24) is an integer, held in its low 23 bits
_EXPONENT = 0x4B000000  # the bits of 2**23 as a float32
_BYTES = 0x00FF00FF  # the low byte of each 16-bit lane


@dataclass(frozen=True)
class AugmentConfig:
    """Bounds of the random per-sample augmentation; every parameter is drawn uniformly."""

    max_rotation_deg: float = 12.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    max_shear_deg: float = 12.0  # horizontal shear, i.e. slant
    max_shift_px: float = 2.5
    thickness_prob: float = 0.7  # chance that a sample's strokes get thicker or thinner
    max_thickness: float = 0.9  # largest blend towards the dilated or eroded image
    prob: float = 1.0  # chance that a sample is augmented at all; the rest pass through plain
    # Elastic distortion (Simard et al. 2003), made cheap: each point of a coarse grid over the
    # image moves by a normal offset of this many pixels, and every pixel in between follows.
    elastic_px: float = 0.0


def random_affine_matrices(
    n: int, rng: np.random.Generator, config: AugmentConfig, shape: tuple[int, int] = (28, 28)
) -> np.ndarray:
    """Random forward maps (n, 2, 3) float32 taking source pixel (x, y) to output M @ (x, y, 1)."""
    rotation = rng.uniform(-config.max_rotation_deg, config.max_rotation_deg, n)
    scale = rng.uniform(*config.scale_range, n)
    slant = rng.uniform(-config.max_shear_deg, config.max_shear_deg, n)
    shift = rng.uniform(-config.max_shift_px, config.max_shift_px, (n, 2))
    return affine_matrices(rotation, scale, slant, shift, shape)


def affine_matrices(
    rotation_deg: np.ndarray,
    scale: np.ndarray,
    slant_deg: np.ndarray,
    shift: np.ndarray,
    shape: tuple[int, int] = (28, 28),
) -> np.ndarray:
    """Forward maps (n, 2, 3) float32 for n rotations, scales, slants (n,) and shifts (n, 2)."""
    h, w = shape
    rotation = np.deg2rad(np.asarray(rotation_deg, np.float64))
    slant = np.tan(np.deg2rad(np.asarray(slant_deg, np.float64)))
    scale = np.asarray(scale, np.float64)
    cos, sin = np.cos(rotation), np.sin(rotation)
    # rotation @ shear @ scale. With y pointing down, a positive angle turns the digit
    # counter-clockwise on screen and a positive slant leans it to the right, like italics.
    linear = np.empty((len(rotation), 2, 2))
    linear[:, 0, 0] = cos * scale
    linear[:, 0, 1] = (cos * -slant + sin) * scale
    linear[:, 1, 0] = -sin * scale
    linear[:, 1, 1] = (sin * slant + cos) * scale
    # About the image centre rather than each digit's centre of mass: MNIST already puts the
    # centre of mass there (to within a pixel), and the maps stay independent of the pixels.
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    matrices = np.empty((len(rotation), 2, 3), np.float32)
    matrices[:, :, :2] = linear
    matrices[:, :, 2] = centre + np.asarray(shift, np.float64) - linear @ centre
    return matrices


def random_thickness(n: int, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Random amounts (n,) float32 for `stroke_thickness`: 0 except for thickness_prob of them."""
    picked = rng.random(n) < config.thickness_prob
    amount = rng.uniform(-config.max_thickness, config.max_thickness, n)
    return np.where(picked, amount, 0.0).astype(np.float32)


def _thicken_in_frame(frame: np.ndarray, cols: int, grow: bool, weight: np.ndarray) -> None:
    """Blend uint8 frames towards their 3x3-cross dilation (grow) or erosion, in place.

    frame is flat: k zero-bordered frames of equal size, each row `cols` long, with `cols + 1`
    spare zeros on both ends, so flat shifts by 1 and by cols reach the four neighbours.
    weight (k, 1) uint8 is the blend weight in eighths.
    """
    inner = frame[cols + 1 : -(cols + 1)]
    target = np.empty_like(inner)
    extreme = np.maximum if grow else np.minimum
    extreme(frame[cols : -(cols + 2)], frame[cols + 2 : -cols], out=target)
    extreme(target, frame[1 : len(inner) + 1], out=target)
    extreme(target, frame[2 * cols + 1 : 2 * cols + 1 + len(inner)], out=target)
    extreme(target, inner, out=target)
    if grow:
        change = np.subtract(target, inner, out=target)
    else:
        change = np.subtract(inner, target, out=target)
    # (change >> 3) * weight stays below 256, so the blend never leaves uint8; it drops the
    # low 3 bits of the change, at most 7 grey levels.
    change >>= 3
    change.reshape(len(weight), -1)[...] *= weight
    if grow:
        inner += change
    else:
        inner -= change


def stroke_thickness(images: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Blend uint8 images (n, h, w) towards their grey dilation (amount > 0) or erosion (< 0).

    The structuring element is the 3x3 cross and pixels outside the image count as 0; amount
    (n,) in [-1, 1] is the blend weight, quantized to 1/8. Returns new uint8 (n, h, w).
    """
    n, h, w = images.shape
    out = np.array(images, dtype=np.uint8)
    cols, size = w + 1, (h + 2) * (w + 1)  # a zero row above and below, a zero column left
    group = min(GROUP, n)
    frame = np.zeros((group + 2) * size, np.uint8)  # one spare frame of zeros at each end
    rows = np.ndarray((group, h), f"V{w}", frame, size + cols + 1, (size, cols))
    frames = frame[size:-size].reshape(group, h + 2, cols)
    out_rows = out.view(f"V{w}").reshape(n, h)
    for grow in (True, False):
        picked = np.flatnonzero(amount > 0 if grow else amount < 0)
        for start in range(0, len(picked), group):
            chosen = picked[start : start + group]
            k = len(chosen)
            rows[:k] = out_rows[chosen]
            weight = np.rint(np.abs(amount[chosen]) * 8).astype(np.uint8)[:, None]
            span = frame[size - cols - 1 : (k + 1) * size + cols + 1]
            _thicken_in_frame(span, cols, grow, weight)
            out_rows[chosen] = rows[:k]
            if grow:  # the dilation spread into the border, which must be zero next time
                frames[:k, 0] = frames[:k, -1] = 0
                frames[:k, :, 0] = 0
    return out


# Points per side of the grid the elastic offsets are drawn on: a few strokes' width apart.
ELASTIC_GRID = 4
# The positions' terms are multiples of 2**-(2 * TENT_BITS) in 1/16 px (elastic offsets whole
# 1/16 px, weights of the grid points multiples of 2**-TENT_BITS along each axis), small
# enough that every sum of them is exact in float32.
TENT_BITS = 6


def _exact(values: np.ndarray, bits: int) -> np.ndarray:
    """values rounded to the nearest multiple of 2**-bits."""
    return np.rint(np.asarray(values, np.float64) * 2**bits) / 2**bits


def random_displacements(
    n: int, rng: np.random.Generator, config: AugmentConfig
) -> np.ndarray | None:
    """Random elastic offsets (n, 2, ELASTIC_GRID**2) float32 in pixels, or None without."""
    if not config.elastic_px:
        return None
    offsets = rng.normal(0.0, config.elastic_px, (n, 2, ELASTIC_GRID**2))
    return offsets.astype(np.float32)


def elastic_basis(shape: tuple[int, int], points: int = ELASTIC_GRID) -> np.ndarray:
    """Weights (points**2, h * w) float32: how much each grid point's offset moves each pixel.

    Bilinear between the grid points, which span the image from edge to edge, so the offsets
    of all the points make a smooth field over the whole image.
    """

    def tents(size: int) -> np.ndarray:  # (points, size): 1 at its point, 0 at the next
        at = np.linspace(0, size - 1, points)
        spacing = at[1] - at[0]
        tent = np.maximum(0.0, 1 - np.abs(np.arange(size) - at[:, None]) / spacing)
        return _exact(tent, TENT_BITS)  # neighbours' weights still add up to exactly 1

    h, w = shape
    basis = tents(h)[:, None, :, None] * tents(w)[None, :, None, :]
    return basis.reshape(points * points, h * w).astype(np.float32)


def _inverse_maps(matrices: np.ndarray) -> np.ndarray:
    """The inverses (n, 2, 3) float64 of forward maps (n, 2, 3): output pixel -> source pixel."""
    m = matrices.astype(np.float64)
    a, b, c, d = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
    det = a * d - b * c
    inverse = np.empty_like(m)
    inverse[:, 0, 0], inverse[:, 0, 1] = d / det, -b / det
    inverse[:, 1, 0], inverse[:, 1, 1] = -c / det, a / det
    inverse[:, :, 2] = -np.einsum("nij,nj->ni", inverse[:, :, :2], m[:, :, 2])
    return inverse


def _source_coefficients(
    matrices: np.ndarray, chunk: int, displacements: np.ndarray | None = None
) -> np.ndarray:
    """Per-chunk maps (blocks, 2 * chunk, 3 + k) float32 from output (j, i, 1, basis) to source
    x, then y, with k the elastic grid points (0 without displacements (n, 2, k)).

    Positions are in 1/16 px of the zero-bordered frame, every term a multiple of 2**-12, so
    the sums are exact (`locate` rounds them). Padding maps of the last chunk are the identity.
    """
    n = len(matrices)
    blocks = -(-n // chunk)
    k = 0 if displacements is None else displacements.shape[2]
    coefficients = np.zeros((blocks * chunk, 2, 3 + k))
    coefficients[:, 0, 0] = coefficients[:, 1, 1] = 1
    coefficients[:n, :, :3] = _inverse_maps(matrices)
    if displacements is not None:
        coefficients[:n, :, 3:] = displacements
    coefficients *= _ONE
    coefficients[:, :, :2] = _exact(coefficients[:, :, :2], 2 * TENT_BITS)
    coefficients[:, :, 2] = np.rint(coefficients[:, :, 2]) + _ONE  # + the border
    coefficients[:, :, 3:] = np.rint(coefficients[:, :, 3:])
    by_block = coefficients.reshape(blocks, chunk, 2, 3 + k).transpose(0, 2, 1, 3)
    return by_block.reshape(blocks, 2 * chunk, 3 + k).astype(np.float32)


class _WarpBuffers:
    """Buffers for warping chunks of up to `chunk` images (h, w), reused from chunk to chunk.

    Several buffers share memory; each step below only overwrites what earlier steps are done
    with, so a chunk runs `fill_table`, `locate`, `interpolate`, `store` in that order.
    """

    def __init__(self, chunk: int, h: int, w: int, elastic: bool = False) -> None:
        self.chunk, self.h, self.w, self.hw = chunk, h, w, h * w
        self.elastic = elastic
        self.cols = w + 1
        self.size = (h + 2) * self.cols
        self._init_table()
        self._init_positions()

    def _init_table(self) -> None:
        """Allocate the zero-bordered frames (chunk, h + 2, w + 1) and their uint32 tap table."""
        chunk, h, w, cols, size = self.chunk, self.h, self.w, self.cols, self.size
        # Each image sits in a frame with a zero row above and below and a zero column on the
        # left, which is also the zero column right of the row above. Entry e of the table packs
        # frame bytes (e, e + 1, e + cols, e + cols + 1): the 2x2 neighbourhood of frame pixel e.
        frames = np.zeros(chunk * size + cols + 1, np.uint8)
        # A row of pixels as one w-byte item, so one copy call moves whole rows.
        self.image_rows = np.ndarray((chunk, h), f"V{w}", frames, cols + 1, (size, cols))
        self.table = np.empty(chunk * size + cols, "<u4")
        self.pairs = np.ndarray(self.table.shape, "<u2", frames, 0, (1,))  # unaligned (e, e + 1)
        self.table_low, self.table_high = self.table[: chunk * size], self.table[cols:]

    def _init_positions(self) -> None:
        """Allocate the source positions (2 * chunk, h * w) and the index and lerp buffers."""
        chunk, h, w, hw, cols, size = self.chunk, self.h, self.w, self.hw, self.cols, self.size
        pixel_rows, pixel_cols = np.divmod(np.arange(hw), w)
        self.grid = np.stack([pixel_cols, pixel_rows, np.ones(hw)]).astype(np.float32)
        if self.elastic:
            self.grid = np.concatenate([self.grid, elastic_basis((h, w))])
        # Clipping to the frame's border is exact: there fx or fy is 0, and every tap with a
        # non-zero weight lies on the zero border.
        self.x_limit, self.y_limit = _MAGIC + _ONE * (w + 1), _MAGIC + _ONE * (h + 1)
        self.position = np.empty((2 * chunk, hw), np.float32)
        self.x_position, self.y_position = self.position[:chunk], self.position[chunk:]
        self.bits = self.position.reshape(-1).view(np.uint32)
        self.x_bits, self.y_bits = self.bits[: chunk * hw], self.bits[chunk * hw :]
        # x_bits = E + 16 x + fx and y_bits = E + 16 y + fy, with E the bits of 2**23, so
        # (y_bits - fy) * cols + x_bits + offset = 16 * (frame start + y * cols + x) + fx.
        offset = np.arange(chunk, dtype=np.int64)[:, None] * size * _ONE - _EXPONENT * (cols + 1)
        self.offset = (offset % 2**32).astype(np.uint32)
        room = np.empty(max(chunk * hw, chunk * size), np.int64)
        self.index_flat = room[: chunk * hw]
        self.index = self.index_flat.reshape(chunk, hw)
        scratch = room.view(np.uint32)  # free but for the take
        self.high, self.lanes = scratch[: chunk * size], scratch[: chunk * hw]
        self.taps = np.empty((chunk, hw), "<u4")
        self.flat = self.taps  # the index as uint32, before the taps overwrite it
        self.flat_1d, self.taps_1d = self.flat.reshape(-1), self.taps.reshape(-1)
        self.result_int = self.lanes.view(np.int32).reshape(chunk, hw)
        self.spare = np.empty((chunk, hw), np.float32)
        self.scale = np.float32(1 / (255 * _ONE * _ONE))

    def fill_table(self, images: np.ndarray) -> None:
        """Frame contiguous uint8 images (k, h, w), k <= chunk, and pack their 2x2 taps."""
        self.image_rows[: len(images)] = images.view(f"V{self.w}").reshape(-1, self.h)
        # table[e] = pairs[e] | pairs[e + cols] << 16: the neighbourhood's two rows.
        np.copyto(self.table, self.pairs)
        np.left_shift(self.table_high, 16, out=self.high)
        self.table_low |= self.high

    def locate(self, coefficients: np.ndarray) -> None:
        """Map coefficients (2 * chunk, 3) to table indices, leaving fx, fy in x_bits, y_bits."""
        position, flat = self.position, self.flat_1d
        np.matmul(coefficients, self.grid, out=position)
        position += _MAGIC  # rounds each position to an integer, in its low bits
        if self.h == self.w:
            np.clip(position, _MAGIC, self.x_limit, out=position)
        else:
            np.clip(self.x_position, _MAGIC, self.x_limit, out=self.x_position)
            np.clip(self.y_position, _MAGIC, self.y_limit, out=self.y_position)
        np.bitwise_and(self.y_bits, ~(_ONE - 1) & 0xFFFFFFFF, out=flat)
        flat *= self.cols
        flat += self.x_bits
        self.flat += self.offset
        self.flat >>= FRAC_BITS
        np.copyto(self.index, self.flat)
        np.bitwise_and(self.bits, _ONE - 1, out=self.bits)  # from here on: fx, fy in 0..15

    def interpolate(self) -> None:
        """Fetch the taps and lerp them into result_int (chunk, h * w): 255 * 256 * intensity."""
        q, lo, fx, fy = self.taps_1d, self.lanes, self.x_bits, self.y_bits
        np.take(self.table, self.index_flat, out=q, mode="clip")
        # q holds bytes (p00, p01, p10, p11). Split it into 16-bit lanes (p00, p10) and
        # (p01, p11) and lerp along x in both rows at once: 16 * left + fx * (right - left).
        np.bitwise_and(q, _BYTES, out=lo)
        q >>= 8
        q &= _BYTES
        q -= lo  # a negative lane borrows from the one above; adding lo back repays it, as
        q *= fx  # every lane of the total is non-negative
        lo <<= FRAC_BITS
        lo += q
        # Along y: a product with fy + ((16 - fy) << 16) holds top * (16 - fy) + bottom * fy in
        # its upper 16 bits, with no carry as every partial product stays below 2**16.
        fy *= (1 << 16) - 1
        np.subtract(_ONE << 16, fy, out=fy)
        lo *= fy
        lo >>= 16

    def store(self, out: np.ndarray) -> None:
        """Scale result_int into out (k, h * w) float32 in [0, 1], k <= chunk."""
        # A full chunk converts straight into out; only a short last one goes via spare.
        result = out if len(out) == self.chunk else self.spare
        np.copyto(result, self.result_int, casting="unsafe")
        result *= self.scale
        if result is self.spare:
            out[...] = self.spare[: len(out)]


def warp_affine(
    images: np.ndarray,
    matrices: np.ndarray,
    out: np.ndarray | None = None,
    displacements: np.ndarray | None = None,
) -> np.ndarray:
    """Warp uint8 images (n, h, w) by forward maps (n, 2, 3) into float32 (n, h*w) in [0, 1].

    Bilinear with zeros outside the image; sample positions are accurate to 1/16 pixel. With
    displacements (n, 2, ELASTIC_GRID**2) from random_displacements, each output pixel also
    samples that far (in pixels, along x then y) from where the map alone would.
    """
    n, h, w = images.shape
    if out is None:
        out = np.empty((n, h * w), np.float32)
    if n == 0:
        return out
    images = np.ascontiguousarray(images, dtype=np.uint8)
    chunk = min(WARP_CHUNK, n)
    buffers = _WarpBuffers(chunk, h, w, elastic=displacements is not None)
    coefficients = _source_coefficients(matrices, chunk, displacements)
    for block, start in enumerate(range(0, n, chunk)):
        stop = min(start + chunk, n)
        buffers.fill_table(images[start:stop])
        buffers.locate(coefficients[block])
        buffers.interpolate()
        buffers.store(out[start:stop])
    return out


@dataclass(frozen=True)
class AugmentPlan:
    """The random draws for a batch: which images are augmented, and how each of those is.

    `augmented` (n,) bool; `matrices` (m, 2, 3), `thickness` (m,) and `displacements`
    (m, 2, k) or None hold one row per augmented image, in order, m = augmented.sum().
    """

    augmented: np.ndarray
    matrices: np.ndarray
    thickness: np.ndarray
    displacements: np.ndarray | None

    def rows(self, start: int, stop: int) -> AugmentPlan:
        """The plan of images start..stop: applying it to them writes what the whole plan would."""
        first = int(np.count_nonzero(self.augmented[:start]))
        inside = slice(first, first + int(np.count_nonzero(self.augmented[start:stop])))
        moved = None if self.displacements is None else self.displacements[inside]
        return AugmentPlan(
            self.augmented[start:stop], self.matrices[inside], self.thickness[inside], moved
        )


def draw_plan(
    n: int, rng: np.random.Generator, config: AugmentConfig, shape: tuple[int, int] = (28, 28)
) -> AugmentPlan:
    """The random draws augment_batch makes for n images of `shape`, in the order it makes them."""
    augmented = np.ones(n, bool) if config.prob >= 1 else rng.random(n) < config.prob
    m = int(np.count_nonzero(augmented))
    matrices = random_affine_matrices(m, rng, config, shape)
    thickness = random_thickness(m, rng, config)
    return AugmentPlan(augmented, matrices, thickness, random_displacements(m, rng, config))


def apply_plan(images: np.ndarray, plan: AugmentPlan, out: np.ndarray | None = None) -> np.ndarray:
    """Warp and thicken uint8 images (n, h, w) by `plan` into float32 (n, h*w) in [0, 1]."""
    n, h, w = images.shape
    if out is None:
        out = np.empty((n, h * w), np.float32)
    if not plan.augmented.all():
        plain = ~plan.augmented
        out[plain] = to_input(images[plain])
        picked = np.flatnonzero(plan.augmented)
        every = replace(plan, augmented=np.ones(len(picked), bool))
        out[picked] = apply_plan(images[picked], every)
        return out
    # In groups, so the thickened copy of the images is still in cache when it is warped.
    for start in range(0, n, GROUP):
        stop = min(start + GROUP, n)
        thick = stroke_thickness(images[start:stop], plan.thickness[start:stop])
        moved = None if plan.displacements is None else plan.displacements[start:stop]
        warp_affine(thick, plan.matrices[start:stop], out[start:stop], moved)
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
    return apply_plan(images, draw_plan(len(images), rng, config, images.shape[1:]), out)
