"""Teaching the real app in headless Chromium: a correction becomes a sample, a run trains live,
and fine-tuning on the corrections teaches the app to read a hand it misread.

The server gets its own model copy, samples database and runs folder (environment variables),
so nothing here touches the committed model. Screenshots go to artifacts/screenshots/teach_*.
"""

from __future__ import annotations

import re
import shutil

import pytest
from helpers.browser import (
    ASPECT,
    DESKTOP,
    HOVER_SETTLE_MS,
    SCREENSHOTS,
    TALL_PAGE,
    UPDATE_TIMEOUT_MS,
    draw_digit,
    open_app,
    pad_canvas,
    prediction,
    press_clear,
    sidebar_link,
    streamlit_server,
    wait_for_images,
)
from playwright.sync_api import expect

from digits.app.training_runner import chosen_model
from digits.app.user_store import UserStore, original_png
from digits.data.styled_digits import STROKES, styled_samples
from model_loader import MODEL_PATH

# A run long enough to be caught under way: all the training images, 20 epochs (about 15 s).
RUN_TIMEOUT_MS = 60_000
# Where the slashed zero is drawn, (left, top, height) in canvas pixels: first to be corrected,
# then, after fine-tuning, smaller and elsewhere, so the model has not seen that input.
CORRECTED_BOX = (60, 30, 200)
NEW_BOX = (100, 70, 160)
# Earlier answers in the same hand, stored before the browser adds one more.
EARLIER_ANSWERS = 35


@pytest.fixture(scope="module")
def teach_server(tmp_path_factory):
    """The app on its own copies: (url, model file, samples database, runs folder)."""
    folder = tmp_path_factory.mktemp("teach")
    model = folder / "model.pkl"
    shutil.copyfile(MODEL_PATH, model)
    db, runs = folder / "samples.sqlite", folder / "runs"
    env = {"DIGITS_MODEL": str(model), "DIGITS_USER_DB": str(db), "DIGITS_RUNS_DIR": str(runs)}
    log = SCREENSHOTS.parent / "streamlit_test_browser_teach.log"
    with streamlit_server("app.py", log, env=env) as (url, _):
        yield url, model, db, runs


def network_view(page):
    """The locator of the visible "What the network sees" image."""
    image = page.get_by_test_id("stImage").filter(has_text="28x28 pixels", visible=True)
    return image.locator("img")


def draw_slashed_zero(page, where: tuple[float, float, float], read_as: str) -> None:
    """Draw bench/styled_digits.py's slashed 0 with the mouse, the ring then the slash, and
    check that the app reads the ring alone as a 0 and the whole as `read_as`.
    """
    canvas = pad_canvas(page)
    box = canvas.bounding_box()
    left, top, height = where
    ring, slash = STROKES[0]
    for stroke, reading in ((ring, "0"), (slash, read_as)):
        shown = network_view(page).get_attribute("src") if network_view(page).count() else None
        points = [
            (box["x"] + left + x * height * ASPECT, box["y"] + top + y * height) for x, y in stroke
        ]
        page.mouse.move(*points[0])
        page.wait_for_timeout(HOVER_SETTLE_MS)  # see test_browser.draw_digit
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=3)
        page.mouse.up()
        # The reading may not change with the stroke, but the network's view of it does: once
        # that is new, the reading above it is of the drawing so far.
        expect(network_view(page)).not_to_have_attribute(
            "src", shown or "", timeout=UPDATE_TIMEOUT_MS
        )
        expect(prediction(page)).to_have_text(reading, timeout=UPDATE_TIMEOUT_MS)


def test_a_correction_drawn_in_the_browser_becomes_a_sample(browser, teach_server):
    url, _, db, _ = teach_server
    page = open_app(browser, url, DESKTOP)
    draw_digit(page, 7, 20, 15, 200)
    expect(prediction(page)).to_have_text("7", timeout=UPDATE_TIMEOUT_MS)
    page.mouse.move(0, 0)

    # Say it was a 1: pick it beside the button, whose label follows the pick.
    page.get_by_test_id("stSelectbox").filter(visible=True).click()
    page.get_by_role("option", name="1", exact=True).click()
    wrong = page.get_by_role("button", name="Wrong, it was 1")
    expect(wrong).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
    wait_for_images(page)
    page.screenshot(path=SCREENSHOTS / "teach_answer.png")
    wrong.click()
    expect(page.get_by_text("Saved as a 1 in your samples")).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    page.screenshot(path=SCREENSHOTS / "teach_saved.png")
    (sample,) = UserStore(db).samples()
    assert (sample.label, sample.prediction, sample.source) == (1, 7, "canvas")
    assert UserStore(db).original(sample.id).startswith(b"\x89PNG")

    sidebar_link(page, "Your samples").click()
    expect(page.get_by_role("heading", name="Your samples")).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    samples = page.get_by_test_id("stMetric").filter(has_text="Samples")
    expect(samples.get_by_test_id("stMetricValue")).to_have_text("1")
    expect(page.get_by_text(re.compile(r"^1 · read 7$"))).to_be_visible()
    wait_for_images(page)
    page.screenshot(path=SCREENSHOTS / "teach_samples.png")
    page.close()


