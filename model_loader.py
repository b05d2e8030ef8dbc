"""Reading and writing `model_params.pkl`: plain arrays in, plain arrays out, nothing executed.

The file is a pickled dict `{"weights": [W1, W2, W3], "biases": [b1, b2, b3], ...metadata}`
with W_i of shape (n_in, n_out), float32, for an input of 784 pixels in [0, 1] (white digit
on black) and 10 outputs. Pickle can run arbitrary code while loading, so this module
unpickles through an allow-list that admits only what NumPy arrays are rebuilt from.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np

from digits.data.mnist import N_CLASSES, N_PIXELS
from layers import ACTIVATIONS
from network import OUTPUTS, Classifier, layer_sizes

MODEL_PATH = Path(__file__).resolve().parent / "model_params.pkl"
RETRAIN_HINT = "run `python train.py` to train a new one"

# (module, name) pairs a pickled NumPy array needs, under NumPy 2 and NumPy 1 names.
ALLOWED_GLOBALS = {
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
}
# Protocols 0-2 have no bytes type, so NumPy writes an array's bytes as a latin-1 string and
# `_codecs.encode(text, "latin1")`; that call, and only with that codec, is allowed.
LATIN1_ENCODE = ("_codecs", "encode")

# Bounds a model file must keep before it is unpickled: its size, the number of pickle
# operations (the shipped file has a few hundred) and how deeply its containers nest.
MAX_MODEL_BYTES = 256 * 1024 * 1024
MAX_PICKLE_OPS = 100_000
MAX_NESTING = 32


# The top probabilities under which a reading is "not sure" and "not a digit", for a model
# file that does not carry its own (train.py stores those it chose on the validation split).
DEFAULT_REFUSAL = {"unsure_below": 0.9, "not_a_digit_below": 0.5}


class ModelFileError(Exception):
    """A model file is missing, unsafe or malformed; the message names it and says what to do."""


class _ForbiddenGlobal(pickle.UnpicklingError):
    """Raised, before anything runs, for a global outside the allow-list."""


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """`_codecs.encode` as protocol-2 array pickles use it, refusing any other codec."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _ForbiddenGlobal(f"_codecs.encode with {encoding!r}")
    return text.encode("latin-1")


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals NumPy arrays are rebuilt from."""

    def find_class(self, module: str, name: str):
        if (module, name) == LATIN1_ENCODE:
            return _latin1_encode
        if (module, name) not in ALLOWED_GLOBALS:
            raise _ForbiddenGlobal(f"{module}.{name}")
        return super().find_class(module, name)


def load_params(path: str | os.PathLike = MODEL_PATH) -> dict:
    """Read and validate a model file; returns its dict with float32 weights and biases."""
    path = Path(path)
    raw = unpickle_safely(path, _read_model_file(path))
    try:
        return validate_params(raw)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}; {RETRAIN_HINT}.") from None


def _read_model_file(path: Path) -> bytes:
    """The bytes of a model file, or ModelFileError saying why there are none."""
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file; {RETRAIN_HINT}.")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MODEL_BYTES + 1)
    except FileNotFoundError:
        raise ModelFileError(f"{path} was not found; {RETRAIN_HINT}.") from None
    except PermissionError:
        raise ModelFileError(f"{path} cannot be read (permission denied).") from None
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"{path} is larger than any model file ({MAX_MODEL_BYTES // 2**20} MB); {RETRAIN_HINT}."
        )
    return data


def unpickle_safely(path: Path, data: bytes):
    """Unpickle a model file's bytes with nothing executed and every claim checked first."""
    try:
        _check_operations(data)
        raw = _ArraysOnlyUnpickler(io.BytesIO(data)).load()
        _check_nesting(raw)
    except _ForbiddenGlobal as exc:
        raise ModelFileError(
            f"{path} was refused: it asks to load {exc}, which a model file never needs "
            f"(it may be an attempt to run code); {RETRAIN_HINT}."
        ) from None
    # Whatever a damaged or crafted pickle makes the unpickler or NumPy's rebuilding raise.
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        OverflowError,
        MemoryError,
        RecursionError,
        struct.error,
    ) as exc:
        raise ModelFileError(
            f"{path} is truncated or not a model file ({type(exc).__name__}); {RETRAIN_HINT}."
        ) from None
    return raw


def _check_operations(data: bytes) -> None:
    """Walk the pickle's operations without building anything; raises ValueError for a length
    beyond the end of the file (so nothing is allocated for it) or too many operations."""
    # pickletools warns about odd escapes in protocol-0 strings; the unpickler judges those.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for count, _ in enumerate(pickletools.genops(data), 1):
            if count > MAX_PICKLE_OPS:
                raise ValueError(f"more than {MAX_PICKLE_OPS} pickle operations")


