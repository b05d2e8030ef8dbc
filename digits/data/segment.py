"""Find the digits of a written number, left to right; the network's judgement is passed in.

The ink is the one preprocessing's own (background flattened, contrast normalised). Its
8-connected components are labelled; components that share most of their columns (the flag of a
5, a 4 or 7 in two strokes) or lie a hair apart (a pen line broken in a photo) form one piece,
and small pieces are specks. A piece that is wide for its height, or that the network does not
read with confidence, is cut where its column ink profile is thin, and the cuts kept are those
whose pieces the network reads best (segmentation by recognition), via `score`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from digits.data.preprocess import preprocess

# Pixels of the normalised ink map (0-255) at least this bright are ink.
INK_LEVEL = 64
# A piece whose ink is less than this share of the biggest piece's is a speck.
SPECK_MASS_FRACTION = 0.08
# In one digit's ink, components join when their columns overlap at all, or when the gap
# between them is at most GAP_JOIN of the taller one's height (a pen line broken in a photo).
# In a number, neighbours' boxes overlap on a slant and lie a few pixels apart, so there they
# join only when they share OVERLAP_JOIN of the narrower one's columns (the flag of a 5, a 4 or
# 7 in two strokes) or lie NUMBER_GAP_JOIN apart at most.
GAP_JOIN = 0.08
OVERLAP_JOIN = 0.5
NUMBER_GAP_JOIN = 0.02
# A piece at most this wide for the number's height is one digit; one that the network reads
# with confidence may be as wide as the second (a wide 4 or 0 written short).
ONE_DIGIT_ASPECT = 0.9
SURE_DIGIT_ASPECT = 1.3
# A piece less tall than this share of the number's median piece is part of a neighbour.
SMALL_PIECE_HEIGHT = 0.5
# A cut-out digit is this narrow to this wide for its height: a thin 1 to a wide 0 or 4.
SEGMENT_ASPECT = (0.12, 1.3)
# Every digit read costs this much log-score, so a confident whole beats confident fragments;
# a segment wider than ASPECT_FREE times the number's height pays ASPECT_PENALTY times the
# square of the excess: a "digit" much wider than tall is more likely two.
SEGMENT_COST = 0.3
ASPECT_FREE = 1.0
ASPECT_PENALTY = 40.0
# Candidate cuts: column profile minima at least this share of the height apart, and this many
# per digit the piece's width suggests (a digit being about DIGIT_ASPECT as wide as tall).
CUT_SPACING = 0.12
CUTS_PER_DIGIT = 3
DIGIT_ASPECT = 0.65
MAX_CUTS = 14
# Confidences are floored here before their log, so a piece the network cannot read at all
# is a large, finite cost.
MIN_SCORE = 1e-6


@dataclass(frozen=True)
class Piece:
    """One candidate digit: its (x0, y0, x1, y1) box in ink-map pixels and its ink (h, w) uint8."""

    box: tuple[int, int, int, int]
    ink: np.ndarray

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]


# Reads pieces: their confidences in [0, 1] (0 for no digit), one per piece, in one batch.
Scorer = Callable[[list[Piece]], list[float]]


def ink_map(image: Image.Image | np.ndarray) -> tuple[np.ndarray, float]:
    """The image's ink (h, w) uint8, bright on black, and image pixels per ink-map pixel.

    It is the preprocessing's own "background flattened" stage, so photos and canvases of any
    polarity are handled as single digits are; a large image comes back reduced.
    """
    flat = preprocess(image).stages.get("background flattened")
    width = image.size[0] if isinstance(image, Image.Image) else image.shape[1]
    if flat is None:  # fully transparent or empty: no ink at all
        return np.zeros((1, 1), np.uint8), 1.0
    return flat, width / flat.shape[1]


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of an (H, W) bool mask: labels (H, W) int32 (0 = none) and count.

    Works on horizontal runs of ink: runs in neighbouring rows that touch (diagonals too) are
    joined by union-find with pointer jumping, all in array operations.
    """
    height, width = mask.shape
    padded = np.zeros((height, width + 2), np.int8)
    padded[:, 1:-1] = mask
    rows, starts = np.nonzero(np.diff(padded, axis=1) == 1)
    _, ends = np.nonzero(np.diff(padded, axis=1) == -1)  # exclusive; same order as starts
    labels = np.zeros((height, width), np.int32)
    if len(starts) == 0:
        return labels, 0
    # Run j of row y+1 touches run i of row y when start_j <= end_i and end_j >= start_i.
    span = width + 2
    start_key, end_key = rows * span + starts, rows * span + ends
    lo = np.searchsorted(end_key, (rows + 1) * span + starts, side="left")
    hi = np.searchsorted(start_key, (rows + 1) * span + ends, side="right")
    count = np.maximum(hi - lo, 0)
    first = np.repeat(np.arange(len(starts)), count)
    second = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(count.sum())
    parent = _union(len(starts), first, second)
    roots, run_label = np.unique(parent, return_inverse=True)
    lengths = ends - starts
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    labels.flat[np.repeat(rows * width + starts, lengths) + within] = np.repeat(
        run_label + 1, lengths
    )
    return labels, len(roots)


