"""The "Why?" page in headless Chromium: a drawn digit, each view opened, and a unit reached from
the Inside page. Screenshots go to artifacts/screenshots/explain_<view>.png.
"""

from __future__ import annotations

import re

from helpers.browser import (
    DESKTOP,
    DIGIT_STROKES,
    SCREENSHOTS,
    UPDATE_TIMEOUT_MS,
    draw_digit,
    open_app,
    prediction,
    screenshot_whole,
    settle,
    sidebar_link,
)
from playwright.sync_api import expect

# A 1 as much of Europe writes it, with a long flag, which the shipped model reads as a 7: one
# stroke in a unit box, drawn at (left, top) with this height in canvas pixels.
EUROPEAN_ONE = [[(0.1, 0.25), (0.6, 0.0), (0.5, 1.0)]]
DRAWING = (60, 40, 200)
# Each view's button label (N is the digit read) and a text only that view shows.
VIEWS = [
    ("say", "What made it say {n}", "Shares by integrated gradients"),
    ("not", "Why {n} and not another", "widen that lead"),
    ("edit", "What would make it another", "each step adds or removes a little ink"),
    ("move", "Moving it", "Centring on"),
    ("unit", "What a unit looks for", "its weights"),
]


def test_each_view_opens_for_a_drawn_digit(browser, app_url, monkeypatch):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = open_app(browser, app_url, DESKTOP)
    monkeypatch.setitem(DIGIT_STROKES, 1, EUROPEAN_ONE)
    draw_digit(page, 1, *DRAWING)
    expect(prediction(page)).to_have_text(re.compile(r"^[0-9]$"), timeout=UPDATE_TIMEOUT_MS)
    read = prediction(page).inner_text()
    print(f"the 1 with a flag is read as {read}")
    sidebar_link(page, "Why did it say that?").click()
    expect(page.get_by_role("heading", name="Why did it say that?")).to_be_visible(
        timeout=UPDATE_TIMEOUT_MS
    )
    expect(page.get_by_text("Nothing drawn yet")).to_have_count(0)
    expect(prediction(page)).to_have_text(read)
    for name, label, marker in VIEWS:
        page.get_by_role("radio", name=label.format(n=read), exact=True).click()
        expect(page.get_by_text(marker).first).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
        settle(page)
        assert not page.get_by_test_id("stException").count(), f"{name} raised"
        screenshot_whole(page, SCREENSHOTS / f"explain_{name}.png", DESKTOP["width"])
        page.set_viewport_size(DESKTOP)
    page.close()


def test_a_unit_link_on_the_inside_page_opens_that_unit(browser, app_url):
    page = open_app(browser, app_url, DESKTOP)
    draw_digit(page, 7, 60, 40, 200)
    expect(prediction(page)).to_have_text("7", timeout=UPDATE_TIMEOUT_MS)
    sidebar_link(page, "Inside the network").click()
    link = page.get_by_role("link", name=re.compile(r"^unit \d+$")).first
    expect(link).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
    unit = link.inner_text().split()[-1]
    link.click()
    expect(page.get_by_text(f"unit {unit}: its weights")).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
    expect(page.get_by_role("spinbutton", name="Unit")).to_have_value(unit)
    page.close()