def _check_nesting(raw) -> None:
    """Raises ValueError if containers (dicts, lists, tuples, object arrays) nest deeper than
    MAX_NESTING, which no model file does and code that walks the metadata could not survive."""
    level = [raw]
    for _ in range(MAX_NESTING):
        level = [child for item in level for child in _children(item)]
        if not level:
            return
    raise ValueError(f"containers nested more than {MAX_NESTING} deep")


def _children(item) -> list:
    if isinstance(item, dict):
        return list(item.values())
    if isinstance(item, list | tuple):
        return list(item)
    if isinstance(item, np.ndarray) and item.dtype == object:
        return list(item.ravel())
    return []


def validate_params(raw) -> dict:
    """Check a params dict and return a normalised copy; raises ValueError saying what is wrong.

    Accepts the (n_in, n_out) layout this project writes and the transposed (n_out, n_in) layout
    with (n_out, 1) biases, as in Nielsen's network.py.
    """
    if not isinstance(raw, dict) or "weights" not in raw or "biases" not in raw:
        raise ValueError("it is not a dict with 'weights' and 'biases'")
    weights, biases = raw["weights"], raw["biases"]
    if not isinstance(weights, (list, tuple)) or not isinstance(biases, (list, tuple)):
        raise ValueError("'weights' and 'biases' must be lists of arrays")
    if not weights or len(weights) != len(biases):
        raise ValueError(f"it has {len(weights)} weight arrays but {len(biases)} bias arrays")
    for name, arrays in (("weights", weights), ("biases", biases)):
        for i, a in enumerate(arrays, 1):
            if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
                kind = getattr(a, "dtype", type(a).__name__)
                raise ValueError(f"layer {i} {name} must be a float array, not {kind}")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"layer {i} {name} contain NaN or infinite values")
    weights = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
    biases = [np.ascontiguousarray(b, dtype=np.float32).ravel() for b in biases]
    if any(w.ndim != 2 for w in weights):
        raise ValueError("every weight array must be 2-D")
    if weights[0].shape[0] != N_PIXELS and weights[0].shape[1] == N_PIXELS:
        weights = [np.ascontiguousarray(w.T) for w in weights]
    sizes = layer_sizes(weights)
    if sizes[0] != N_PIXELS or sizes[-1] != N_CLASSES:
        raise ValueError(
            f"it maps {sizes[0]} inputs to {sizes[-1]} outputs, not {N_PIXELS} to {N_CLASSES}"
        )
    for i, (w, b) in enumerate(zip(weights, biases, strict=True), 1):
        if i > 1 and w.shape[0] != weights[i - 2].shape[1]:
            raise ValueError(
                f"layer {i} weights have shape {w.shape} but layer {i - 1} has "
                f"{weights[i - 2].shape[1]} outputs"
            )
        if b.shape != (w.shape[1],):
            raise ValueError(f"layer {i} biases have {b.size} entries, expected {w.shape[1]}")
    activation = raw.get("activation", "relu")
    output = raw.get("output", "softmax")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}")
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}")
    return {
        **raw,
        "weights": weights,
        "biases": biases,
        "sizes": sizes,
        "activation": activation,
        "output": output,
        "refusal": validate_refusal(raw.get("refusal", DEFAULT_REFUSAL)),
    }


def validate_refusal(raw) -> dict[str, float]:
    """The refusal thresholds as plain floats, 0 <= not_a_digit_below <= unsure_below <= 1."""
    if not isinstance(raw, dict) or set(raw) != set(DEFAULT_REFUSAL):
        raise ValueError(f"'refusal' must be a dict with the keys {sorted(DEFAULT_REFUSAL)}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw.values()):
        raise ValueError("the 'refusal' thresholds must be numbers")
    refusal = {key: float(value) for key, value in raw.items()}
    if not 0 <= refusal["not_a_digit_below"] <= refusal["unsure_below"] <= 1:
        raise ValueError(
            "the 'refusal' thresholds must satisfy 0 <= not_a_digit_below <= unsure_below <= 1"
        )
    return refusal


def load_classifier(path: str | os.PathLike = MODEL_PATH) -> Classifier:
    """The network stored in a model file, ready to predict; raises ModelFileError."""
    return Classifier(load_params(path))


def save_params(params: dict, path: str | os.PathLike = MODEL_PATH) -> Path:
    """Write a params dict atomically: a crash mid-write leaves the old file, never half a file."""
    validate_params(params)
    return atomic_write_bytes(Path(path), pickle.dumps(params, protocol=5))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Replace `path` with `data` via a synced temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); the file it replaces keeps its mode, and a new
        # one gets the usual 0644, so a server running as another user can still read it.
        os.fchmod(fd, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Persist the rename itself, so after a power cut the name points at the new file.
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path
