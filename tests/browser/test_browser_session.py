"""What a learner keeps while flipping between pages, and the pad's own controls, in Chromium.

The drawing, the pen width, an upload, the MNIST pick and the open tab survive a visit to the
Look-inside pages; the pad's Undo and Redo work without hover (the component's toolbar is
hidden); on a phone, a bar of page links changes page in one tap.
"""

from __future__ import annotations

import io

from helpers.browser import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    UPDATE_TIMEOUT_MS,
    canvas_ink,
    draw_digit,
    open_app,
    pad_canvas,
    prediction,
    sidebar_link,
)
from PIL import Image
from playwright.sync_api import expect


def test_the_drawing_survives_a_visit_to_another_page(browser, app_url):
    page = open_app(browser, app_url, DESKTOP)
    draw_digit(page, 7, 60, 40, 180)
    expect(prediction(page)).to_have_text("7", timeout=UPDATE_TIMEOUT_MS)
    sidebar_link(page, "Inside the network").click()
    expect(page.get_by_role("heading", name="Inside the network")).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    sidebar_link(page, "Draw a digit").click()
    expect(prediction(page)).to_have_text("7", timeout=UPDATE_TIMEOUT_MS)
    assert canvas_ink(page) > 0, "the pad came back empty"
    page.mouse.move(0, 0)
    page.screenshot(path=SCREENSHOTS / "session_back_from_inside.png")
    draw_digit(page, 1, 220, 40, 180)  # the pad goes on taking strokes
    expect(prediction(page)).to_have_count(1, timeout=UPDATE_TIMEOUT_MS)
    page.close()


def test_the_upload_and_the_open_tab_survive_a_visit_to_another_page(browser, app_url, mnist):
    page = open_app(browser, app_url, DESKTOP)
    page.get_by_role("tab", name="Upload").click()
    scan = Image.fromarray(255 - mnist.test_images[1]).resize((200, 200))
    buffer = io.BytesIO()
    scan.save(buffer, format="PNG")
    page.locator(".st-key-upload input[type=file]").set_input_files(
        files=[{"name": "scan.png", "mimeType": "image/png", "buffer": buffer.getvalue()}]
    )
    digit = str(mnist.test_labels[1])
    expect(prediction(page)).to_have_text(digit, timeout=UPDATE_TIMEOUT_MS)
    sidebar_link(page, "Weights").click()
    expect(page.get_by_role("heading", name="Weights").first).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    sidebar_link(page, "Draw a digit").click()
    expect(page.get_by_role("tab", name="Upload", selected=True)).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    expect(prediction(page)).to_have_text(digit, timeout=UPDATE_TIMEOUT_MS)
    expect(page.get_by_text("Showing scan.png, uploaded before")).to_be_visible()
    page.get_by_role("button", name="Remove").click()
    expect(prediction(page)).to_have_count(0, timeout=UPDATE_TIMEOUT_MS)
    page.close()


def test_undo_and_redo_are_buttons_on_the_page_and_the_toolbar_is_hidden(browser, app_url):
    page = open_app(browser, app_url, PHONE)
    pad = pad_canvas(page)
    box = pad.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 5, box["y"] + 5)  # where the toolbar popped up
    expect(page.locator(".st-key-canvas-pad .dc-toolbar")).to_be_hidden()
    draw_digit(page, 7, 60, 40, 180)
    expect(prediction(page)).to_have_text("7", timeout=UPDATE_TIMEOUT_MS)
    page.get_by_role("button", name="Undo").click()
    expect(prediction(page)).to_have_count(0, timeout=UPDATE_TIMEOUT_MS)
    assert canvas_ink(page) == 0, "Undo left the stroke on the pad"
    page.get_by_role("button", name="Redo").click()
    expect(prediction(page)).to_have_text("7", timeout=UPDATE_TIMEOUT_MS)
    page.close()


def test_on_a_phone_one_tap_on_the_page_bar_changes_page(browser, app_url):
    page = open_app(browser, app_url, PHONE)
    bar = page.locator(".st-key-phone-pages")
    expect(bar).to_be_visible()
    bar.get_by_text("Inside", exact=True).click()
    expect(page.get_by_role("heading", name="Inside the network")).to_be_in_viewport(
        timeout=UPDATE_TIMEOUT_MS
    )
    sidebar = page.get_by_test_id("stSidebar")
    assert sidebar.bounding_box()["x"] + sidebar.bounding_box()["width"] <= 0, "sidebar is open"
    page.screenshot(path=SCREENSHOTS / "session_phone_page_bar.png")
    page.close()
    desktop = open_app(browser, app_url, DESKTOP)
    expect(desktop.locator(".st-key-phone-pages")).to_be_hidden()
    desktop.close()
