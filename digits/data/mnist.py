"""Load the four MNIST IDX files into uint8 arrays, checking them against the originals."""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digits import PROJECT_ROOT

IMAGE_SIDE = 28
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE
N_CLASSES = 10
DATA_DIR = PROJECT_ROOT / "data" / "mnist"
# MNIST's training set; its test set has the other 10,000.
N_TRAIN = 60_000
# MNIST training digits drawn as people draw them (drawn_digits.py makes the file): only the
# first TRAIN_SOURCES are, as the last 5,000 are train.py's validation split.
DRAWN_PATH = DATA_DIR.parent / "drawn" / "train-drawn.npz"
TRAIN_SOURCES = N_TRAIN - 5_000
# The command that draws DRAWN_PATH again.
REDRAW = "`python -m digits.data.drawn_digits`"

# Hard-coded rather than read from data/mnist/SHA256SUMS, so a file replaced together with
# its SHA256SUMS entry is still caught; these are the digests of the decompressed originals.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

_GZIP_MAGIC = b"\x1f\x8b"
_LABELS_MAGIC = 0x00000801
_IMAGES_MAGIC = 0x00000803
_NDIM = {_LABELS_MAGIC: 1, _IMAGES_MAGIC: 3}


class DatasetError(Exception):
    """A dataset file is missing or differs from the original MNIST; the message says what to do."""


@dataclass(frozen=True)
class Mnist:
    """MNIST as read-only uint8 arrays: images (n, 28, 28), 0 = background; labels (n,) in 0-9."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def test_only(self) -> Mnist:
        """The test set with no training images, so that a caller can let those go."""
        empty = np.empty((0, *self.train_images.shape[1:]), self.train_images.dtype)
        return Mnist(empty, self.train_labels[:0].copy(), self.test_images, self.test_labels)


def _show(path: Path | str) -> str:
    """The path as the user would type it: relative to the working directory when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _read_content(path: Path | str) -> tuple[bytes, bool]:
    """The file's IDX bytes, decompressed if it is gzip (by magic bytes), and whether it was."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise DatasetError(
            f"{_show(path)} could not be read ({err.strerror}); "
            "point --data-dir at a folder with the four MNIST files."
        ) from err
    if not raw.startswith(_GZIP_MAGIC):
        return raw, False
    try:
        return gzip.decompress(raw), True
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DatasetError(
            f"{_show(path)} is a truncated or damaged gzip file ({err}); "
            "copy the original file again."
        ) from err


def _parse_idx(content: bytes, path: Path | str, gzipped: bool) -> np.ndarray:
    """The uint8 array an IDX byte string holds: labels (n,) or images (n, rows, cols)."""
    where = " after decompression" if gzipped else ""
    if len(content) < 4:
        raise DatasetError(
            f"{_show(path)} is truncated: it has {len(content)} bytes{where}, too few for an "
            "IDX header; copy the original file again."
        )
    magic = int.from_bytes(content[:4], "big")
    if magic not in _NDIM:
        raise DatasetError(
            f"{_show(path)} is not an MNIST IDX file: its magic number is 0x{magic:08x}, "
            f"expected 0x{_LABELS_MAGIC:08x} (labels) or 0x{_IMAGES_MAGIC:08x} (images); "
            "copy the original file again."
        )
    ndim = _NDIM[magic]
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DatasetError(
            f"{_show(path)} is truncated: it has {len(content)} bytes{where}, too few for its "
            f"{header_size}-byte IDX header; copy the original file again."
        )
    shape = tuple(int(d) for d in np.frombuffer(content, ">u4", count=ndim, offset=4))
    expected = header_size + math.prod(shape)
    if len(content) != expected:
        problem = "is truncated" if len(content) < expected else "is longer than its header says"
        raise DatasetError(
            f"{_show(path)} {problem}: expected {expected} bytes{where}, got {len(content)}; "
            "copy the original file again."
        )
    return np.frombuffer(content, np.uint8, offset=header_size).reshape(shape)


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file, gzipped or raw, as read-only uint8: labels (n,) or images (n, h, w)."""
    content, gzipped = _read_content(path)
    return _parse_idx(content, path, gzipped)


def find_file(data_dir: Path | str, name: str) -> Path:
    """The path of canonical MNIST file `name` in data_dir, as .gz, raw or Kaggle `.idx` naming."""
    kaggle = name.replace("-idx", ".idx")
    candidates = [f"{name}.gz", name, kaggle, f"{kaggle}.gz"]
    for candidate in candidates:
        path = Path(data_dir) / candidate
        if path.is_file():
            return path
    raise DatasetError(
        f"{_show(data_dir)} has no {name} (looked for {', '.join(candidates)}); "
        "point --data-dir at a folder with the four MNIST files."
    )


