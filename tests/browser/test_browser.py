"""The drawing page in a real browser: draw with the mouse, read the digit, clear, upload."""

import io

from helpers.browser import (
    DESKTOP,
    DESKTOP_DRAWINGS,
    ONE_DIGIT,
    PHONE,
    PHONE_DRAWINGS,
    SCREENSHOTS,
    TALL_PAGE,
    UPDATE_TIMEOUT_MS,
    check_drawings,
    draw_digit,
    open_app,
    prediction,
    wait_for_images,
)
from PIL import Image
from playwright.sync_api import expect


def test_desktop_reads_drawn_digits_and_clear_empties_the_pad(browser, app_url):
    page = open_app(browser, app_url, DESKTOP)
    page.screenshot(path=SCREENSHOTS / "desktop_empty.png")
    check_drawings(page, DESKTOP_DRAWINGS, "desktop")
    page.screenshot(path=SCREENSHOTS / "desktop_cleared.png")
    page.close()


def test_phone_reads_drawn_digits_without_horizontal_scrolling(browser, app_url):
    page = open_app(browser, app_url, PHONE, scale=3)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    check_drawings(page, PHONE_DRAWINGS, "phone")
    draw_digit(page, *PHONE_DRAWINGS[0])
    expect_text = str(PHONE_DRAWINGS[0][0])
    expect(prediction(page)).to_have_text(expect_text, timeout=UPDATE_TIMEOUT_MS)
    # With a prediction, its chart and the network's view on screen, still no sideways scroll.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.mouse.move(0, 0)
    # Streamlit scrolls inside its own container, so a full-page screenshot stops at the
    # viewport; a tall phone-wide viewport shows the whole result instead.
    page.set_viewport_size({"width": PHONE["width"], "height": TALL_PAGE})
    wait_for_images(page)
    page.screenshot(path=SCREENSHOTS / "phone_whole_page.png")
    page.close()


def test_upload_and_mnist_tabs_show_their_readings(browser, app_url, mnist):
    page = open_app(browser, app_url, DESKTOP)
    page.get_by_role("tab", name="Upload").click()
    # A dark digit on light paper, as a scan would be: MNIST test digit 1 enlarged and inverted.
    scan = Image.fromarray(255 - mnist.test_images[1]).resize((300, 300), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    scan.save(buffer, format="PNG")
    page.locator(".st-key-upload input[type=file]").set_input_files(
        files=[{"name": "scan.png", "mimeType": "image/png", "buffer": buffer.getvalue()}]
    )
    expect(prediction(page)).to_have_text(str(mnist.test_labels[1]), timeout=UPDATE_TIMEOUT_MS)
    page.set_viewport_size({"width": DESKTOP["width"], "height": TALL_PAGE})
    page.get_by_text("Show the preprocessing steps").click()
    expect(page.get_by_text("fitted 20x20")).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
    wait_for_images(page)
    page.screenshot(path=SCREENSHOTS / "desktop_upload_steps.png")

    page.set_viewport_size(DESKTOP)
    page.get_by_role("tab", name="MNIST test digit").click()
    page.get_by_role("button", name="Random MNIST test digit").click()
    label = page.get_by_test_id("stMetric").filter(has_text="True label", visible=True)
    expect(label.get_by_test_id("stMetricValue")).to_have_text(ONE_DIGIT, timeout=UPDATE_TIMEOUT_MS)
    expect(prediction(page)).to_have_text(ONE_DIGIT)
    wait_for_images(page)
    page.screenshot(path=SCREENSHOTS / "desktop_mnist.png")
    page.close()
