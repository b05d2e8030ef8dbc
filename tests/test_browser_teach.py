"""Teaching the real app in headless Chromium: a correction becomes a sample, a run trains live.

The server gets its own model copy, samples database and runs folder (environment variables),
so nothing here touches the committed model. Screenshots go to artifacts/screenshots/teach_*.
"""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import expect
from test_browser import (
    DESKTOP,
    SCREENSHOTS,
    TALL_PAGE,
    UPDATE_TIMEOUT_MS,
    browser,  # noqa: F401  (the module-scoped Chromium fixture)
    draw_digit,
    open_app,
    prediction,
    streamlit_server,
    wait_for_images,
)

from model_loader import MODEL_PATH
from user_store import UserStore

pytestmark = pytest.mark.browser

# A run long enough to be caught under way: all 55,000 images, 20 epochs (about 15 s).
RUN_TIMEOUT_MS = 60_000


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


def sidebar_link(page, name: str):
    return page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True)


def test_a_correction_drawn_in_the_browser_becomes_a_sample(browser, teach_server):  # noqa: F811
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


def test_the_train_page_shows_a_run_live_stops_it_and_uses_its_model(
    browser,  # noqa: F811
    teach_server,
):
    url, model, _, runs = teach_server
    before = model.read_bytes()
    page = open_app(browser, url, {"width": DESKTOP["width"], "height": TALL_PAGE})
    sidebar_link(page, "Train").click()
    expect(page.get_by_role("heading", name="Train the network")).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    epochs = page.get_by_label("Epochs").first
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

    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text(re.compile(r"^Stopped after"))).to_be_visible(timeout=RUN_TIMEOUT_MS)
    use = page.get_by_role("button", name="Use this model")
    expect(use).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "teach_train_stopped.png")
    assert model.read_bytes() == before, "only Use this model replaces the app's model"

    use.click()
    expect(page.get_by_text(re.compile(r"^The app now uses"))).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    expect(page.get_by_role("button", name="Restore previous model")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "teach_train_used.png")
    assert model.read_bytes() != before
    (backup,) = runs.glob("previous-*.pkl")
    assert backup.read_bytes() == before

    page.get_by_role("button", name="Restore previous model").click()
    expect(page.get_by_text(re.compile(r"^Restored the previous model"))).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    assert model.read_bytes() == before
    page.close()
