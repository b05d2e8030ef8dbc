"""Read a number of several digits: digits/data/segment.py finds them, the network judges cuts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from digits.app.logic import LOW_CONFIDENCE, Reading
from digits.data.preprocess import preprocess
from digits.data.segment import Piece, ink_map, segment
from network import Classifier

# Status names for a digit's reading; one function maps a reading to them.
SURE, UNSURE = "sure", "unsure"
# Each piece is read with this share of its longest side as a black margin round it, so the
# preprocessing sees a clean border, as it does round a single drawn digit.
MARGIN_FRACTION = 0.25


@dataclass(frozen=True)
class DigitReading:
    """One digit of a number: its box (x0, y0, x1, y1) in image pixels, its reading and its ink
    (h, w) uint8 as cut out of the number."""

    box: tuple[int, int, int, int]
    reading: Reading
    ink: np.ndarray = field(repr=False, compare=False)

    @property
    def status(self) -> str:
        return status_of(self.reading)

    @property
    def text(self) -> str:
        """The digit, or "?" when the network is unsure or sees no digit."""
        return str(self.reading.digit) if self.status == SURE else "?"

    @property
    def confidence(self) -> float:
        """The top probability, 0 when the piece held no digit."""
        return self.reading.confidence if self.reading.has_digit else 0.0


def status_of(reading: Reading) -> str:
    """The status shown for a reading: SURE or UNSURE (extend here for new outcomes)."""
    return SURE if reading.has_digit and reading.is_sure else UNSURE


def read_number(classifier: Classifier, image: Image.Image | np.ndarray) -> list[DigitReading]:
    """Every digit in an image of a number, left to right."""
    ink, scale = ink_map(image)
    readings: dict[int, Reading] = {}

    def score(pieces: list[Piece]) -> list[float]:
        read = read_pieces(classifier, pieces)
        readings.update((id(p), r) for p, r in zip(pieces, read, strict=True))
        return [r.confidence if r.has_digit else 0.0 for r in read]

    size = image.size if isinstance(image, Image.Image) else (image.shape[1], image.shape[0])
    return [
        DigitReading(_image_box(p.box, scale, size), readings[id(p)], p.ink)
        for p in segment(ink, score, LOW_CONFIDENCE)
    ]


def read_pieces(classifier: Classifier, pieces: list[Piece]) -> list[Reading]:
    """Each piece preprocessed like a single digit and read, in one forward pass."""
    prepared = [
        preprocess(np.pad(p.ink, round(MARGIN_FRACTION * max(p.ink.shape)))) for p in pieces
    ]
    found = [i for i, p in enumerate(prepared) if p.has_digit]
    probas: dict[int, np.ndarray] = {}
    if found:
        stacked = np.stack([prepared[i].vector for i in found])
        probas = dict(zip(found, classifier.predict_proba(stacked), strict=True))
    return [Reading(p, probas.get(i)) for i, p in enumerate(prepared)]


def number_text(digits: list[DigitReading]) -> str | None:
    """The number read, "?" for an unsure digit, or None when there is no digit."""
    return "".join(d.text for d in digits) or None


def _image_box(
    box: tuple[int, int, int, int], scale: float, size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """An ink-map box in the image's own pixels, (x0, y0, x1, y1), inside its (width, height)."""
    x0, y0, x1, y1 = box
    width, height = size
    return (
        max(0, int(x0 * scale)),
        max(0, int(y0 * scale)),
        min(width, int(np.ceil(x1 * scale))),
        min(height, int(np.ceil(y1 * scale))),
    )
