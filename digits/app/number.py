"""Read a number of several digits: digits/data/segment.py finds them, the network judges cuts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digits.app.logic import LOW_CONFIDENCE, Reading, read_digits
from digits.data.preprocess import preprocess, to_8bit
from digits.data.segment import Piece, ink_map, segment
from network import Classifier

# Status names for a digit's reading; one function maps a reading to them.
SURE, UNSURE = "sure", "unsure"
# The boxes round sure digits are green, those round unsure or non-digit pieces amber.
SURE_COLOUR, UNSURE_COLOUR = "#21C354", "#FFBD45"
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
    return read_digits(classifier, prepared)


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


def annotated(image: Image.Image | np.ndarray, digits: list[DigitReading]) -> Image.Image:
    """The image as RGB with a box round each digit and its reading ("?" if unsure) above it."""
    picture = to_8bit(image if isinstance(image, Image.Image) else Image.fromarray(image))
    picture = picture.convert("RGB")
    draw = ImageDraw.Draw(picture)
    size = max(12, picture.height // 12)
    font = ImageFont.load_default(size=size)
    for d in digits:
        colour = SURE_COLOUR if d.status == SURE else UNSURE_COLOUR
        x0, y0, x1, y1 = d.box
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=colour, width=max(2, size // 8))
        label = f"{d.text} {d.confidence:.0%}"
        # Above the box where there is room, else inside its top.
        top = y0 - size - 4 if y0 >= size + 4 else y0 + 2
        draw.text((x0 + 2, top), label, fill=colour, font=font)
    return picture
