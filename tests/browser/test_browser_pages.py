"""The "Look inside" pages in headless Chromium: each opens from the sidebar after a drawing.

Reuses the server and drawing helpers of tests/test_browser.py. Each page is screenshotted
whole, on a desktop and on a phone-size screen, to artifacts/screenshots/pages_<name>.png
and pages_<name>_phone.png, and its time from the sidebar click to its first content is
printed (run pytest with -s to see it), the first time and the second.
"""

from __future__ import annotations

import time

from helpers.browser import (
    DESKTOP,
    PHONE,
    POLL_MS,
    SCREENSHOTS,
    UPDATE_TIMEOUT_MS,
    draw_digit,
    open_app,
    prediction,
    screenshot_whole,
    settle,
)
from playwright.sync_api import expect

# (file name, sidebar title, a heading that shows the page has its content) for each page.
PAGES = [
    ("inside", "Inside the network", "From logits to probabilities"),
    ("explain", "Why did it say that?", "Why did it say that?"),
    ("weights", "Weights", "One unit up close"),
    ("model_evaluation", "Evaluation", "Which digits get mixed up"),
    ("dataset", "Dataset", "Pixel intensities"),
    ("history", "Training history", "Accuracy"),
]
# A 7 drawn large in the middle of the pad: (digit, left, top, height) in canvas pixels.
DRAWING = (7, 60, 40, 200)
# The right edge of the rightmost visible element of the page's content.
RIGHTMOST_JS = """() => Math.max(...[...document.querySelectorAll(
    '[data-testid="stMainBlockContainer"] *')].map(e => e.getBoundingClientRect().right))"""


def open_page(page, title: str, marker: str) -> float:
    """Click `title` in the sidebar and wait for its content; returns the seconds it took."""
    start = time.perf_counter()
    page.get_by_test_id("stSidebarNavLink").filter(has_text=title).click()
    heading = page.get_by_role("heading", name=marker)
    expect(heading.first).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
    return time.perf_counter() - start


def open_app_and_draw(browser, url: str, viewport: dict, scale: float = 1):
    """A fresh page on the app with a 7 drawn on the pad and read by the network."""
    page = open_app(browser, url, viewport, scale)
    draw_digit(page, *DRAWING)
    expect(prediction(page)).to_have_text(str(DRAWING[0]), timeout=UPDATE_TIMEOUT_MS)
    return page


def picked(page, label: str) -> str:
    """The value shown by the selectbox labelled `label`."""
    box = page.get_by_test_id("stSelectbox").filter(has_text=label)
    return box.locator("input").input_value() or box.inner_text().split("\n")[-1]


def click_a_confusion_cell(page) -> None:
    """Click the middle of the confusion matrix and check the pickers follow to that cell."""
    open_page(page, "Evaluation", "Which digits get mixed up")
    settle(page)
    chart = page.get_by_test_id("stVegaLiteChart").first  # the confusion matrix comes first
    chart.scroll_into_view_if_needed()
    before = picked(page, "True digit"), picked(page, "Read as")
    box = chart.locator("canvas, svg").first.bounding_box()
    # The plot fills the chart's lower right, below the column labels and right of the rows'.
    page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6)
    deadline = time.monotonic() + UPDATE_TIMEOUT_MS / 1000
    while (picked(page, "True digit"), picked(page, "Read as")) == before:
        assert time.monotonic() < deadline, f"the pickers stayed at {before} after the click"
        page.wait_for_timeout(POLL_MS)
    after = picked(page, "True digit"), picked(page, "Read as")
    assert after != before
    assert all(value.strip().isdigit() for value in after), after
    print(f"clicked the confusion-matrix cell true {after[0]}, read as {after[1]}")


def test_each_page_opens_from_the_sidebar_after_a_drawing_and_renders(browser, app_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = open_app_and_draw(browser, app_url, DESKTOP)
    timings = {}
    for name, title, marker in PAGES:
        first = open_page(page, title, marker)
        settle(page)
        assert not page.get_by_test_id("stException").count(), f"{name} raised"
        if name == "inside":
            expect(page.get_by_text("Nothing drawn yet")).to_have_count(0)
        screenshot_whole(page, SCREENSHOTS / f"pages_{name}.png", DESKTOP["width"])
        page.set_viewport_size(DESKTOP)
        timings[name] = first
    for name, title, marker in PAGES:
        second = open_page(page, title, marker)
        timings[name] = (timings[name], second)
        settle(page)
    for name, (first, second) in timings.items():
        print(f"{name}: first {first:.2f} s, second {second:.2f} s")
    click_a_confusion_cell(page)
    page.close()


def test_pages_fit_a_phone_screen_without_horizontal_scrolling(browser, app_url):
    page = open_app_and_draw(browser, app_url, PHONE, scale=2)
    for name, title, marker in PAGES:
        # On a phone the sidebar is an overlay: open it to navigate, then close it again.
        page.get_by_test_id("stExpandSidebarButton").click()
        open_page(page, title, marker)
        page.get_by_test_id("stSidebarCollapseButton").click()
        sidebar = page.get_by_test_id("stSidebar")
        page.wait_for_function(
            "sidebar => sidebar.getBoundingClientRect().right <= 0",
            arg=sidebar.element_handle(),
            timeout=UPDATE_TIMEOUT_MS,
        )
        settle(page)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} scrolls sideways: {width} px"
        # Streamlit's own container could scroll or clip instead: nothing may stick out of it.
        right = page.evaluate(RIGHTMOST_JS)
        assert right <= PHONE["width"], f"{name} has content {right:.0f} px from the left"
        screenshot_whole(page, SCREENSHOTS / f"pages_{name}_phone.png", PHONE["width"])
        page.set_viewport_size(PHONE)
    page.close()