def _union(n: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Each of n items' smallest connected item, given edges (first[k], second[k])."""
    parent = np.arange(n)
    while True:
        a, b = parent[first], parent[second]
        low = np.minimum(a, b)
        hooked = parent.copy()
        np.minimum.at(hooked, a, low)
        np.minimum.at(hooked, b, low)
        while True:  # pointer jumping: every item straight to its root
            jumped = hooked[hooked]
            if np.array_equal(jumped, hooked):
                break
            hooked = jumped
        if np.array_equal(hooked, parent):
            return parent
        parent = hooked


def find_pieces(ink: np.ndarray, number: bool = False) -> list[Piece]:
    """The pieces of an (H, W) uint8 ink map, left to right, specks left out; joined as in a
    number's ink if `number`, else as in one digit's.

    Each piece's ink holds only its own components, so a neighbour reaching into its box on a
    slant is not read with it.
    """
    labels, count = label_components(ink >= INK_LEVEL)
    if count == 0:
        return []
    boxes, masses = _component_boxes(labels, count)
    group = _join(boxes, number)
    pieces, piece_masses = [], []
    for g in np.unique(group):
        members = np.flatnonzero(group == g)
        x0, y0 = boxes[members, 0].min(), boxes[members, 1].min()
        x1, y1 = boxes[members, 2].max(), boxes[members, 3].max()
        own = np.isin(labels[y0:y1, x0:x1], members + 1)
        pieces.append(
            Piece((int(x0), int(y0), int(x1), int(y1)), np.where(own, ink[y0:y1, x0:x1], 0))
        )
        piece_masses.append(masses[members].sum())
    biggest = max(piece_masses)
    kept = [
        p for p, m in zip(pieces, piece_masses, strict=True) if m >= SPECK_MASS_FRACTION * biggest
    ]
    # Left to right by the middle of each piece, whatever the baseline does.
    return sorted(kept, key=lambda p: p.box[0] + p.box[2])


def _component_boxes(labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each component's (x0, y0, x1, y1) box, (count, 4) int, and its ink pixels, (count,)."""
    ys, xs = np.nonzero(labels)
    index = labels[ys, xs] - 1
    boxes = np.empty((count, 4), np.int64)
    boxes[:, 0] = np.full(count, labels.shape[1])
    boxes[:, 1] = np.full(count, labels.shape[0])
    boxes[:, 2:] = 0
    np.minimum.at(boxes[:, 0], index, xs)
    np.minimum.at(boxes[:, 1], index, ys)
    np.maximum.at(boxes[:, 2], index, xs + 1)
    np.maximum.at(boxes[:, 3], index, ys + 1)
    return boxes, np.bincount(index, minlength=count)


def _join(boxes: np.ndarray, number: bool) -> np.ndarray:
    """Which piece each component belongs to, (n,): components sharing columns, or a hair apart."""
    x0, x1, height = boxes[:, 0], boxes[:, 2], boxes[:, 3] - boxes[:, 1]
    overlap = np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None])
    narrower = np.minimum((x1 - x0)[:, None], (x1 - x0)[None])
    taller = np.maximum(height[:, None], height[None])
    shared = overlap >= (OVERLAP_JOIN if number else 0.0) * narrower
    near = (overlap <= 0) & (-overlap <= (NUMBER_GAP_JOIN if number else GAP_JOIN) * taller)
    joined = shared | near
    first, second = np.nonzero(np.triu(joined, 1))
    return _union(len(boxes), first, second)


def segment(ink: np.ndarray, score: Scorer, sure: float) -> list[Piece]:
    """The digits of an (H, W) uint8 ink map, left to right, touching ones split by `score`.

    A piece no wider than ONE_DIGIT_ASPECT times the number's height stays whole, and so does
    one up to SURE_DIGIT_ASPECT that `score` reads at `sure` or more; others are split.
    """
    pieces = attach_small_pieces(find_pieces(ink, number=True))
    whole = score(pieces) if pieces else []
    # The digits of one number are about the same height: the median piece's is the yardstick
    # for how wide one digit can be.
    height = float(np.median([p.height for p in pieces])) if pieces else 0.0
    digits: list[Piece] = []
    for piece, confidence in zip(pieces, whole, strict=True):
        narrow = piece.width <= ONE_DIGIT_ASPECT * height
        if narrow or (confidence >= sure and piece.width <= SURE_DIGIT_ASPECT * height):
            digits.append(piece)
        else:
            digits.extend(split(piece, score, confidence, height))
    return digits


