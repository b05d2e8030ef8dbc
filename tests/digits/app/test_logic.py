"""The app's logic without Streamlit: readings, the low-confidence rule, chart rows, images."""

import numpy as np
import pytest
from PIL import Image

from digits.app.logic import (
    DIGIT,
    LOW_CONFIDENCE,
    MNIST_STAGE,
    NETWORK_VIEW_SCALE,
    NO_DIGIT,
    NOT_A_DIGIT,
    STAGE_SIDE,
    UNSURE,
    Reading,
    enlarge,
    mnist_input,
    network_view,
    preview,
    probability_frame,
    read_digit,
    stage_gallery,
)
from digits.data.mnist import IMAGE_SIDE, N_CLASSES
from digits.data.preprocess import Preprocessed, preprocess


def probabilities(top_digit: int, top: float, second_digit: int | None = None) -> np.ndarray:
    """(10,) float32 with `top` on top_digit and the rest on second_digit or spread evenly."""
    proba = np.zeros(N_CLASSES, np.float32)
    if second_digit is None:
        proba[:] = (1 - top) / (N_CLASSES - 1)
    else:
        proba[second_digit] = 1 - top
    proba[top_digit] = top
    return proba


def digit_input() -> Preprocessed:
    image = np.zeros((IMAGE_SIDE, IMAGE_SIDE), np.float32)
    image[4:24, 13:15] = 1
    return Preprocessed(image, {"centred 28x28": image})


class FixedClassifier:
    """Answers every input with the same probabilities and remembers what it was asked."""

    def __init__(self, proba: np.ndarray, params: dict | None = None):
        self.proba = proba
        self.params = params or {}
        self.inputs: list[np.ndarray] = []

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.inputs.append(x)
        return self.proba


def test_read_digit_passes_the_784_vector_to_the_classifier():
    classifier = FixedClassifier(probabilities(1, 0.9))
    reading = read_digit(classifier, digit_input())
    assert classifier.inputs[0].shape == (1, IMAGE_SIDE * IMAGE_SIDE)
    assert reading.has_digit
    assert reading.digit == 1
    assert reading.confidence == pytest.approx(0.9)


@pytest.mark.parametrize(("top", "status"), [(0.95, DIGIT), (0.7, UNSURE), (0.3, NOT_A_DIGIT)])
def test_the_top_probability_against_the_models_thresholds_gives_the_outcome(top, status):
    refusal = {"unsure_below": 0.8, "not_a_digit_below": 0.4}
    reading = read_digit(
        FixedClassifier(probabilities(5, top), {"refusal": refusal}), digit_input()
    )
    assert reading.status == status
    assert reading.is_sure == (status == DIGIT)
    assert reading.digit == 5


def test_not_a_digit_says_so_and_names_the_lean():
    reading = Reading(digit_input(), probabilities(3, 0.2))
    assert reading.status == NOT_A_DIGIT
    assert "does not look like a digit" in reading.message()
    assert "3" in reading.message()


def test_several_separate_digits_are_not_a_digit_and_point_to_reading_numbers():
    drawing = np.zeros((280, 560), np.uint8)
    for left in (60, 260, 460):
        drawing[60:220, left : left + 20] = 255
    reading = read_digit(FixedClassifier(probabilities(1, 0.99)), preprocess(drawing))
    assert reading.pieces == 3
    assert reading.status == NOT_A_DIGIT
    assert "--number" in reading.message()


def test_a_digit_with_a_small_separate_stroke_is_still_one_digit():
    drawing = np.zeros((280, 280), np.uint8)
    drawing[60:220, 130:150] = 255
    drawing[200:220, 180:200] = 255  # a dot beside it, as a slip of the pen
    reading = read_digit(FixedClassifier(probabilities(1, 0.99)), preprocess(drawing))
    assert reading.status == DIGIT


def test_a_blank_input_is_no_digit():
    reading = read_digit(FixedClassifier(probabilities(1, 0.99)), preprocess(np.zeros((9, 9))))
    assert reading.status == NO_DIGIT


def test_an_input_without_a_digit_gets_no_prediction_and_says_why():
    classifier = FixedClassifier(probabilities(1, 0.9))
    empty = preprocess(np.zeros((280, 280, 4), np.uint8))
    reading = read_digit(classifier, empty)
    assert not reading.has_digit
    assert classifier.inputs == []
    assert reading.message() == empty.reason
    assert reading.message().startswith("No digit found")
    with pytest.raises(ValueError, match="has_digit"):
        _ = reading.digit


def test_a_confident_reading_needs_no_message():
    reading = Reading(digit_input(), probabilities(7, 0.95))
    assert reading.is_sure
    assert reading.message() == ""


def test_the_low_confidence_threshold_separates_sure_from_unsure():
    assert Reading(digit_input(), probabilities(3, LOW_CONFIDENCE + 0.001)).is_sure
    assert not Reading(digit_input(), probabilities(3, LOW_CONFIDENCE - 0.001)).is_sure


def test_a_low_confidence_reading_says_so_and_names_both_candidates():
    reading = Reading(digit_input(), probabilities(4, 0.55, second_digit=9))
    assert not reading.is_sure
    assert reading.runner_up == 9
    message = reading.message()
    assert "not sure" in message
    assert "4 (55%)" in message
    assert "9 (45%)" in message