def _load_file(path: Path, name: str, verify: bool) -> np.ndarray:
    """MNIST file `name` at path as uint8, checked for kind and size and, if asked, SHA-256."""
    content, gzipped = _read_content(path)
    array = _parse_idx(content, path, gzipped)
    kind = "images" if "images" in name else "labels"
    if kind == "images" and array.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        got = "labels" if array.ndim == 1 else "x".join(map(str, array.shape[1:])) + " images"
        raise DatasetError(
            f"{_show(path)} holds {got}, expected {IMAGE_SIDE}x{IMAGE_SIDE} images; "
            "copy the original file again."
        )
    if kind == "labels" and array.ndim != 1:
        raise DatasetError(
            f"{_show(path)} holds images, expected labels; copy the original file again."
        )
    if verify:
        digest = hashlib.sha256(content).hexdigest()
        if digest != SHA256[name]:
            raise DatasetError(
                f"{_show(path)} differs from the original MNIST {name}: the SHA-256 of its "
                f"decompressed content is {digest}, expected {SHA256[name]}; "
                "copy the original file again."
            )
    return array


def _check_labels(labels: np.ndarray, images: np.ndarray, path: Path) -> None:
    """Raise DatasetError unless labels (n,) at path match images (n, 28, 28) and lie in 0-9."""
    if len(labels) != len(images):
        raise DatasetError(
            f"{_show(path)} has {len(labels)} labels but its images file has {len(images)} "
            "images; copy the original files again."
        )
    if labels.size and labels.max() >= N_CLASSES:
        raise DatasetError(
            f"{_show(path)} contains label {labels.max()}, outside 0-{N_CLASSES - 1}; "
            "copy the original file again."
        )


def load_mnist(data_dir: Path | str = DATA_DIR, verify: bool = True) -> Mnist:
    """Load MNIST from data_dir; with verify, each file must match the original's SHA-256."""
    # Find all four first so a wrong --data-dir fails before any decompression.
    paths = {name: find_file(data_dir, name) for name in SHA256}
    arrays = {name: _load_file(path, name, verify) for name, path in paths.items()}
    for prefix in ("train", "t10k"):
        labels = f"{prefix}-labels-idx1-ubyte"
        _check_labels(arrays[labels], arrays[f"{prefix}-images-idx3-ubyte"], paths[labels])
    return Mnist(
        train_images=arrays["train-images-idx3-ubyte"],
        train_labels=arrays["train-labels-idx1-ubyte"],
        test_images=arrays["t10k-images-idx3-ubyte"],
        test_labels=arrays["t10k-labels-idx1-ubyte"],
    )


def to_input(images: np.ndarray) -> np.ndarray:
    """The network's input for uint8 images (n, 28, 28): float32 (n, 784) scaled to [0, 1]."""
    return np.multiply(images.reshape(len(images), N_PIXELS), np.float32(1 / 255), dtype=np.float32)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images of floats in [0, 1], any shape, as MNIST stores pixels: rounded uint8 0-255.

    uint8 images pass unchanged; values outside [0, 1] are clipped first.
    """
    if images.dtype == np.uint8:
        return images
    return (np.clip(images, 0, 1) * 255 + 0.5).astype(np.uint8)


def load_drawn_training_set(path: Path | str = DRAWN_PATH) -> dict[str, np.ndarray]:
    """The drawn training set: images (m, 28, 28) uint8, labels (m,), source (m,), style (m,).

    source is each drawing's MNIST training image; style its index in drawn_digits.STYLES.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            drawn = {key: z[key] for key in ("images", "labels", "source", "style")}
    except FileNotFoundError:
        raise DatasetError(
            f"{path} is missing; run {REDRAW} to draw it again, or train "
            "without drawn digits (train.py --no-drawn, or untick them on the Train page)."
        ) from None
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(
            f"{path} is not a drawn-digit set ({err}); run {REDRAW} to draw it again."
        ) from None
    images, labels, source, style = (drawn[k] for k in ("images", "labels", "source", "style"))
    n = len(images)
    if (
        images.dtype != np.uint8
        or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE)
        or labels.dtype != np.uint8
        or not np.issubdtype(source.dtype, np.integer)
        or style.dtype != np.uint8
        or any(a.shape != (n,) for a in (labels, source, style))
        or (n and (labels.max() >= N_CLASSES or source.min() < 0 or source.max() >= TRAIN_SOURCES))
    ):
        raise DatasetError(
            f"{path} does not hold uint8 28x28 digits with labels and sources; run "
            f"{REDRAW} to draw it again."
        )
    return drawn


def drawn_for(
    images: np.ndarray, labels: np.ndarray, drawn: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The drawn copies (n, 28, 28) and labels (n,) of the digits among `images`.

    `images` are the first n MNIST training images (a split or a --limit subset); only drawn
    digits whose source is among them are kept, so the validation split never leaks in.
    """
    keep = drawn["source"] < len(images)
    if not np.array_equal(drawn["labels"][keep], labels[drawn["source"][keep]]):
        raise DatasetError(
            "The drawn digits' labels do not match these training images: they were drawn from "
            f"another copy or order of MNIST; run {REDRAW} to draw them again."
        )
    return drawn["images"][keep], drawn["labels"][keep].astype(labels.dtype)
