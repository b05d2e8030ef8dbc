"""The real `predict_single.py` command, run as a user would, on images made from MNIST digits."""

import itertools
import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from helpers.hostile import hostile_images, hostile_models, png_bytes, with_claimed_size
from PIL import Image

from digits.data.preprocess import load_image, preprocess
from model_loader import load_classifier

LINE = re.compile(
    r"^(?P<path>\S+): (?P<unsure>not sure: )?(?P<digit>\d) \(\d+\.\d%\)  "
    r"next: \d \(\d+\.\d%\), \d \(\d+\.\d%\)$"
)
EX_DATAERR, EX_NOINPUT = 65, 66
EX_UNSURE, EX_NOT_A_DIGIT = 3, 4


def run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "predict_single.py", *map(str, args)],
        capture_output=True,
        text=stdin is None,
        input=stdin,
        cwd=ROOT,
        timeout=60,
    )


def enlarged(digit: np.ndarray, size: int) -> np.ndarray:
    """A (28, 28) uint8 MNIST digit (white on black) scaled to (size, size)."""
    return np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR))


def canvas_png(digit: np.ndarray, path):
    """Dark ink off-centre on a 280x280 white canvas, as a drawing app would save it."""
    canvas = Image.new("L", (280, 280), 255)
    canvas.paste(Image.fromarray(255 - enlarged(digit, 140)), (30, 110))
    canvas.save(path)


def photo_jpeg(digit: np.ndarray, path, rng: np.random.Generator):
    """Dark ink on warm paper lit from one side, with sensor noise, saved as a JPEG."""
    height, width = 300, 400
    ink = np.zeros((height, width), np.float32)
    ink[60:240, 150:330] = enlarged(digit, 180) / 255
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    paper = 0.92 - 0.3 * cols / width - 0.1 * rows / height
    gray = paper * (1 - 0.8 * ink) + rng.normal(0, 0.03, ink.shape)
    gray = np.clip(gray * 255, 0, 255).astype(np.uint8)
    rgb = np.stack([gray, gray, (gray * 0.93).astype(np.uint8)], axis=-1)
    Image.fromarray(rgb).save(path, quality=90)


def transparent_png(digit: np.ndarray, path):
    """Black ink on a transparent background (RGBA), the ink only in the alpha channel."""
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[20:132, 70:182, 3] = enlarged(digit, 112)
    Image.fromarray(rgba).save(path)