@pytest.mark.parametrize(
    ("top", "text"),
    [(0.5, "50.0%"), (0.987, "98.7%"), (0.9994, "99.9%"), (0.99996, ">99.9%"), (1.0, ">99.9%")],
)
def test_confidence_is_never_shown_as_a_certain_100_percent(top, text):
    assert Reading(digit_input(), probabilities(0, top)).confidence_text() == text


def test_probability_frame_has_a_row_per_digit_in_order_with_the_top_one_marked():
    proba = probabilities(6, 0.8, second_digit=5)
    frame = probability_frame(proba)
    assert list(frame["digit"]) == [str(d) for d in range(N_CLASSES)]
    np.testing.assert_allclose(frame["probability"], proba)
    assert list(frame["top"]) == [d == 6 for d in range(N_CLASSES)]


def test_probability_frame_refuses_anything_but_ten_probabilities():
    with pytest.raises(ValueError, match="10 probabilities"):
        probability_frame(np.ones(9) / 9)


def test_enlarge_turns_each_pixel_into_a_crisp_square_block():
    image = np.array([[0, 255], [128, 64]], np.uint8)
    big = np.asarray(enlarge(image, 3))
    assert big.shape == (6, 6)
    np.testing.assert_array_equal(big, np.kron(image, np.ones((3, 3), np.uint8)))


def test_enlarge_scales_float_images_in_0_1_to_8_bit():
    big = np.asarray(enlarge(np.array([[0.0, 1.0, 0.5]], np.float32), 1))
    np.testing.assert_array_equal(big, [[0, 255, 128]])


def test_network_view_is_the_28x28_input_enlarged_pixel_for_pixel():
    pre = digit_input()
    view = network_view(pre)
    side = IMAGE_SIDE * NETWORK_VIEW_SCALE
    assert view.size == (side, side)
    np.testing.assert_array_equal(
        np.asarray(view)[::NETWORK_VIEW_SCALE, ::NETWORK_VIEW_SCALE], (pre.image * 255).astype(int)
    )


def test_network_view_needs_a_digit():
    with pytest.raises(ValueError, match="has_digit"):
        network_view(Preprocessed(None, {}, "No digit found: the image is empty."))


def test_stage_gallery_keeps_the_stage_names_in_order_and_fits_each_stage():
    drawing = np.zeros((280, 280, 4), np.uint8)
    drawing[..., 3] = 255
    drawing[60:220, 130:150, :3] = 255
    stages = preprocess(drawing).stages
    gallery = stage_gallery(stages)
    assert [name for name, _ in gallery] == list(stages)
    for (name, image), stage in zip(gallery, stages.values(), strict=True):
        assert max(image.size) <= STAGE_SIDE, name
        if max(stage.shape) <= STAGE_SIDE:
            # Enlarged by a whole factor, so every pixel stays a square.
            assert image.width % stage.shape[1] == 0
            assert image.height % stage.shape[0] == 0
            assert max(image.size) > STAGE_SIDE // 2, name


def test_stage_gallery_shows_the_noise_removal_of_a_noisy_photo():
    photo = np.full((280, 280), 235, np.uint8)
    photo[60:220, 130:150] = 30
    hit = np.random.default_rng(0).random(photo.shape)
    photo[hit < 0.02] = 0
    photo[hit > 0.98] = 255
    names = [name for name, _ in stage_gallery(preprocess(photo).stages)]
    assert names[:2] == ["grayscale", "impulse noise removed"]


def test_mnist_input_hands_the_stored_image_to_the_network_unchanged():
    image = (np.arange(IMAGE_SIDE * IMAGE_SIDE) % 256).astype(np.uint8).reshape(IMAGE_SIDE, -1)
    pre = mnist_input(image)
    np.testing.assert_allclose(pre.image * 255, image, atol=1e-4)
    assert list(pre.stages) == [MNIST_STAGE]


def test_mnist_input_refuses_images_of_another_size():
    with pytest.raises(ValueError, match="28x28"):
        mnist_input(np.zeros((20, 20), np.uint8))


def test_with_the_trained_model_mnist_test_digits_are_read_as_their_labels(mnist):
    from model_loader import load_classifier

    classifier = load_classifier()
    images, labels = mnist.test_images[:50], mnist.test_labels[:50]
    digits = [read_digit(classifier, mnist_input(image)).digit for image in images]
    assert np.mean(np.array(digits) == labels) >= 0.96


def test_preview_fits_the_image_in_a_square_and_keeps_transparency():
    image = Image.new("RGBA", (1000, 500), (0, 0, 0, 0))
    small = preview(image, 280)
    assert small.size == (280, 140)
    assert small.mode == "RGBA"
    assert image.size == (1000, 500), "the original must not change"


def test_preview_reads_16_bit_images_as_the_pipeline_does_instead_of_clipping_them_to_white():
    deep = np.zeros((40, 40), np.uint16)
    deep[10:30, 18:22] = 40000
    small = np.asarray(preview(Image.fromarray(deep), 280))
    assert small.shape == (40, 40, 3)
    assert small[0, 0].max() == 0
    assert (small[20, 20] == round(40000 / 257)).all(), "a 16-bit level, scaled to 8 bits"
