"""Find the pieces of a written number, left to right, without the network.

Ink is binarised against the background; columns without ink separate pieces, so strokes that
overlap across (the flag of a 5, a 4 drawn in two strokes) stay one piece. Specks are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from digits.data.preprocess import to_8bit

# Pixels this far (0-255) from the background's median count as ink.
INK_CONTRAST = 64
# A piece whose ink is less than this share of the biggest piece's is a speck.
SPECK_MASS_FRACTION = 0.08


@dataclass(frozen=True)
class Piece:
    """One candidate digit: its (x0, y0, x1, y1) box in the image and its ink (h, w) uint8."""

    box: tuple[int, int, int, int]
    ink: np.ndarray


def ink_map(image: Image.Image | np.ndarray) -> np.ndarray:
    """(H, W) uint8, ink bright on black, whichever polarity or transparency the image had."""
    pil = Image.fromarray(image) if isinstance(image, np.ndarray) else to_8bit(image)
    if pil.mode in ("LA", "RGBA"):
        alpha = np.asarray(pil.getchannel("A"))
        # A transparent canvas: the ink is what is opaque, drawn in any colour.
        if alpha.min() < 255:
            return alpha.copy()
    gray = np.asarray(ImageOps.grayscale(pil), dtype=np.int16)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ink = np.abs(gray - int(np.median(border)))
    return np.clip(ink, 0, 255).astype(np.uint8)


def find_pieces(ink: np.ndarray) -> list[Piece]:
    """The pieces of an (H, W) uint8 ink map, left to right, specks left out."""
    mask = ink >= INK_CONTRAST
    columns = mask.any(axis=0)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], columns.view(np.int8), [0]))))
    pieces = []
    for x0, x1 in zip(edges[::2], edges[1::2], strict=True):
        rows = np.flatnonzero(mask[:, x0:x1].any(axis=1))
        y0, y1 = int(rows[0]), int(rows[-1]) + 1
        pieces.append(Piece((int(x0), y0, int(x1), y1), ink[y0:y1, x0:x1]))
    if not pieces:
        return []
    masses = [int(np.count_nonzero(p.ink >= INK_CONTRAST)) for p in pieces]
    return [
        p for p, m in zip(pieces, masses, strict=True) if m >= SPECK_MASS_FRACTION * max(masses)
    ]


def cut_candidates(piece: Piece, count: int) -> list[int]:
    """Up to `count` columns of a piece where its ink is thinnest: where touching digits meet."""
    profile = (piece.ink >= INK_CONTRAST).sum(axis=0)
    width = len(profile)
    margin = max(2, width // 8)
    inner = np.arange(margin, width - margin)
    if len(inner) == 0:
        return []
    local = inner[
        (profile[inner] <= profile[inner - 1])
        & (profile[inner] <= profile[np.minimum(inner + 1, width - 1)])
    ]
    ranked = sorted(local.tolist(), key=lambda x: profile[x])
    chosen: list[int] = []
    for x in ranked:
        if all(abs(x - c) >= margin for c in chosen):
            chosen.append(int(x))
        if len(chosen) == count:
            break
    return sorted(chosen)
