"""The Number tab in a real browser: write a number with the mouse and see every digit read."""

from helpers.browser import (
    ASPECT,
    DESKTOP,
    PHONE,
    UPDATE_TIMEOUT_MS,
    canvas_ink,
    draw_digit,
    open_app,
    pad_canvas,
    whole_page_screenshot,
)
from playwright.sync_api import expect

from digits.data.pad import NUMBER_PAD_HEIGHT, NUMBER_PAD_WIDTH
from pages.shared import NUMBER_PAD, TAB_NUMBER


def number_value(page):
    """The value of the visible metric labelled "Number"."""
    metric = page.get_by_test_id("stMetric").filter(has_text="Number", visible=True)
    return metric.get_by_test_id("stMetricValue")


def write_number(page, number: str, height_share: float = 0.7) -> None:
    """Write `number` on the number pad, digit after digit from the left, as the pad is shown."""
    box = pad_canvas(page, NUMBER_PAD).bounding_box()
    height = box["height"] * height_share
    step = height * ASPECT * 1.3
    left = (box["width"] - step * len(number)) / 2
    for i, digit in enumerate(number):
        draw_digit(page, int(digit), left + i * step, box["height"] * 0.15, height, NUMBER_PAD)


def open_number_tab(page) -> None:
    page.get_by_role("tab", name=TAB_NUMBER).click()
    pad_canvas(page, NUMBER_PAD).wait_for(timeout=UPDATE_TIMEOUT_MS)


def test_a_number_written_with_the_mouse_is_read_digit_by_digit(browser, app_url):
    page = open_app(browser, app_url, DESKTOP)
    open_number_tab(page)
    write_number(page, "2026")
    expect(number_value(page)).to_have_text("2026", timeout=UPDATE_TIMEOUT_MS)
    whole_page_screenshot(page, "desktop_number.png")
    page.close()


def test_the_number_pads_undo_undoes_only_its_own_strokes(browser, app_url):
    page = open_app(browser, app_url, DESKTOP)
    open_number_tab(page)
    write_number(page, "47")
    expect(number_value(page)).to_have_text("47", timeout=UPDATE_TIMEOUT_MS)
    page.locator(f".st-key-{NUMBER_PAD}-undo button").click()
    expect(number_value(page)).to_have_text("4", timeout=UPDATE_TIMEOUT_MS)
    assert canvas_ink(page, NUMBER_PAD) > 0, "Undo took more than the last stroke"
    page.close()


def test_on_a_phone_the_wide_pad_is_scaled_to_fit_and_still_reads(browser, app_url):
    page = open_app(browser, app_url, PHONE, scale=3)
    open_number_tab(page)
    box = pad_canvas(page, NUMBER_PAD).bounding_box()
    assert box["width"] < PHONE["width"], "the pad must fit the phone's screen"
    assert abs(box["width"] / box["height"] - NUMBER_PAD_WIDTH / NUMBER_PAD_HEIGHT) < 0.05
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    write_number(page, "305")
    expect(number_value(page)).to_have_text("305", timeout=UPDATE_TIMEOUT_MS)
    whole_page_screenshot(page, "phone_number.png")
    page.close()
