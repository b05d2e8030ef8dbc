"""The samples database: created on first use, every answer kept, foreign files left alone."""

import csv
import datetime
import io
import sqlite3
import subprocess
import sys
import threading
import zipfile
from contextlib import closing

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from digits.app.user_store import (
    APPLICATION_ID,
    CSV_COLUMNS,
    DB_ENV,
    ORIGINAL_SIDE,
    SCHEMA_VERSION,
    StoreError,
    UserStore,
    default_path,
    original_png,
)
from digits.data.mnist import IMAGE_SIDE

# Writers that answer at the same moment, and how many answers each gives.
WRITERS = 6
ANSWERS_EACH = 25


def canvas_drawing(seed: int) -> np.ndarray:
    """A (280, 280, 4) RGBA canvas with a random white blob on black, as the app receives it."""
    rng = np.random.default_rng(seed)
    picture = np.zeros((280, 280, 4), np.uint8)
    picture[..., 3] = 255
    top, left = rng.integers(20, 180, 2)
    picture[top : top + 80, left : left + 30, :3] = 255
    return picture


def network_input(seed: int) -> np.ndarray:
    """A (28, 28) float32 input in [0, 1] with values no 8-bit image could hold exactly."""
    return np.random.default_rng(seed).random((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture
def store(tmp_path):
    return UserStore(tmp_path / "user" / "samples.sqlite")


# --- created on first use ----------------------------------------------------------------------


def test_the_file_and_its_folder_are_created_on_first_use_with_the_schema(tmp_path):
    path = tmp_path / "new" / "folder" / "samples.sqlite"
    assert UserStore(path).count() == 0
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(samples)")]
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert columns == ["id", "created", "label", "prediction", "source", "input", "original"]
    assert (app_id, version, journal) == (APPLICATION_ID, SCHEMA_VERSION, "wal")


def test_the_default_file_is_under_data_unless_the_environment_names_another(monkeypatch, tmp_path):
    monkeypatch.delenv(DB_ENV, raising=False)
    assert default_path() == ROOT / "data" / "user" / "samples.sqlite"
    monkeypatch.setenv(DB_ENV, str(tmp_path / "mine.sqlite"))
    assert default_path() == tmp_path / "mine.sqlite"
    assert UserStore().path == tmp_path / "mine.sqlite"


# --- round trip --------------------------------------------------------------------------------


def test_an_answer_comes_back_with_its_drawing_input_label_prediction_and_time(store):
    drawing, image = canvas_drawing(0), network_input(0)
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    sample_id = store.add(7, image, original_png(drawing), prediction=1, source="canvas")
    after = datetime.datetime.now(datetime.timezone.utc)

    (sample,) = store.samples()
    assert (sample.id, sample.label, sample.prediction) == (sample_id, 7, 1)
    assert sample.source == "canvas"
    assert sample.image.dtype == np.float32
    np.testing.assert_array_equal(sample.image, image)  # bit for bit, not via an 8-bit PNG
    assert before <= datetime.datetime.fromisoformat(sample.created) <= after
    np.testing.assert_array_equal(decode_png(store.original(sample_id)), drawing)


def test_an_answer_without_a_prediction_is_kept_too(store):
    store.add(3, network_input(1), original_png(canvas_drawing(1)))
    (sample,) = store.samples()
    assert (sample.label, sample.prediction) == (3, None)


def test_samples_come_back_oldest_first_and_as_training_arrays(store):
    for label in (4, 0, 9):
        store.add(label, network_input(label), original_png(canvas_drawing(label)))
    assert [s.label for s in store.samples()] == [4, 0, 9]
    images, labels = store.arrays()
    assert images.shape == (3, IMAGE_SIDE, IMAGE_SIDE)
    assert images.dtype == np.float32
    np.testing.assert_array_equal(labels, [4, 0, 9])
    np.testing.assert_array_equal(images[1], network_input(0))


def test_an_empty_store_gives_empty_training_arrays(store):
    images, labels = store.arrays()
    assert images.shape == (0, IMAGE_SIDE, IMAGE_SIDE)
    assert labels.shape == (0,)


def test_a_large_uploaded_photo_is_kept_at_most_512_pixels_across():
    photo = Image.new("RGB", (2000, 1000), (200, 190, 180))
    kept = Image.open(io.BytesIO(original_png(photo)))
    assert kept.size == (ORIGINAL_SIDE, ORIGINAL_SIDE // 2)


def test_numpy_integers_from_the_network_are_stored_as_digits(store):
    proba = np.eye(10, dtype=np.float32)[[4, 9]]
    label, prediction = proba.argmax(axis=1)
    store.add(label, network_input(0), b"png", prediction=prediction)
    (sample,) = store.samples()
    assert (sample.label, sample.prediction) == (4, 9)
    assert type(sample.prediction) is int


@pytest.mark.parametrize(
    ("label", "prediction", "shape", "message"),
    [
        (10, None, (28, 28), "label is a digit from 0 to 9"),
        (-1, None, (28, 28), "label is a digit from 0 to 9"),
        (3, 12, (28, 28), "prediction is a digit from 0 to 9"),
        (3, None, (784,), "28x28"),
    ],
)
def test_a_bad_label_prediction_or_input_shape_is_refused_and_nothing_is_stored(
    store, label, prediction, shape, message
):
    with pytest.raises(ValueError, match=message):
        store.add(label, np.zeros(shape, np.float32), b"", prediction=prediction)
    assert store.count() == 0


def test_an_unknown_sample_has_no_original(store):
    with pytest.raises(KeyError):
        store.original(12345)


# --- concurrent writers ------------------------------------------------------------------------


def test_answers_from_many_threads_at_once_are_all_kept(store):
    start = threading.Barrier(WRITERS)
    failures = []

    def writer(w: int) -> None:
        start.wait()
        try:
            for i in range(ANSWERS_EACH):
                store.add(i % 10, network_input(i), b"png", source=f"thread{w}-{i}")
        except Exception as exc:  # the assertion below names any that failed
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    sources = sorted(s.source for s in store.samples())
    expected = sorted(f"thread{w}-{i}" for w in range(WRITERS) for i in range(ANSWERS_EACH))
    assert sources == expected


def test_a_file_in_rollback_journal_mode_is_switched_to_wal_without_failing_a_writer(store):
    # SQLite refuses a journal-mode switch at once, busy timeout or not, while another
    # connection writes: the switch that made answers fail with "database is locked".
    UserStore(store.path).count()
    with closing(sqlite3.connect(store.path)) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    writer = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM samples")
    # The writer finishes while add() waits for it; add() must wait, not fail at once.
    finish = threading.Timer(0.2, writer.execute, ("COMMIT",))
    finish.start()
    try:
        store.add(3, network_input(0), b"png")
    finally:
        finish.join()
    assert store.count() == 1
    with closing(sqlite3.connect(store.path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


# Each process waits for the others' start signal (a file), then adds its answers.
_PROCESS_WRITER = """
import sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
from digits.app.user_store import UserStore
path, go, w, n = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], int(sys.argv[5])
while not go.exists():
    time.sleep(0.005)
store = UserStore(path)
for i in range(n):
    store.add(i % 10, np.full((28, 28), i / n, np.float32), b"png", source=f"{w}-{i}")
"""


def test_answers_from_several_processes_at_once_on_a_new_file_are_all_kept(tmp_path):
    path, go = tmp_path / "samples.sqlite", tmp_path / "go"
    command = [sys.executable, "-c", _PROCESS_WRITER, str(ROOT), str(path), str(go)]
    processes = [
        subprocess.Popen([*command, f"p{w}", str(ANSWERS_EACH)], stderr=subprocess.PIPE, text=True)
        for w in range(WRITERS)
    ]
    go.touch()  # all start together, on a file none of them has created yet
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * WRITERS, errors
    sources = sorted(s.source for s in UserStore(path).samples())
    assert sources == sorted(f"p{w}-{i}" for w in range(WRITERS) for i in range(ANSWERS_EACH))


# --- files that are not ours -------------------------------------------------------------------


def assert_one_clear_sentence(exc: StoreError, path) -> None:
    message = str(exc)
    assert "\n" not in message
    assert str(path) in message
    assert DB_ENV in message, "the message says how to use another file"


@pytest.mark.parametrize(
    "content",
    [b"these are my notes, not a database\n" * 200, b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["text file", "damaged database"],
)
def test_a_file_that_is_not_a_database_gets_one_clear_message_and_is_left_as_it_is(
    tmp_path, content
):
    path = tmp_path / "samples.sqlite"
    path.write_bytes(content)
    store = UserStore(path)
    for use in (store.count, store.samples, store.export_zip,
                lambda: store.add(1, network_input(0), b"png")):  # fmt: skip
        with pytest.raises(StoreError, match="not a samples database or is damaged") as caught:
            use()
        assert_one_clear_sentence(caught.value, path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.sqlite"]


def test_another_programs_database_gets_one_clear_message_and_is_left_as_it_is(tmp_path):
    path = tmp_path / "samples.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    conn.execute("INSERT INTO invoices (amount) VALUES (12.5)")
    conn.commit()
    conn.close()
    content = path.read_bytes()
    store = UserStore(path)
    with pytest.raises(StoreError, match="database of another program") as caught:
        store.add(1, network_input(0), b"png")
    assert_one_clear_sentence(caught.value, path)
    assert path.read_bytes() == content
    conn = sqlite3.connect(path)
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    conn.close()
    assert tables == ["invoices"]


def test_a_database_from_a_newer_version_of_the_app_is_refused(store):
    store.count()
    conn = sqlite3.connect(store.path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer version") as caught:
        store.samples()
    assert_one_clear_sentence(caught.value, store.path)


def test_a_folder_where_the_file_should_be_gets_one_clear_message(tmp_path):
    with pytest.raises(StoreError, match="is a folder") as caught:
        UserStore(tmp_path).count()
    assert_one_clear_sentence(caught.value, tmp_path)


# --- delete and export -------------------------------------------------------------------------


def test_delete_removes_only_the_picked_samples_and_says_how_many(store):
    ids = [store.add(d, network_input(d), b"png") for d in (1, 2, 3)]
    assert store.delete([ids[0], ids[2], 999]) == 2
    assert [s.id for s in store.samples()] == [ids[1]]
    assert store.delete([]) == 0
    assert store.count() == 1


def test_export_is_a_zip_of_input_and_original_pngs_with_a_csv_of_every_sample(store):
    drawings = [canvas_drawing(s) for s in range(3)]
    images = [network_input(s) for s in range(3)]
    labels, predictions = [5, 0, 5], [5, 8, None]
    ids = [
        store.add(label, image, original_png(drawing), prediction=p, source="canvas")
        for label, image, drawing, p in zip(labels, images, drawings, predictions, strict=True)
    ]
    archive = zipfile.ZipFile(io.BytesIO(store.export_zip()))
    rows = list(csv.DictReader(io.StringIO(archive.read("samples.csv").decode())))

    assert list(rows[0]) == CSV_COLUMNS
    assert [int(r["id"]) for r in rows] == ids
    assert [int(r["label"]) for r in rows] == labels
    assert [r["prediction"] for r in rows] == ["5", "8", ""]
    names = set(archive.namelist())
    assert len(names) == 2 * len(ids) + 1, "two PNGs per sample and the CSV"
    for row, image, drawing in zip(rows, images, drawings, strict=True):
        small = decode_png(archive.read(row["input_png"]))
        assert small.shape == (IMAGE_SIDE, IMAGE_SIDE)
        np.testing.assert_allclose(small / 255, image, atol=0.5 / 255 + 1e-6)
        np.testing.assert_array_equal(decode_png(archive.read(row["original_png"])), drawing)


def test_export_of_an_empty_store_has_just_the_csv_header(store):
    archive = zipfile.ZipFile(io.BytesIO(store.export_zip()))
    assert archive.namelist() == ["samples.csv"]
    assert archive.read("samples.csv").decode().strip() == ",".join(CSV_COLUMNS)