@pytest.fixture(scope="module")
def digits(mnist, tmp_path_factory):
    """Ten image files, the first test-set example of each digit in one of three styles."""
    folder = tmp_path_factory.mktemp("digits")
    rng = np.random.default_rng(0)
    files = {}
    for label in range(10):
        digit = mnist.test_images[np.flatnonzero(mnist.test_labels == label)[0]]
        style = label % 3
        path = (
            folder / f"{label}_{('canvas', 'photo', 'ink')[style]}.{'jpg' if style == 1 else 'png'}"
        )
        if style == 0:
            canvas_png(digit, path)
        elif style == 1:
            photo_jpeg(digit, path, rng)
        else:
            transparent_png(digit, path)
        files[label] = path
    return files


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """Files a user might pass by mistake, by the stderr phrase and exit status they get."""
    folder = tmp_path_factory.mktemp("bad")
    (folder / "notes.png").write_text("shopping list: milk, eggs\n")
    noise = np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8)
    whole = png_bytes(Image.fromarray(noise))
    (folder / "truncated.png").write_bytes(whole[: len(whole) * 2 // 3])
    (folder / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><path/></svg>')
    tiny = png_bytes(Image.new("1", (1, 1)))
    (folder / "bomb.png").write_bytes(with_claimed_size(tiny, 100_000, 100_000))
    # Above Pillow's warning threshold but below its error: must still be one line.
    (folder / "big.png").write_bytes(with_claimed_size(tiny, 9_500, 9_500))
    (folder / "a folder").mkdir()
    return {
        "missing": (folder / "missing.png", "no file", EX_NOINPUT),
        "directory": (folder / "a folder", "folder", EX_DATAERR),
        "text named .png": (folder / "notes.png", "not an image", EX_DATAERR),
        "truncated PNG": (folder / "truncated.png", "damaged or incomplete", EX_DATAERR),
        "SVG": (folder / "drawing.svg", "SVG", EX_DATAERR),
        "decompression bomb": (folder / "bomb.png", "too large", EX_DATAERR),
        "huge claimed size": (folder / "big.png", "too large", EX_DATAERR),
    }


@pytest.fixture(scope="module")
def blank(tmp_path_factory):
    path = tmp_path_factory.mktemp("blank") / "blank.png"
    Image.new("L", (280, 280), 255).save(path)
    return path


def assert_one_error_line(stderr: str, path) -> None:
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"predict_single.py: {path}: ")
    assert "Traceback" not in stderr


def test_each_image_gets_one_line_with_its_digit_in_the_order_given(digits):
    labels = (3, 1, 4, 1, 5, 9, 2, 6, 0, 7, 8)
    paths = [digits[label] for label in labels]
    proc = run(*paths)
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == len(paths)
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    assert proc.returncode == (EX_UNSURE if any(m["unsure"] for m in matches) else 0)
    assert [m["path"] for m in matches] == [str(p) for p in paths]
    predicted = [int(m["digit"]) for m in matches]
    # The provisional model reads all of them; a retrained one may slip on one.
    assert sum(d == label for d, label in zip(predicted, labels, strict=True)) >= len(labels) - 1


def test_the_batched_answers_equal_the_pipeline_run_on_each_file_alone(digits, bad_files, blank):
    classifier = load_classifier()
    good = list(digits.values())
    # Unreadable and blank files between the good ones must not shift anyone's answer.
    mixed = [good[0], bad_files["missing"][0], blank, *good[1:5], bad_files["SVG"][0], *good[5:]]
    proc = run("--json", *mixed)
    assert proc.returncode == EX_NOINPUT
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in mixed]
    for path, record in zip(mixed, records, strict=True):
        if path in good:
            expected = classifier.predict_proba(preprocess(load_image(path)).vector)
            assert record["digit"] == int(np.argmax(expected))
            np.testing.assert_allclose(record["probabilities"], expected, atol=1e-5)


def test_json_gives_one_object_per_image_with_ten_probabilities(digits, blank, bad_files):
    notes = bad_files["text named .png"][0]
    proc = run("--json", digits[7], digits[2], blank, notes)
    assert proc.returncode == EX_DATAERR
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 4
    keys = {"path", "status", "digit", "confidence", "probabilities", "reason", "error"}
    assert all(set(r) == keys for r in records)

    for record, label in zip(records[:2], (7, 2), strict=True):
        assert record["digit"] == label
        assert isinstance(record["digit"], int)
        probabilities = record["probabilities"]
        assert len(probabilities) == 10
        assert all(isinstance(p, float) and 0 <= p <= 1 for p in probabilities)
        assert sum(probabilities) == pytest.approx(1, abs=1e-4)
        assert record["confidence"] == max(probabilities)
        assert record["status"] == "digit"
        assert record["reason"] is record["error"] is None

    no_digit, unreadable = records[2:]
    assert no_digit["digit"] is no_digit["probabilities"] is no_digit["error"] is None
    assert "No digit found" in no_digit["reason"]
    assert no_digit["status"] == "no_digit"
    assert unreadable["digit"] is unreadable["probabilities"] is unreadable["status"] is None
    assert "not an image" in unreadable["error"]
    # Errors still reach stderr, so a script piping stdout onward sees them too.
    assert_one_error_line(proc.stderr, notes)


def test_several_separate_digits_are_not_a_digit_with_exit_status_4(mnist, tmp_path):
    row = Image.new("L", (840, 280), 0)
    for i in range(3):
        digit = Image.fromarray(mnist.test_images[i]).resize((280, 280))
        row.paste(digit, (280 * i, 0))
    path = tmp_path / "number.png"
    row.save(path)
    proc = run("--json", path)
    assert proc.returncode == EX_NOT_A_DIGIT, proc.stdout
    (record,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert record["status"] == "not_a_digit"
    assert "--number" in record["reason"]
    assert len(record["probabilities"]) == 10  # the lean is kept
    text = run(path).stdout
    assert text.startswith(f"{path}: not a digit: ")


def test_top_sets_how_many_digits_are_shown(digits):
    proc = run("--top", "1", digits[4])
    assert re.fullmatch(rf"{re.escape(str(digits[4]))}: 4 \(\d+\.\d%\)\n", proc.stdout)


def test_a_blank_image_is_answered_as_no_digit_with_exit_status_65(blank):
    proc = run(blank)
    assert proc.returncode == EX_DATAERR
    assert proc.stdout == f"{blank}: No digit found: the image has no strokes.\n"
    assert proc.stderr == ""


@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "directory",
        "text named .png",
        "truncated PNG",
        "SVG",
        "decompression bomb",
        "huge claimed size",
    ],
)
def test_a_file_that_is_not_a_usable_image_is_one_stderr_line_naming_it(bad_files, kind):
    path, phrase, status = bad_files[kind]
    proc = run(path)
    assert proc.returncode == status
    assert proc.stdout == ""
    assert_one_error_line(proc.stderr, path)
    assert phrase in proc.stderr


