"""Read a number of several digits: the pieces found, and touching digits split by recognition."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits.app.logic import Reading
from digits.data.preprocess import preprocess
from digits.data.segment import Piece, cut_candidates, find_pieces, ink_map
from network import Classifier

# A piece wider than this times its height may be several touching digits.
SPLIT_ASPECT = 1.25
# Candidate cuts tried inside one wide piece.
MAX_CUTS = 4
# Status names for a digit's reading; one function maps a reading to them.
SURE, UNSURE = "sure", "unsure"


@dataclass(frozen=True)
class DigitReading:
    """One digit of a number: its box (x0, y0, x1, y1) in image pixels and its reading."""

    box: tuple[int, int, int, int]
    reading: Reading

    @property
    def status(self) -> str:
        return status_of(self.reading)

    @property
    def text(self) -> str:
        """The digit, or "?" when the network is unsure."""
        return str(self.reading.digit) if self.status == SURE else "?"


def status_of(reading: Reading) -> str:
    """The status shown for a reading: SURE or UNSURE (extend here for new outcomes)."""
    return SURE if reading.is_sure else UNSURE


def read_number(classifier: Classifier, image) -> list[DigitReading]:
    """Every digit in an image of a number, left to right."""
    ink = ink_map(image)
    digits: list[DigitReading] = []
    for piece in find_pieces(ink):
        digits.extend(_read_piece(classifier, piece))
    return digits


def number_text(digits: list[DigitReading]) -> str | None:
    """The number read, "?" for an unsure digit, or None when there is no digit."""
    return "".join(d.text for d in digits) or None


def _read_piece(classifier: Classifier, piece: Piece) -> list[DigitReading]:
    """The piece read as one digit, or split at the cuts whose pieces the network reads best."""
    x0, y0, x1, y1 = piece.box
    height = y1 - y0
    cuts = [0]
    if x1 - x0 > SPLIT_ASPECT * height:
        cuts += cut_candidates(piece, MAX_CUTS)
    cuts.append(x1 - x0)
    segments = [(a, b) for i, a in enumerate(cuts) for b in cuts[i + 1 :]]
    readings = _read_segments(classifier, piece, segments)
    # Dynamic programming over cuts: the best product of confidences up to each cut.
    best: dict[int, tuple[float, list[tuple[int, int]]]] = {0: (0.0, [])}
    for b in cuts[1:]:
        options = [
            (best[a][0] + np.log(max(readings[(a, b)].confidence, 1e-9)), [*best[a][1], (a, b)])
            for a in cuts
            if a < b and a in best and readings[(a, b)].has_digit
        ]
        if options:
            best[b] = max(options, key=lambda o: o[0])
    end = cuts[-1]
    chosen = best[end][1] if end in best else [(0, end)]
    return [
        DigitReading(_segment_box(piece, a, b), readings[(a, b)])
        for a, b in chosen
        if readings[(a, b)].has_digit
    ]


def _read_segments(classifier, piece: Piece, segments) -> dict[tuple[int, int], Reading]:
    """Each column range of the piece preprocessed and read, in one forward pass."""
    # A margin of background, so preprocessing sees a clean border round the ink.
    margin = max(piece.ink.shape) // 4
    prepared = {s: preprocess(np.pad(piece.ink[:, s[0] : s[1]], margin)) for s in segments}
    found = [s for s, p in prepared.items() if p.has_digit]
    probas = {}
    if found:
        stacked = np.stack([prepared[s].vector for s in found])
        probas = dict(zip(found, classifier.predict_proba(stacked), strict=True))
    return {s: Reading(prepared[s], probas.get(s)) for s in segments}


def _segment_box(piece: Piece, a: int, b: int) -> tuple[int, int, int, int]:
    """The image-pixel box of the piece's columns [a, b), trimmed to its ink."""
    x0, y0, _, _ = piece.box
    rows = np.flatnonzero(piece.ink[:, a:b].any(axis=1))
    top, bottom = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, piece.ink.shape[0])
    return (x0 + a, y0 + top, x0 + b, y0 + bottom)
