"""The digits users taught the app, in SQLite: each drawing, its 28x28 input, label and prediction.

One file, data/user/samples.sqlite or the one $DIGITS_USER_DB names, shared by every session
and process. Each call opens its own connection, so threads never share one; the WAL journal
lets readers go on while someone writes, and the busy timeout makes writers queue instead of
failing, so answers given at the same moment are all kept. The file is created on first use;
a file that is not this app's database is refused and left exactly as it is.
"""

from __future__ import annotations

import csv
import datetime
import io
import os
import sqlite3
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from digits import PROJECT_ROOT
from digits.data.mnist import IMAGE_SIDE, N_CLASSES, to_uint8
from digits.data.preprocess import WORK_SIDE

DB_ENV = "DIGITS_USER_DB"
DEFAULT_PATH = PROJECT_ROOT / "data" / "user" / "samples.sqlite"
# Written into the SQLite header, so a database of another program is never taken for ours.
APPLICATION_ID = 0x44474954  # "DGIT"
SCHEMA_VERSION = 1
# How long a writer waits for another one to finish before giving up; writes take milliseconds.
BUSY_TIMEOUT_S = 30.0
# Uploaded photos are kept at most this many pixels across: what preprocessing works from.
ORIGINAL_SIDE = WORK_SIDE

SCHEMA = """
CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    prediction INTEGER CHECK (prediction BETWEEN 0 AND 9),
    source TEXT NOT NULL,
    input BLOB NOT NULL,
    original BLOB NOT NULL
)
"""
# `input` holds the 28x28 network input as float32, row by row, little-endian.
INPUT_DTYPE = np.dtype("<f4")
CSV_COLUMNS = ["id", "created", "label", "prediction", "source", "input_png", "original_png"]


class StoreError(Exception):
    """The samples database cannot be used; the message names the file and says what to do."""


@dataclass(frozen=True)
class Sample:
    """One taught digit: image (28, 28) float32 in [0, 1], the true label and the prediction."""

    id: int
    created: str
    label: int
    prediction: int | None
    source: str
    image: np.ndarray


def default_path() -> Path:
    """The database the app uses: $DIGITS_USER_DB if set, else data/user/samples.sqlite."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_PATH)


def original_png(image: Image.Image | np.ndarray) -> bytes:
    """What the user drew (RGBA array) or uploaded (PIL image) as PNG, at most 512 px across."""
    picture = Image.fromarray(image) if isinstance(image, np.ndarray) else image.copy()
    if picture.mode not in ("1", "L", "LA", "RGB", "RGBA", "I", "I;16"):
        picture = picture.convert("RGBA" if picture.has_transparency_data else "RGB")
    picture.thumbnail((ORIGINAL_SIDE, ORIGINAL_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def input_png(image: np.ndarray) -> bytes:
    """A 28x28 network input, float in [0, 1], as an 8-bit greyscale PNG."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, "PNG")
    return buffer.getvalue()


