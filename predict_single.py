"""Read the handwritten digit in each image file and print the network's answer, one line each.

python predict_single.py digit.png photo.jpg     # digit.png: 7 (98.4%)  next: 1 (1.1%), 9 (0.3%)
python predict_single.py --json --model other.pkl scan.png
python predict_single.py - < digit.png           # "-" reads the image from stdin

Each image is answered as one of four outcomes: a sure digit; not sure (the digit and its
runner-up); not a digit (a letter, a scribble, several digits: with the network's lean); no
digit at all (blank, too faint, too small). The exit status tells them apart (see --help).
A bad model stops the run; a bad image does not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from digits.app.logic import DIGIT, NO_DIGIT, NOT_A_DIGIT, UNSURE, Reading, read_digits
from digits.app.number import DigitReading, number_text, read_number
from digits.data.preprocess import ImageError, Preprocessed, load_image, preprocess
from model_loader import MODEL_PATH, ModelFileError, load_classifier

PROG = "predict_single.py"
# The exit status of each outcome; with several images the highest wins.
EXIT_STATUS = {DIGIT: 0, UNSURE: 3, NOT_A_DIGIT: 4, NO_DIGIT: os.EX_DATAERR}
EPILOG = """\
output: one line per image, in the order given: "7 (98.4%)  next: 1 (1.1%), 9 (0.3%)" for a
sure digit, "not sure: 7 (61.0%)  next: 1 (30.2%), ..." when the network hesitates, "not a
digit: ..." with the reason and the network's lean, and for an image without a digit (blank,
too faint, too small) the reason, e.g. "blank.png: No digit found: the image has no strokes.".
A file that cannot be read gets one line on stderr naming it; the other files are still
answered. With --json each image gets one JSON object per line: path, status ("digit",
"unsure", "not_a_digit" or "no_digit"; null for a file that could not be read), digit (int
or null), confidence (0-1 or null), probabilities (ten floats for digits 0-9, or null),
reason (why it is not a sure digit, or null) and error (why the file could not be read, or
null); errors still go to stderr too.

exit status: the highest over the images of
  0   every image held a sure digit
  3   an image was not sure
  4   an image was not a digit
  65  (EX_DATAERR) an image has no digit, or a file is not a usable image or model (a folder,
      not an image, SVG, damaged, too large)
  66  (EX_NOINPUT) an image or the model file is missing or unreadable
  2   usage error
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Recognise the handwritten digit in each image (PNG, JPEG, ...).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help='image files; "-" reads stdin')
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.add_argument(
        "--model", default=MODEL_PATH, metavar="PATH", help="model file (default: %(default)s)"
    )
    p.add_argument(
        "--top",
        type=int,
        choices=range(1, 11),
        default=3,
        metavar="K",
        help="how many likeliest digits to show, 1-10 (default: %(default)s)",
    )
    p.add_argument(
        "--number",
        action="store_true",
        help="read a number of several digits in each image, left to right",
    )
    return p.parse_args(argv)


def failure_status(path: str | os.PathLike) -> int:
    """EX_NOINPUT for an input that is missing or unreadable, EX_DATAERR for one that is bad."""
    if path != "-" and not os.access(path, os.R_OK):
        return os.EX_NOINPUT
    return os.EX_DATAERR


def read_digit(path: str) -> tuple[Preprocessed | None, str | None]:
    """The preprocessed image at path ("-" for stdin), or None and why the file cannot be read."""
    try:
        return preprocess(load_image(sys.stdin.buffer if path == "-" else path)), None
    except ImageError as exc:
        return None, str(exc)


def describe(proba: np.ndarray, top: int) -> str:
    """The likeliest digits in (10,) proba, e.g. "7 (98.4%)  next: 1 (1.1%), 9 (0.3%)"."""
    best, *rest = np.argsort(-proba, kind="stable")[:top]
    text = f"{best} ({proba[best]:.1%})"
    if rest:
        text += "  next: " + ", ".join(f"{d} ({proba[d]:.1%})" for d in rest)
    return text


def as_json(path: str, reading: Reading | None, error: str | None) -> str:
    """One image's answer as a JSON line (reading None when the file could not be read)."""
    proba = None if reading is None else reading.proba
    digit = None if proba is None else int(np.argmax(proba))
    return json.dumps(
        {
            "path": path,
            "status": None if reading is None else reading.status,
            "digit": digit,
            "confidence": None if proba is None else round(float(proba[digit]), 6),
            "probabilities": None if proba is None else [round(float(p), 6) for p in proba],
            "reason": reading.message() or None if reading is not None else None,
            "error": error,
        }
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        classifier = load_classifier(args.model)
    except ModelFileError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return failure_status(args.model)

    if args.number:
        return print_numbers(classifier, args)
    outcomes = [read_digit(path) for path in args.images]
    # One forward pass for every image that holds a digit.
    readings = iter(
        read_digits(classifier, [result for result, _ in outcomes if result is not None])
    )

    status = 0
    for path, (result, error) in zip(args.images, outcomes, strict=True):
        reading = None if result is None else next(readings)
        if error is not None:
            print(f"{PROG}: {path}: {error}", file=sys.stderr)
            status = max(status, failure_status(path))  # EX_NOINPUT (66) outranks EX_DATAERR
        assert reading is not None or error is not None, "read_digit gives a result or an error"
        if reading is not None:
            status = max(status, EXIT_STATUS[reading.status])
        if args.json:
            print(as_json(path, reading, error))
        elif reading is not None:
            print(f"{path}: {answer_text(reading, args.top)}")
    return status


def answer_text(reading: Reading, top: int) -> str:
    """One image's answer in words, e.g. "7 (98.4%)  next: 1 (1.1%), 9 (0.3%)"."""
    if reading.proba is None:
        return reading.message()
    if reading.status == NOT_A_DIGIT:
        return f"not a digit: {reading.message()}"
    text = describe(reading.proba, top)
    return text if reading.status == DIGIT else f"not sure: {text}"


def number_record(path: str, digits: list[DigitReading]) -> dict:
    """One image's number as the --json record: number (str or None) and its digits."""
    return {
        "path": path,
        "number": number_text(digits),
        "digits": [
            {
                "digit": d.reading.digit,
                "confidence": round(d.confidence, 6),
                "status": d.status,
                "box": list(d.box),
            }
            for d in digits
        ],
    }


def print_numbers(classifier, args: argparse.Namespace) -> int:
    """Print the number read in each image, e.g. "photo.jpg: 2026  (2 99%, 0 97%, ...)"."""
    status = 0
    for path in args.images:
        try:
            digits = read_number(classifier, load_image(sys.stdin.buffer if path == "-" else path))
        except ImageError as exc:
            print(f"{PROG}: {path}: {exc}", file=sys.stderr)
            status = max(status, failure_status(path))
            continue
        if not digits:
            status = max(status, os.EX_DATAERR)
        if args.json:
            print(json.dumps(number_record(path, digits)))
        elif digits:
            each = ", ".join(f"{d.text} {d.confidence:.0%}" for d in digits)
            print(f"{path}: {number_text(digits)}  ({each})")
        else:
            print(f"{path}: No number found: the image has no digits.")
    return status


if __name__ == "__main__":
    sys.exit(main())
