"""What the app shows, worked out without Streamlit: the reading, its chart data and images."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image

from digits.app.insights import percent_text, upscale
from digits.data.mnist import IMAGE_SIDE, N_CLASSES, to_uint8
from digits.data.preprocess import Preprocessed, to_8bit
from network import Classifier

# Below this top probability the app says it is unsure: the flag then holds most of the
# mistakes on redrawn test digits while going up on few drawings (docs/design-notes.md, "Not
# sure"; chosen again whenever the model changes).
LOW_CONFIDENCE = 0.9

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

    @property
    def has_digit(self) -> bool:
        """Whether there was a digit to read."""
        return self.proba is not None

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
        """Whether the top probability reaches LOW_CONFIDENCE."""
        return self.confidence >= LOW_CONFIDENCE

    @property
    def runner_up(self) -> int:
        """The second most probable digit."""
        return int(np.argsort(self._proba())[-2])

    def confidence_text(self) -> str:
        """The confidence as a percentage with one decimal, never rounded to a false 100%."""
        return percent_text(self.confidence, decimals=1)

    def message(self) -> str:
        """One plain sentence for the user when the reading needs one, else ""."""
        if not self.has_digit:
            return self.preprocessed.reason
        if self.is_sure:
            return ""
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
    if not preprocessed.has_digit:
        return Reading(preprocessed, None)
    return Reading(preprocessed, classifier.predict_proba(preprocessed.vector))


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
