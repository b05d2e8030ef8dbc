"""Reading a number: pieces found without the network, touching ones split by it."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digits.app.number import number_text, read_number
from digits.data.segment import find_pieces, ink_map
from model_loader import load_classifier

SCALE = 4


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def first_of(mnist, digit: int, skip: int = 0) -> np.ndarray:
    """A clearly written MNIST test digit, its empty columns trimmed."""
    image = mnist.test_images[np.flatnonzero(mnist.test_labels == digit)[skip]]
    columns = np.flatnonzero(image.any(axis=0))
    return image[:, columns[0] : columns[-1] + 1]


def number_image(parts: list[np.ndarray], gap: int, drops: list[int] | None = None) -> np.ndarray:
    """Digits side by side, `gap` pixels apart (negative: overlapping), each dropped by drops[i]."""
    drops = drops or [0] * len(parts)
    width = sum(p.shape[1] for p in parts) + gap * (len(parts) - 1) + 20
    out = np.zeros((28 + max(drops) + 8, width), np.uint8)
    x = 10
    for part, drop in zip(parts, drops, strict=True):
        region = out[4 + drop : 32 + drop, x : x + part.shape[1]]
        np.maximum(region, part, out=region)
        x += part.shape[1] + gap
    return np.kron(out, np.ones((SCALE, SCALE), np.uint8))


def test_digits_with_gaps_are_read_left_to_right(mnist, classifier):
    image = number_image([first_of(mnist, d) for d in (2, 0, 2, 6)], gap=6)
    assert number_text(read_number(classifier, image)) == "2026"


def test_a_number_on_a_slant_is_read_in_order(mnist, classifier):
    image = number_image([first_of(mnist, d) for d in (1, 9, 8, 4)], gap=6, drops=[0, 5, 10, 15])
    digits = read_number(classifier, image)
    assert number_text(digits) == "1984"
    assert [d.box[1] for d in digits] == sorted(d.box[1] for d in digits)


def test_a_speck_between_digits_is_left_out(mnist, classifier):
    three, seven = first_of(mnist, 3, skip=1), first_of(mnist, 7)
    image = number_image([three, seven], gap=10)
    middle = (10 + three.shape[1] + 5) * SCALE
    image[60:64, middle - 2 : middle + 2] = 255
    assert number_text(read_number(classifier, image)) == "37"


def test_two_strokes_of_one_digit_are_one_piece():
    # A 4 written as two strokes that do not touch: the open angle, then the down stroke.
    pad = Image.new("L", (200, 200), 0)
    draw = ImageDraw.Draw(pad)
    draw.line([(90, 30), (40, 120), (150, 120)], fill=255, width=12)
    draw.line([(125, 40), (125, 180)], fill=255, width=12)
    pieces = find_pieces(ink_map(np.asarray(pad))[0])
    assert len(pieces) == 1


def test_a_flag_written_apart_is_read_with_its_digit_not_as_one(mnist, classifier):
    # A 5 whose flag does not touch its body and sits to the right of it, beside a 3.
    pad = Image.new("L", (420, 220), 0)
    draw = ImageDraw.Draw(pad)
    draw.line([(60, 40), (50, 105), (110, 100), (130, 150), (100, 190), (45, 180)],
              fill=255, width=14)  # fmt: skip
    draw.line([(122, 30), (175, 26)], fill=255, width=14)
    three = Image.fromarray(first_of(mnist, 3, skip=1)).resize((110, 160))
    pad.paste(three, (230, 35))
    assert number_text(read_number(classifier, np.asarray(pad))) == "53"


def test_a_few_pixels_between_digits_part_them_in_a_number_but_not_a_broken_stroke():
    # Two strokes 8 px apart, 150 px tall: in a number two pieces; as one digit's ink (the
    # single-digit "several digits" check) one, as a pen line broken in a photo would be.
    pad = np.zeros((200, 200), np.uint8)
    pad[25:175, 80:92] = 255
    pad[25:175, 100:112] = 255
    ink = ink_map(pad)[0]
    assert len(find_pieces(ink)) == 1
    assert len(find_pieces(ink, number=True)) == 2


def test_touching_digits_are_split_where_the_network_reads_both(mnist, classifier):
    image = number_image([first_of(mnist, 4), first_of(mnist, 7)], gap=-2)
    assert len(find_pieces(ink_map(image)[0])) == 1
    assert number_text(read_number(classifier, image)) == "47"


def test_each_box_is_in_image_pixels_round_its_digit(mnist, classifier):
    image = number_image([first_of(mnist, 5), first_of(mnist, 1)], gap=8)
    digits = read_number(classifier, image)
    for d in digits:
        x0, y0, x1, y1 = d.box
        assert 0 <= x0 < x1 <= image.shape[1]
        assert 0 <= y0 < y1 <= image.shape[0]
        assert image[y0:y1, x0:x1].max() == 255
    assert digits[0].box[2] <= digits[1].box[0]


def test_a_blank_image_holds_no_number(classifier):
    assert number_text(read_number(classifier, np.zeros((80, 200), np.uint8))) is None
