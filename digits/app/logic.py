"""What the app shows, worked out without Streamlit: the reading, its chart data and images."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image

from digits.app.insights import percent_text, upscale
from digits.data.mnist import IMAGE_SIDE, N_CLASSES, to_uint8
from digits.data.preprocess import Preprocessed, to_8bit
from digits.data.segment import find_pieces
from model_loader import DEFAULT_REFUSAL, validate_refusal
from network import Classifier

# Below this top probability the app says it is unsure: the flag then holds most of the
# mistakes on redrawn test digits while going up on few drawings (docs/design-notes.md, "Not
# sure"; chosen again whenever the model changes). A model file may carry its own.
LOW_CONFIDENCE = DEFAULT_REFUSAL["unsure_below"]

# The four outcomes of a reading, in the words predict_single.py's JSON "status" uses.
DIGIT, UNSURE, NOT_A_DIGIT, NO_DIGIT = "digit", "unsure", "not_a_digit", "no_digit"
OUTCOMES = (DIGIT, UNSURE, NOT_A_DIGIT, NO_DIGIT)
# Separate pieces of ink at least this share of the tallest's height are separate digits.
DIGIT_PIECE_HEIGHT = 0.5
SEVERAL_DIGITS = (
    "This looks like several digits, not one; read it as a number (predict_single.py --number)."
)

# "What the network sees": each of the 28x28 input pixels becomes an 8x8 block on screen.
NETWORK_VIEW_SCALE = 8
# Preprocessing stages are shown at most this many pixels across: 4x the 28x28 input.
STAGE_SIDE = 112

# What an empty drawing pad shows instead of a guess.
EMPTY_PROMPT = "Draw a digit from 0 to 9 in the black square."
# The stage name under which a stored MNIST test image is shown.
MNIST_STAGE = "MNIST test image (as stored)"


@dataclass(frozen=True)
class Reading:
    """The network's reading of one input: probabilities (10,) float32, or None with no digit."""

    preprocessed: Preprocessed
    proba: np.ndarray | None
    # The model's thresholds (model_loader.validate_refusal) and how many separate digit-sized
    # pieces of ink the input holds.
    refusal: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_REFUSAL))
    pieces: int = 1

    @property
    def has_digit(self) -> bool:
        """Whether there was a digit to read."""
        return self.proba is not None

    @property
    def status(self) -> str:
        """The outcome, one of OUTCOMES: the one decision the app and the command line show."""
        if self.proba is None:
            return NO_DIGIT
        if self.pieces > 1 or self.confidence < self.refusal["not_a_digit_below"]:
            return NOT_A_DIGIT
        if self.confidence < self.refusal["unsure_below"]:
            return UNSURE
        return DIGIT

    @property
    def digit(self) -> int:
        """The most probable digit."""
        return int(np.argmax(self._proba()))

    @property
    def confidence(self) -> float:
        """The most probable digit's probability, in [0, 1]."""
        return float(np.max(self._proba()))

    @property
    def is_sure(self) -> bool:
        """Whether the reading is a sure digit."""
        return self.status == DIGIT

    @property
    def runner_up(self) -> int:
        """The second most probable digit."""
        return int(np.argsort(self._proba())[-2])

    def confidence_text(self) -> str:
        """The confidence as a percentage with one decimal, never rounded to a false 100%."""
        return percent_text(self.confidence, decimals=1)

    def message(self) -> str:
        """One plain sentence for the user when the reading needs one, else ""."""
        status = self.status
        if status == NO_DIGIT:
            return self.preprocessed.reason
        if status == DIGIT:
            return ""
        if status == NOT_A_DIGIT:
            if self.pieces > 1:
                return SEVERAL_DIGITS
            return (
                f"This does not look like a digit (the network leans to {self.digit} at "
                f"{self.confidence:.0%}, too little to call it one)."
            )
        second = self.runner_up
        return (
            f"The network is not sure: it leans to {self.digit} ({self.confidence:.0%}), "
            f"but it could be {second} ({self._proba()[second]:.0%})."
        )

    def _proba(self) -> np.ndarray:
        if self.proba is None:
            raise ValueError("There is no digit in this input; check has_digit first.")
        return self.proba


def read_digit(classifier: Classifier, preprocessed: Preprocessed) -> Reading:
    """The classifier's reading of a preprocessed input (no prediction when it holds no digit)."""
    return read_digits(classifier, [preprocessed])[0]