def attach_small_pieces(pieces: list[Piece]) -> list[Piece]:
    """Pieces far shorter than the number's digits (a 5's flag, a stroke that came apart)
    joined to their nearest neighbour, so they are read as part of it, not as digits."""
    while len(pieces) > 1:
        height = float(np.median([p.height for p in pieces]))
        small = [i for i, p in enumerate(pieces) if p.height < SMALL_PIECE_HEIGHT * height]
        if not small:
            break
        i = min(small, key=lambda k: pieces[k].height)
        j = min((k for k in range(len(pieces)) if k != i), key=lambda k: _gap(pieces[i], pieces[k]))
        merged = _merge(pieces[i], pieces[j])
        pieces = [p for k, p in enumerate(pieces) if k not in (i, j)] + [merged]
        pieces.sort(key=lambda p: p.box[0] + p.box[2])
    return pieces


def _gap(a: Piece, b: Piece) -> int:
    """Columns between two pieces' boxes (negative when they overlap)."""
    return max(a.box[0], b.box[0]) - min(a.box[2], b.box[2])


def _merge(a: Piece, b: Piece) -> Piece:
    """One piece holding both pieces' own ink."""
    x0, y0 = min(a.box[0], b.box[0]), min(a.box[1], b.box[1])
    x1, y1 = max(a.box[2], b.box[2]), max(a.box[3], b.box[3])
    merged = np.zeros((y1 - y0, x1 - x0), a.ink.dtype)
    for p in (a, b):
        region = merged[p.box[1] - y0 : p.box[3] - y0, p.box[0] - x0 : p.box[2] - x0]
        np.maximum(region, p.ink, out=region)
    return Piece((x0, y0, x1, y1), merged)


def split(piece: Piece, score: Scorer, whole: float, height: float | None = None) -> list[Piece]:
    """The piece as the digits whose reading scores best, cut at column profile minima.

    `whole` is the score of the piece read as one digit, `height` a digit's height in this
    number (the piece's own if not given). Dynamic programming over the cuts maximises the sum
    of log-scores, less a cost per digit and one for segments too wide.
    """
    height = height or piece.height
    cuts = [0, *cut_candidates(piece, height), piece.width]
    low, high = (a * height for a in SEGMENT_ASPECT)
    spans = [
        (a, b)
        for i, a in enumerate(cuts)
        for b in cuts[i + 1 :]
        if low <= b - a <= high and (a, b) != (0, piece.width)
    ]
    segments = {s: _columns(piece, *s) for s in spans}
    found = {s: seg for s, seg in segments.items() if seg is not None}
    scores = dict(zip(found, score(list(found.values())), strict=True)) if found else {}
    segments[(0, piece.width)] = piece
    scores[(0, piece.width)] = whole

    def value(span: tuple[int, int]) -> float:
        seg = segments[span]
        assert seg is not None, "only segments with ink are scored"
        aspect = seg.width / max(height, 1)
        excess = max(0.0, aspect - ASPECT_FREE)
        return (
            float(np.log(max(scores[span], MIN_SCORE))) - SEGMENT_COST - ASPECT_PENALTY * excess**2
        )

    # best[b]: the best total up to cut b and the spans that reach it.
    best: dict[int, tuple[float, list[tuple[int, int]]]] = {0: (0.0, [])}
    for b in cuts[1:]:
        options = [
            (best[a][0] + value((a, b)), [*best[a][1], (a, b)])
            for a in cuts
            if a < b and a in best and (a, b) in scores
        ]
        if options:
            best[b] = max(options, key=lambda o: o[0])
    chosen = best[piece.width][1] if piece.width in best else [(0, piece.width)]
    return [p for p in (segments[s] for s in chosen) if p is not None]


def cut_candidates(piece: Piece, height: float | None = None) -> list[int]:
    """Columns inside a piece where its ink is thinnest, where touching digits likely meet."""
    height = height or piece.height
    profile = np.count_nonzero(piece.ink >= INK_LEVEL, axis=0).astype(np.float32)
    # A light smoothing, so one ragged pixel of a stroke's edge is not a minimum of its own.
    profile = np.convolve(profile, np.ones(3, np.float32) / 3, mode="same")
    spacing = max(2, round(CUT_SPACING * height))
    inner = np.arange(spacing, piece.width - spacing)
    if len(inner) == 0:
        return []
    local = inner[(profile[inner] <= profile[inner - 1]) & (profile[inner] <= profile[inner + 1])]
    wanted = min(MAX_CUTS, CUTS_PER_DIGIT * max(1, round(piece.width / (DIGIT_ASPECT * height))))
    chosen: list[int] = []
    for x in sorted(local.tolist(), key=lambda x: profile[x]):
        if all(abs(x - c) >= spacing for c in chosen):
            chosen.append(int(x))
        if len(chosen) == wanted:
            break
    return sorted(chosen)


def _columns(piece: Piece, a: int, b: int) -> Piece | None:
    """The piece's columns [a, b) as a piece of its own, trimmed to its ink; None if empty."""
    ink = piece.ink[:, a:b]
    rows = np.flatnonzero((ink >= INK_LEVEL).any(axis=1))
    if len(rows) == 0:
        return None
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    x0, y0 = piece.box[0] + a, piece.box[1] + top
    return Piece((x0, y0, x0 + b - a, y0 + bottom - top), ink[top:bottom])