def test_good_files_are_answered_even_when_others_in_the_call_fail(digits, bad_files):
    notes, missing = bad_files["text named .png"][0], bad_files["missing"][0]
    proc = run(notes, digits[0], missing)
    # Any missing input makes the status EX_NOINPUT, whatever else failed and in which order.
    assert proc.returncode == EX_NOINPUT
    assert LINE.match(proc.stdout)
    assert proc.stdout.count("\n") == 1
    notes_error, missing_error = proc.stderr.splitlines()
    assert notes_error.startswith(f"predict_single.py: {notes}: ")
    assert missing_error.startswith(f"predict_single.py: {missing}: ")
    assert "Traceback" not in proc.stderr


def test_a_dash_reads_the_image_from_stdin(digits):
    proc = run("-", stdin=digits[8].read_bytes())
    assert proc.returncode == 0
    assert proc.stdout.decode().startswith("-: 8 (")


def test_a_missing_model_file_is_one_line_and_exit_status_66(digits, tmp_path):
    proc = run("--model", tmp_path / "nowhere.pkl", digits[1])
    assert proc.returncode == EX_NOINPUT
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "nowhere.pkl was not found" in proc.stderr
    assert "Traceback" not in proc.stderr


class _TouchesAFile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_booby_trapped_model_file_is_refused_without_running_its_code(digits, tmp_path):
    marker = tmp_path / "pwned"
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps({"weights": [_TouchesAFile(marker)], "biases": []}))
    proc = run("--model", model, digits[1])
    assert proc.returncode == EX_DATAERR
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "refused" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("args", [[], ["--top", "11", "x.png"]], ids=["no images", "bad --top"])
def test_usage_errors_exit_with_status_2(args):
    proc = run(*args)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_help_documents_the_exit_statuses():
    proc = run("--help")
    assert proc.returncode == 0
    assert all(code in proc.stdout for code in ("65", "66", "EX_DATAERR", "EX_NOINPUT"))
    assert all(status in proc.stdout for status in ("not sure", "not a digit", '"unsure"'))
    assert re.search(r"^  3 +an image was not sure", proc.stdout, re.MULTILINE)
    assert re.search(r"^  4 +an image was not a digit", proc.stdout, re.MULTILINE)


def test_number_prints_the_digits_read_and_json_gives_their_boxes(tmp_path, mnist):
    digits = []
    for d in (2, 0, 2, 6):
        image = mnist.test_images[np.flatnonzero(mnist.test_labels == d)[0]]
        digits.extend([image, np.zeros((28, 6), np.uint8)])
    path = tmp_path / "number.png"
    Image.fromarray(np.kron(np.hstack(digits), np.ones((4, 4), np.uint8))).save(path)
    run = [sys.executable, "predict_single.py", "--number", str(path)]
    plain = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, check=True)
    assert re.fullmatch(
        rf"{re.escape(str(path))}: 2026  \((\d \d+%, ){{3}}\d \d+%\)\n", plain.stdout
    )
    record = json.loads(
        subprocess.run(
            [*run, "--json"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    )
    assert record["number"] == "2026"
    assert [d["digit"] for d in record["digits"]] == [2, 0, 2, 6]
    boxes = [d["box"] for d in record["digits"]]
    assert all(b[2] <= c[0] for b, c in itertools.pairwise(boxes))
    assert {d["status"] for d in record["digits"]} <= {"sure", "unsure"}


def test_every_hostile_image_gets_one_line_naming_it_and_exit_status_65(tmp_path):
    files = {}
    for i, (name, (data, phrase)) in enumerate(hostile_images().items()):
        files[tmp_path / f"hostile-{i}.img"] = (name, phrase)
        (tmp_path / f"hostile-{i}.img").write_bytes(data)
    proc = run(*files)
    assert proc.returncode == EX_DATAERR
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines() + proc.stderr.splitlines()
    assert len(lines) == len(files)
    for path, (name, phrase) in files.items():
        (line,) = [line for line in lines if f"{path}: " in line]
        assert phrase in line, name


@pytest.mark.parametrize("name", list(hostile_models(b"")))
def test_a_hostile_model_file_is_one_line_and_exit_status_65(digits, tmp_path, name):
    valid = (ROOT / "model_params.pkl").read_bytes()
    model = tmp_path / "hostile.pkl"
    model.write_bytes(hostile_models(valid)[name])
    proc = run("--model", model, digits[1])
    assert proc.returncode == EX_DATAERR
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert f"{model} " in proc.stderr
    assert "python train.py" in proc.stderr
