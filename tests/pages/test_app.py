"""The Streamlit app's states, run headless through Streamlit's AppTest.

AppTest does not run the canvas component's JavaScript (it sees an unknown "bidi_component"),
so a drawing is put where the browser would put it: in the component's session-state entry,
as the PNG data URL the canvas sends after a stroke. File uploads go through AppTest's own
file_uploader support. tests/test_browser.py draws with a real mouse.
"""

import base64
import io
import pickle

import numpy as np
import pytest
from conftest import ROOT
from helpers.hostile import hostile_images
from PIL import Image
from streamlit.testing.v1 import AppTest

from digits.app.logic import EMPTY_PROMPT, NOT_A_DIGIT, mnist_input, read_digit
from digits.app.user_store import UserStore
from digits.data.mnist import N_CLASSES, N_PIXELS
from digits.data.pad import NUMBER_PAD_HEIGHT, NUMBER_PAD_WIDTH
from model_loader import MODEL_PATH, save_params
from pages.shared import (
    CURRENT_INPUT,
    NUMBER_PAD,
    SAMPLE_KEY,
    TAB_KEY,
    TAB_MNIST,
    TAB_NUMBER,
    TAB_UPLOAD,
)

APP = str(ROOT / "app.py")
# The first run imports NumPy, Pillow and Altair and reads the model; later ones are quick.
TIMEOUT = 60
PAD_SIDE = 280


@pytest.fixture
def app(monkeypatch):
    """The app with the committed model, before its first run."""
    monkeypatch.delenv("DIGITS_MODEL", raising=False)
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def app_with_model(monkeypatch, path) -> AppTest:
    monkeypatch.setenv("DIGITS_MODEL", str(path))
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def drawn(digit_image: np.ndarray, size: int = 200) -> np.ndarray:
    """An MNIST digit (28, 28) uint8 drawn white on the black pad: (280, 280, 4) RGBA uint8."""
    big = Image.fromarray(digit_image).resize((size, size), Image.Resampling.BILINEAR)
    pad = np.zeros((PAD_SIDE, PAD_SIDE, 4), np.uint8)
    pad[..., 3] = 255
    offset = (PAD_SIDE - size) // 2
    pad[offset : offset + size, offset : offset + size, :3] = np.asarray(big)[..., None]
    return pad


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def pad_component(at: AppTest, pad: str = "canvas"):
    """The canvas component of the pad named `pad`."""
    (component,) = [c for c in at.get("bidi_component") if c.key.startswith(f"{pad}-")]
    return component


def draw_on_canvas(at: AppTest, image: np.ndarray, pad: str = "canvas") -> AppTest:
    """Put a drawing into a pad's component state, as the browser does after a stroke."""
    component = pad_component(at, pad)
    url = "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()
    at.session_state[component.key] = {
        "drawing": {"raw": {"objects": [{"type": "path"}]}, "data": url},
        "backgroundFit": None,
    }
    return at.run()


def upload_box(at: AppTest):
    """The Upload tab's file uploader (the Number tab has one of its own)."""
    return next(u for u in at.file_uploader if u.key == "upload")


def open_tab(at: AppTest, label: str) -> AppTest:
    at.session_state[TAB_KEY] = label
    return at.run()


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def test_an_empty_canvas_shows_a_prompt_and_no_guess(app):
    app.run()
    assert_no_exception(app)
    assert app.title[0].value
    assert [i.value for i in app.info] == [EMPTY_PROMPT]
    assert "Prediction" not in metrics(app)
    assert app.session_state[CURRENT_INPUT] is None


def test_a_drawing_is_read_and_shared_with_other_pages(app, mnist):
    app.run()
    draw_on_canvas(app, drawn(mnist.test_images[0]))
    assert_no_exception(app)
    shown = metrics(app)
    assert shown["Prediction"] == str(mnist.test_labels[0])
    assert shown["Confidence"].endswith("%")
    assert app.get("vega_lite_chart"), "the probability chart is missing"
    assert any("28x28" in c for image in app.image for c in image.captions)
    current = app.session_state[CURRENT_INPUT]
    assert current.source == "canvas"
    assert current.preprocessed.image.shape == (28, 28)


def test_clear_empties_the_canvas(app, mnist):
    app.run()
    draw_on_canvas(app, drawn(mnist.test_images[0]))
    old = pad_component(app)
    next(b for b in app.button if b.label == "Clear").click().run()
    new = pad_component(app)
    assert new.key != old.key, "Clear must mount a fresh canvas"
    assert [i.value for i in app.info] == [EMPTY_PROMPT]
    assert "Prediction" not in metrics(app)