class UserStore:
    """The samples database at `path` (default_path() when None), created on first use."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_path()

    def add(
        self,
        label: int,
        image: np.ndarray,
        original: bytes,
        prediction: int | None = None,
        source: str = "canvas",
    ) -> int:
        """Store one answer: the true `label`, the input (28, 28) and the PNG original; its id."""
        image = np.asarray(image, dtype=INPUT_DTYPE)
        if image.shape != (IMAGE_SIDE, IMAGE_SIDE):
            raise ValueError(f"Expected a {IMAGE_SIDE}x{IMAGE_SIDE} input, got {image.shape}.")
        for name, digit in (("label", label), ("prediction", prediction)):
            if digit is not None and not 0 <= digit < N_CLASSES:
                raise ValueError(f"A {name} is a digit from 0 to 9, got {digit}.")
        # int(): sqlite3 would store a NumPy integer (an argmax, say) as a blob.
        prediction = None if prediction is None else int(prediction)
        created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        with self._connect() as conn:
            cursor = conn.execute(
                "INSERT INTO samples (created, label, prediction, source, input, original) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (created, int(label), prediction, source, image.tobytes(), original),
            )
            row_id = cursor.lastrowid
            assert row_id is not None, "an INSERT sets lastrowid"
            return row_id

    def samples(self) -> list[Sample]:
        """Every stored sample, oldest first, without the originals."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, created, label, prediction, source, input FROM samples ORDER BY id"
            ).fetchall()
        return [
            Sample(id, created, label, prediction, source, _decode_input(blob))
            for id, created, label, prediction, source, blob in rows
        ]

    def count(self) -> int:
        """How many samples are stored."""
        with self._connect() as conn:
            return conn.execute("SELECT count(*) FROM samples").fetchone()[0]

    def original(self, sample_id: int) -> bytes:
        """The PNG of what the user drew or uploaded for one sample."""
        with self._connect() as conn:
            row = conn.execute("SELECT original FROM samples WHERE id = ?", (sample_id,)).fetchone()
        if row is None:
            raise KeyError(sample_id)
        return row[0]

    def delete(self, ids: Iterable[int]) -> int:
        """Remove the samples with these ids; returns how many there were."""
        ids = [int(i) for i in ids]
        if not ids:
            return 0
        with self._connect() as conn:
            marks = ",".join("?" * len(ids))
            return conn.execute(f"DELETE FROM samples WHERE id IN ({marks})", ids).rowcount

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All samples as training data: images (n, 28, 28) float32 and labels (n,) int64."""
        samples = self.samples()
        images = np.zeros((len(samples), IMAGE_SIDE, IMAGE_SIDE), np.float32)
        for i, sample in enumerate(samples):
            images[i] = sample.image
        return images, np.array([s.label for s in samples], dtype=np.int64)

    def export_zip(self) -> bytes:
        """A zip of every sample: inputs/*.png (28x28), originals/*.png and samples.csv."""
        table = io.StringIO()
        writer = csv.writer(table)
        writer.writerow(CSV_COLUMNS)
        buffer = io.BytesIO()
        with self._connect() as conn, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            rows = conn.execute(
                "SELECT id, created, label, prediction, source, input, original "
                "FROM samples ORDER BY id"
            )
            for id, created, label, prediction, source, blob, original in rows:
                small = f"inputs/{id:05d}_label{label}.png"
                big = f"originals/{id:05d}.png"
                zf.writestr(small, input_png(_decode_input(blob)))
                zf.writestr(big, original)
                writer.writerow([id, created, label, prediction, source, small, big])
            zf.writestr("samples.csv", table.getvalue())
        return buffer.getvalue()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection to the checked (or newly created) database, closed afterwards."""
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder; set {DB_ENV} to a file path instead.")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"The folder for {self.path} could not be created ({exc.strerror}); "
                f"set {DB_ENV} to a file in a folder you can write to."
            ) from None
        conn = None
        try:
            # Autocommit: each statement is its own transaction unless one is begun explicitly.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._prepare(conn)
            yield conn
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            if type(exc) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
                raise  # integrity and programming errors are bugs: keep the traceback
            if type(exc) is sqlite3.DatabaseError:  # "file is not a database", "malformed"
                raise StoreError(
                    f"{self.path} is not a samples database or is damaged ({exc}); it was left "
                    f"as it is: move it away or set {DB_ENV} to another file."
                ) from None
            raise StoreError(
                f"{self.path} could not be used ({exc}); check that its folder is writable "
                "and that no other program holds it, then try again."
            ) from None
        finally:
            if conn is not None:
                conn.close()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Check that the file is ours and ready (the table, WAL), setting up one that is not."""
        # _is_ours reads twice; in one transaction both reads see the same version of the file,
        # not an empty file's id and then the table another writer has just created.
        conn.execute("BEGIN")
        ready = self._is_ours(conn) and conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute("COMMIT")
        if not ready:
            self._set_up()

    def _set_up(self) -> None:
        """Create the table in an empty file and turn on WAL, holding the file alone throughout.

        Turning on WAL upgrades a read of the file to a write, which SQLite refuses at once,
        whatever the busy timeout, while another connection writes; so no other may hold it.
        """
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            # Two first writers queue here; the second finds the file ready.
            conn.execute("BEGIN EXCLUSIVE")
            if not self._is_ours(conn):
                conn.execute(SCHEMA)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                conn.execute("COMMIT")
                return
            # Exclusive locking mode keeps this transaction's lock after COMMIT, up to close.
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()

    def _is_ours(self, conn: sqlite3.Connection) -> bool:
        """True for this app's database, False for an empty file; raises for anything else."""
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id == APPLICATION_ID:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer version of this app; update the app "
                    f"or set {DB_ENV} to another file."
                )
            return True
        if app_id == 0 and not conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            return False
        raise StoreError(
            f"{self.path} is a database of another program, not this app's samples; it was "
            f"left as it is: move it away or set {DB_ENV} to another file."
        )


def _decode_input(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, INPUT_DTYPE).reshape(IMAGE_SIDE, IMAGE_SIDE).astype(np.float32)
