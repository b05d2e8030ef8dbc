"""Read the handwritten digit in each image file and print the network's answer, one line each.

python predict_single.py digit.png photo.jpg     # digit.png: 7 (98.4%)  next: 1 (1.1%), 9 (0.3%)
python predict_single.py --json --model other.pkl scan.png
python predict_single.py - < digit.png           # "-" reads the image from stdin

Exit status (sysexits.h): 0 when every image held a digit; 66 (EX_NOINPUT) when an image or
the model file is missing or unreadable; 65 (EX_DATAERR) when a file is there but is not a
usable image or model, or when an image holds no digit. With several failures 66 wins over 65.
Usage errors exit with argparse's 2. A bad model stops the run; a bad image does not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from digits.app.number import DigitReading, number_text, read_number
from digits.data.preprocess import ImageError, Preprocessed, load_image, preprocess
from model_loader import MODEL_PATH, ModelFileError, load_classifier

PROG = "predict_single.py"
EPILOG = """\
output: one line per image, in the order given. An image without a digit (blank, too faint,
too small) is answered on stdout with the reason, e.g. "blank.png: No digit found: the image
has no strokes.", and makes the exit status 65. A file that cannot be read gets one line on
stderr naming it; the other files are still answered. With --json each image gets one JSON
object per line: path, digit (int or null), confidence (0-1 or null), probabilities (ten
floats for digits 0-9, or null), reason (why there is no digit, or null) and error (why the
file could not be read, or null); errors still go to stderr too.

exit status: 0 every image held a digit; 65 (EX_DATAERR) a file is not a usable image or
model (a folder, not an image, SVG, damaged, too large) or an image has no digit; 66
(EX_NOINPUT) an image or the model file is missing or unreadable, which wins over 65; 2 usage.
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


def as_json(path: str, result: Preprocessed | None, error: str | None, proba) -> str:
    """One image's answer as a JSON line; proba is (10,) or None."""
    digit = None if proba is None else int(np.argmax(proba))
    return json.dumps(
        {
            "path": path,
            "digit": digit,
            "confidence": None if proba is None else round(float(proba[digit]), 6),
            "probabilities": None if proba is None else [round(float(p), 6) for p in proba],
            "reason": result.reason if result is not None and proba is None else None,
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
    found = {
        i: result
        for i, (result, _) in enumerate(outcomes)
        if result is not None and result.has_digit
    }
    probas = {}
    if found:
        stacked = np.stack([result.vector for result in found.values()])
        probas = dict(zip(found, classifier.predict_proba(stacked), strict=True))

    status = 0
    for i, (path, (result, error)) in enumerate(zip(args.images, outcomes, strict=True)):
        proba = probas.get(i)
        if error is not None:
            print(f"{PROG}: {path}: {error}", file=sys.stderr)
            status = max(status, failure_status(path))  # EX_NOINPUT (66) outranks EX_DATAERR
        elif proba is None:
            status = max(status, os.EX_DATAERR)
        if args.json:
            print(as_json(path, result, error, proba))
        elif proba is not None:
            print(f"{path}: {describe(proba, args.top)}")
        elif error is None:
            assert result is not None, "read_digit returns a result or an error"
            print(f"{path}: {result.reason}")
    return status


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