def test_the_preprocessing_steps_are_shown_on_request_with_their_names(app, mnist):
    app.run()
    draw_on_canvas(app, drawn(mnist.test_images[0]))
    captions_before = [c for image in app.image for c in image.captions]
    app.toggle[0].set_value(True).run()
    captions = [c for image in app.image for c in image.captions]
    assert "grayscale" not in captions_before
    assert {"grayscale", "cropped", "fitted 20x20", "centred 28x28"} <= set(captions)


def test_a_photo_with_salt_and_pepper_noise_shows_the_noise_removal_step(app, mnist):
    app.run()
    open_tab(app, TAB_UPLOAD)
    rng = np.random.default_rng(0)
    photo = 255 - drawn(mnist.test_images[4])[..., 0]
    hit = rng.random(photo.shape)
    photo[hit < 0.025], photo[(hit >= 0.025) & (hit < 0.05)] = 0, 255
    upload_box(app).set_value(("noisy.png", png_bytes(photo), "image/png")).run()
    app.toggle[0].set_value(True).run()
    assert_no_exception(app)
    assert metrics(app)["Prediction"] == str(mnist.test_labels[4])
    captions = [c for image in app.image for c in image.captions]
    assert captions.index("grayscale") + 1 == captions.index("impulse noise removed")


def test_a_drawing_that_is_not_a_digit_says_so_plainly(app):
    app.run()
    speck = np.zeros((PAD_SIDE, PAD_SIDE, 4), np.uint8)
    speck[..., 3] = 255
    speck[100:104, 100:104, :3] = 255
    draw_on_canvas(app, speck)
    assert_no_exception(app)
    assert "Prediction" not in metrics(app)
    (warning,) = app.warning
    assert warning.value.startswith("No digit found")


def undecided_model(path, refusal: dict | None = None):
    """A model file whose all-zero weights give every digit 10%, with its own thresholds."""
    zeros = {"weights": [np.zeros((N_PIXELS, N_CLASSES), np.float32)]}
    extra = {} if refusal is None else {"refusal": refusal}
    save_params({**zeros, "biases": [np.zeros(N_CLASSES, np.float32)], **extra}, path)
    return path


def test_a_reading_the_network_barely_leans_on_is_not_a_digit(monkeypatch, tmp_path, mnist):
    at = app_with_model(monkeypatch, undecided_model(tmp_path / "undecided.pkl")).run()
    draw_on_canvas(at, drawn(mnist.test_images[0]))
    assert_no_exception(at)
    assert metrics(at)["Prediction"] == "not a digit"
    (warning,) = at.warning
    assert "does not look like a digit" in warning.value


def test_a_reading_between_the_models_thresholds_is_not_sure(monkeypatch, tmp_path, mnist):
    refusal = {"unsure_below": 0.9, "not_a_digit_below": 0.05}
    path = undecided_model(tmp_path / "undecided.pkl", refusal)
    at = app_with_model(monkeypatch, path).run()
    draw_on_canvas(at, drawn(mnist.test_images[0]))
    assert_no_exception(at)
    assert "Prediction" in metrics(at)
    (warning,) = at.warning
    assert "not sure" in warning.value


def test_a_missing_model_shows_the_command_that_fixes_it_and_stops(monkeypatch, tmp_path):
    missing = tmp_path / "missing.pkl"
    at = app_with_model(monkeypatch, missing).run()
    assert_no_exception(at)
    (error,) = at.error
    assert "was not found" in error.value
    assert "python train.py" in error.value
    assert f"--output {missing}" in error.value
    assert not at.get("bidi_component"), "the page must stop before the canvas"
    assert not at.tabs