def status_widget_hidden(page) -> bool:
    """Whether the page's CSS hides Streamlit's "Running… Stop" widget, whenever it appears."""
    return page.evaluate(
        """() => {
            const probe = document.createElement("div");
            probe.dataset.testid = "stStatusWidget";
            document.body.appendChild(probe);
            const hidden = getComputedStyle(probe).visibility === "hidden";
            probe.remove();
            return hidden;
        }"""
    )


def test_the_train_page_shows_a_run_live_stops_it_and_uses_its_model(
    browser,
    teach_server,
):
    url, model, _, runs = teach_server
    before = model.read_bytes()
    page = open_app(browser, url, {"width": DESKTOP["width"], "height": TALL_PAGE})
    sidebar_link(page, "Train").click()
    expect(page.get_by_role("heading", name="Train the network")).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    epochs = page.get_by_label("Epochs", exact=True).first
    epochs.fill("20")
    page.get_by_role("button", name="Start training").click()

    # Under way: the progress bar, Stop and the live curves with some points on them.
    expect(page.get_by_text("Training under way")).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
    expect(page.get_by_test_id("stProgress")).to_be_visible()
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(2, timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_text(re.compile(r"^Epoch [3-9] of 20"))).to_be_visible(
        timeout=RUN_TIMEOUT_MS
    )
    page.screenshot(path=SCREENSHOTS / "teach_train_running.png")
    assert model.read_bytes() == before, "a run must not touch the app's model"
    assert status_widget_hidden(page), "one Stop: Streamlit's own shows only while a poll is slow"

    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text(re.compile(r"^Stopped after"))).to_be_visible(timeout=RUN_TIMEOUT_MS)
    use = page.get_by_role("button", name="Use this model")
    # Below the comparison with the model in use, whose drawn digits take seconds the first time.
    expect(use).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.screenshot(path=SCREENSHOTS / "teach_train_stopped.png")
    assert model.read_bytes() == before, "only Use this model replaces the app's model"
    assert not status_widget_hidden(page), "with no run under way, Streamlit's status is back"

    use.click()
    expect(page.get_by_text(re.compile(r"^The app now uses your model"))).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    back = page.get_by_role("button", name="Back to the shipped model")
    expect(back).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "teach_train_used.png")
    assert model.read_bytes() == before, "the shipped model file is never written"
    assert chosen_model(runs) is not None

    back.click()
    expect(page.get_by_text("The app now uses the shipped model")).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    assert chosen_model(runs) is None
    page.close()


def test_a_correction_and_fine_tuning_teach_the_app_to_read_a_slashed_zero(
    browser,
    teach_server,
):
    url, model, db, runs = teach_server
    before = model.read_bytes()
    store = UserStore(db)
    drawings, inputs, labels = styled_samples(EARLIER_ANSWERS, seed=0)
    for drawing, image, label in zip(drawings, inputs, labels, strict=True):
        store.add(int(label), image, original_png(drawing), prediction=None, source="earlier")

    # The model reads the slashed zero as an 8; the user says it was a 0.
    page = open_app(browser, url, {"width": DESKTOP["width"], "height": TALL_PAGE})
    draw_slashed_zero(page, CORRECTED_BOX, read_as="8")
    page.mouse.move(0, 0)
    page.get_by_test_id("stSelectbox").filter(visible=True).click()
    page.get_by_role("option", name="0", exact=True).click()
    page.get_by_role("button", name="Wrong, it was 0").click()
    expect(page.get_by_text("Saved as a 0 in your samples")).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    assert [(s.label, s.prediction) for s in store.samples() if s.source == "canvas"][-1] == (0, 8)

    # Fine-tune on the samples from the Train page, watched live, then use the result.
    sidebar_link(page, "Train").click()
    page.get_by_role("tab", name="Fine-tune on your samples").click()
    start = page.get_by_role("button", name="Start fine-tuning")
    expect(start).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
    start.click()
    expect(page.get_by_text("Fine-tuning under way")).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
    expect(page.get_by_test_id("stProgress")).to_be_visible()
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(2, timeout=RUN_TIMEOUT_MS)
    page.screenshot(path=SCREENSHOTS / "teach_finetune_running.png")
    finished = page.get_by_text(re.compile(r"^Finished in"))
    expect(finished).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(finished).to_contain_text("MNIST test accuracy")
    expect(finished).to_contain_text("held-out samples")
    page.screenshot(path=SCREENSHOTS / "teach_finetune_finished.png")
    assert model.read_bytes() == before, "only Use this model replaces the app's model"
    page.get_by_role("button", name="Use this model").click(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_text(re.compile(r"^The app now uses"))).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )

    # Back on the pad, which kept the corrected drawing, a new slashed zero is read as a 0.
    sidebar_link(page, "Draw a digit").click()
    expect(prediction(page)).to_have_count(1, timeout=UPDATE_TIMEOUT_MS)  # the kept drawing's
    press_clear(page)
    draw_slashed_zero(page, NEW_BOX, read_as="0")
    page.mouse.move(0, 0)
    wait_for_images(page)
    page.screenshot(path=SCREENSHOTS / "teach_finetune_reads_it.png")
    assert model.read_bytes() == before, "the run is chosen, the shipped file left alone"
    assert chosen_model(runs) is not None
    page.close()