def read_digits(classifier: Classifier, inputs: list[Preprocessed]) -> list[Reading]:
    """The readings of several preprocessed inputs, with one forward pass for all their digits."""
    refusal = validate_refusal(classifier.params.get("refusal", DEFAULT_REFUSAL))
    found = [i for i, preprocessed in enumerate(inputs) if preprocessed.has_digit]
    probas = {}
    if found:
        stacked = np.stack([inputs[i].vector for i in found])
        probas = dict(zip(found, np.atleast_2d(classifier.predict_proba(stacked)), strict=True))
    return [
        Reading(preprocessed, probas[i], refusal, digit_pieces(preprocessed))
        if i in probas
        else Reading(preprocessed, None, refusal)
        for i, preprocessed in enumerate(inputs)
    ]


def digit_pieces(preprocessed: Preprocessed) -> int:
    """How many separate digit-sized pieces of ink the input holds (1 for one digit)."""
    ink = preprocessed.stages.get("background flattened")
    if ink is None:  # an MNIST test image, one digit by construction
        return 1
    heights = [piece.box[3] - piece.box[1] for piece in find_pieces(ink)]
    if not heights:
        return 1
    return sum(height >= DIGIT_PIECE_HEIGHT * max(heights) for height in heights)


def mnist_input(image: np.ndarray) -> Preprocessed:
    """A stored MNIST image (28, 28) uint8 as network input, unchanged: it already is one."""
    if image.shape != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"Expected a {IMAGE_SIDE}x{IMAGE_SIDE} image, got {image.shape}.")
    scaled = image.astype(np.float32) / 255
    return Preprocessed(scaled, {MNIST_STAGE: scaled})


def probability_frame(proba: np.ndarray) -> pd.DataFrame:
    """Chart rows for probabilities (10,): digit as text, probability, and whether it is the top."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (N_CLASSES,):
        raise ValueError(f"Expected {N_CLASSES} probabilities, got shape {proba.shape}.")
    return pd.DataFrame(
        {
            "digit": [str(d) for d in range(N_CLASSES)],
            "probability": proba,
            "top": np.arange(N_CLASSES) == proba.argmax(),
        }
    )


def enlarge(image: np.ndarray, scale: int) -> Image.Image:
    """A 2-D image (H, W), uint8 or float in [0, 1], as a greyscale PIL image `scale` times larger.

    Nearest-neighbour keeps every pixel a crisp square, so the enlargement shows the real input.
    """
    if image.ndim != 2 or scale < 1:
        raise ValueError(f"Expected a 2-D image and a scale of at least 1, got {image.shape}.")
    return Image.fromarray(upscale(to_uint8(image), scale))


def network_view(preprocessed: Preprocessed) -> Image.Image:
    """The 28x28 network input enlarged NETWORK_VIEW_SCALE times, pixels kept square."""
    if preprocessed.image is None:
        raise ValueError("There is no network input; check has_digit first.")
    return enlarge(preprocessed.image, NETWORK_VIEW_SCALE)


def with_article(digit: int) -> str:
    """ "a 1", "an 8": the digit as a sentence says it."""
    return f"an {digit}" if digit == 8 else f"a {digit}"


def preview(image: Image.Image, side: int) -> Image.Image:
    """A copy of an uploaded image, in a mode every browser shows, at most `side` pixels across.

    Deep images are brought to 8 bits as the pipeline reads them (preprocess.to_8bit), since
    convert() would clip them to white.
    """
    eight = to_8bit(image)
    mode = "RGBA" if eight.has_transparency_data else "RGB"
    small = eight.convert(mode) if eight.mode != mode else eight.copy()
    small.thumbnail((side, side))
    return small


def stage_gallery(stages: dict[str, np.ndarray]) -> list[tuple[str, Image.Image]]:
    """The named preprocessing stages as (name, image), each at most STAGE_SIDE across.

    Small stages are enlarged by a whole factor, so their pixels stay square; large ones shrink.
    """
    gallery = []
    for name, image in stages.items():
        longest = max(image.shape)
        if longest <= STAGE_SIDE:
            shown = enlarge(image, STAGE_SIDE // longest)
        else:
            shown = Image.fromarray(to_uint8(image))
            shown.thumbnail((STAGE_SIDE, STAGE_SIDE))
        gallery.append((name, shown))
    return gallery


@dataclass(frozen=True)
class CurrentInput:
    """The input the app last read, shared with other pages: where it came from and the digit.

    `source` is "canvas", "upload" or "mnist"; `label` is the true digit when known (MNIST).
    """

    source: str
    preprocessed: Preprocessed = field(repr=False)
    name: str = ""
    label: int | None = None