def test_a_booby_trapped_model_is_refused_without_running_it(monkeypatch, tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            import os

            return os.mkdir, (str(marker),)

    path = tmp_path / "trap.pkl"
    path.write_bytes(pickle.dumps({"weights": Payload(), "biases": []}))
    at = app_with_model(monkeypatch, path).run()
    assert_no_exception(at)
    (error,) = at.error
    assert "was refused" in error.value
    assert "python train.py" in error.value
    assert not marker.exists()
    assert not at.get("bidi_component")


def test_a_model_file_replaced_while_the_app_runs_is_read_again(monkeypatch, tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(MODEL_PATH.read_bytes())
    at = app_with_model(monkeypatch, path).run()
    assert not at.error
    path.write_bytes(b"not a model, but a different size")
    at.run()
    (error,) = at.error
    assert "not a model file" in error.value


def test_the_random_mnist_button_shows_a_test_digit_its_label_and_the_prediction(app, mnist):
    from model_loader import load_classifier

    app.run()
    open_tab(app, TAB_MNIST)
    assert "Prediction" not in metrics(app)
    next(b for b in app.button if b.label == "Random MNIST test digit").click().run()
    assert_no_exception(app)
    index = app.session_state[SAMPLE_KEY]
    image, label = mnist.test_images[index], int(mnist.test_labels[index])
    # The digit is random: a rare one the network hardly recognises is shown as not a digit.
    reading = read_digit(load_classifier(), mnist_input(image))
    expected = reading.digit
    shown = metrics(app)
    assert shown["True label"] == str(label)
    assert shown["Prediction"] == (
        "not a digit" if reading.status == NOT_A_DIGIT else str(expected)
    )
    verdict = [m.value for m in (*app.success, *app.error)]
    assert verdict == (
        ["Read right"] if expected == label else [f"Read wrong: the network says {expected}"]
    )
    assert any(f"#{index}" in c for img in app.image for c in img.captions)
    current = app.session_state[CURRENT_INPUT]
    assert (current.source, current.label) == ("mnist", label)


def test_an_uploaded_photo_goes_through_the_same_pipeline(app, mnist):
    app.run()
    open_tab(app, TAB_UPLOAD)
    # Dark ink on light paper, as a scan would be; the pipeline turns it white on black.
    scan = 255 - drawn(mnist.test_images[1])[..., 0]
    upload_box(app).set_value(("digit.png", png_bytes(scan), "image/png")).run()
    assert_no_exception(app)
    assert metrics(app)["Prediction"] == str(mnist.test_labels[1])
    assert "digit.png" in [c for img in app.image for c in img.captions]
    assert app.session_state[CURRENT_INPUT].source == "upload"


def enclosing_blocks(at: AppTest, element) -> list:
    """The blocks that hold `element`, outermost first."""

    def path_to(node, path):
        for child in getattr(node, "children", {}).values():
            if child is element:
                return path
            found = path_to(child, [*path, child])
            if found is not None:
                return found
        return None

    return path_to(at._tree, []) or []


def test_a_blank_uploads_preview_is_framed_with_its_name(app):
    app.run()
    open_tab(app, TAB_UPLOAD)
    blank = np.full((200, 300), 255, np.uint8)
    upload_box(app).set_value(("blank.png", png_bytes(blank), "image/png")).run()
    assert_no_exception(app)
    (shown,) = app.image
    assert shown.captions == ["blank.png"]
    (holder,) = enclosing_blocks(app, shown)[-1:]
    assert holder.proto.flex_container.border, "white on a white page needs a frame to be seen"
    (warning,) = app.warning
    assert warning.value.startswith("No digit found")


def test_a_broken_upload_gets_one_plain_error_line(app):
    app.run()
    open_tab(app, TAB_UPLOAD)
    upload_box(app).set_value(("digit.png", b"this is not a PNG", "image/png")).run()
    assert_no_exception(app)
    (error,) = app.error
    assert error.value == (
        "This file is not an image that can be read; use PNG, JPEG, WebP, BMP or GIF."
    ), "the formats the upload box offers"
    assert "Prediction" not in metrics(app)


def test_hostile_uploads_each_get_one_plain_message_and_the_page_keeps_working(app, mnist):
    app.run()
    open_tab(app, TAB_UPLOAD)
    for name, (data, phrase) in hostile_images().items():
        upload_box(app).set_value(("upload.png", data, "image/png")).run()
        assert_no_exception(app)
        (message,) = [*app.error, *app.warning]
        assert phrase in message.value, name
        assert "\n" not in message.value, name
        assert "Prediction" not in metrics(app), name
    scan = 255 - drawn(mnist.test_images[1])[..., 0]
    upload_box(app).set_value(("digit.png", png_bytes(scan), "image/png")).run()
    assert_no_exception(app)
    assert metrics(app)["Prediction"] == str(mnist.test_labels[1])


def test_a_test_digit_the_network_hardly_recognises_is_shown_as_not_a_digit(app, mnist):
    from model_loader import load_classifier

    classifier = load_classifier()
    index = next(
        i
        for i in range(len(mnist.test_images))
        if read_digit(classifier, mnist_input(mnist.test_images[i])).status == NOT_A_DIGIT
    )
    app.run()
    open_tab(app, TAB_MNIST)
    app.session_state[SAMPLE_KEY] = index
    app.run()
    assert_no_exception(app)
    shown = metrics(app)
    assert shown["Prediction"] == "not a digit"
    assert shown["True label"] == str(mnist.test_labels[index])


def test_a_sample_saved_as_an_8_is_called_an_8(monkeypatch, tmp_path, mnist):
    monkeypatch.setenv("DIGITS_USER_DB", str(tmp_path / "samples.sqlite"))
    at = app_with_model(monkeypatch, MODEL_PATH)
    at.run()
    draw_on_canvas(at, drawn(mnist.test_images[0]))  # a 7, read as 7
    at.selectbox[0].set_value(8).run()
    at.button(key="canvas-wrong").click().run()
    assert_no_exception(at)
    assert at.success[0].value.startswith("Saved as an 8 in your samples")


def test_wrong_waits_for_the_right_digit_then_saves_it_as_a_sample(monkeypatch, tmp_path, mnist):
    monkeypatch.setenv("DIGITS_USER_DB", str(tmp_path / "samples.sqlite"))
    at = app_with_model(monkeypatch, MODEL_PATH)
    at.run()
    draw_on_canvas(at, drawn(mnist.test_images[0]))  # a 7, read as 7
    wrong = at.button(key="canvas-wrong")
    assert wrong.disabled, "no digit is guessed for the user"
    assert wrong.label == "Wrong"
    (pick,) = at.selectbox
    assert pick.value is None
    assert pick.options == [str(d) for d in range(10) if d != 7]

    pick.set_value(1).run()
    wrong = at.button(key="canvas-wrong")
    assert (wrong.label, wrong.disabled) == ("Wrong, it was 1", False)
    wrong.click().run()
    assert_no_exception(at)
    assert at.success[0].value.startswith("Saved as a 1 in your samples")
    (sample,) = UserStore(tmp_path / "samples.sqlite").samples()
    assert (sample.label, sample.prediction) == (1, 7)


# ---- the Number tab -------------------------------------------------------------------------


def number_drawing(digits: list[np.ndarray], height: int = 120) -> np.ndarray:
    """MNIST digits (28, 28) side by side, white on the black number pad: RGBA uint8."""
    pad = np.zeros((NUMBER_PAD_HEIGHT, NUMBER_PAD_WIDTH, 4), np.uint8)
    pad[..., 3] = 255
    top, step = (NUMBER_PAD_HEIGHT - height) // 2, height
    for i, digit in enumerate(digits):
        big = np.asarray(Image.fromarray(digit).resize((height, height), Image.Resampling.BILINEAR))
        left = 20 + i * step
        pad[top : top + height, left : left + height, :3] = np.maximum(
            pad[top : top + height, left : left + height, :3], big[..., None]
        )
    return pad


def test_a_number_on_the_number_pad_is_read_digit_by_digit_with_boxes(app, mnist):
    app.run()
    open_tab(app, TAB_NUMBER)
    assert "Write a number" in app.info[0].value
    digits = [mnist.test_images[i] for i in (0, 1, 2, 3)]  # 7, 2, 1, 0
    draw_on_canvas(app, number_drawing(digits), pad=NUMBER_PAD)
    assert_no_exception(app)
    assert metrics(app)["Number"] == "".join(str(mnist.test_labels[i]) for i in range(4))
    assert "Each digit found, with its reading" in [c for img in app.image for c in img.captions]
    assert app.session_state[CURRENT_INPUT].source == "number"


def test_each_digit_of_a_number_can_be_corrected_into_the_samples(monkeypatch, tmp_path, mnist):
    monkeypatch.setenv("DIGITS_USER_DB", str(tmp_path / "samples.sqlite"))
    at = app_with_model(monkeypatch, MODEL_PATH)
    at.run()
    open_tab(at, TAB_NUMBER)
    draw_on_canvas(at, number_drawing([mnist.test_images[0], mnist.test_images[1]]), NUMBER_PAD)
    save = [b for b in at.button if b.label == "Save"]
    assert len(save) == 2
    assert all(b.disabled for b in save), "nothing is saved before a digit is picked"
    (pick, _) = [s for s in at.selectbox if s.placeholder == "Was"]
    pick.set_value(1).run()
    next(b for b in at.button if b.label == "Save" and not b.disabled).click().run()
    assert_no_exception(at)
    (sample,) = UserStore(tmp_path / "samples.sqlite").samples()
    assert (sample.label, sample.prediction) == (1, mnist.test_labels[0])
    assert any("Saved as a 1" in c.value for c in at.caption)


def test_each_digits_input_is_shown_on_request(app, mnist):
    app.run()
    open_tab(app, TAB_NUMBER)
    draw_on_canvas(app, number_drawing([mnist.test_images[0], mnist.test_images[1]]), NUMBER_PAD)
    before = len(app.image)
    next(t for t in app.toggle if "28x28" in t.label).set_value(True).run()
    assert len(app.image) == before + 2


def test_an_uploaded_photo_of_a_number_is_read_the_same_way(app, mnist):
    app.run()
    open_tab(app, TAB_NUMBER)
    scan = 255 - number_drawing([mnist.test_images[i] for i in (0, 1, 2)])[..., 0]
    (uploader,) = [u for u in app.file_uploader if "number" in u.label]
    uploader.set_value(("number.png", png_bytes(scan), "image/png")).run()
    assert_no_exception(app)
    assert metrics(app)["Number"] == "".join(str(mnist.test_labels[i]) for i in range(3))
