"""Driving the real app in headless Chromium: a server on a free port, mouse strokes, screenshots.

Runs `streamlit run app.py` and drives Debian's /usr/bin/chromium through Playwright, on a
desktop and on a phone-size screen. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect

from digits import PROJECT_ROOT
from digits.app.logic import EMPTY_PROMPT

ROOT = PROJECT_ROOT
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TALL_PAGE = 2000
SERVER_START_TIMEOUT = 30.0
# Generous: the first prediction also loads the model, and CI machines can be slow. A load
# benchmark, whose many browsers share the cores with the server, sets its own in the variable.
TIMEOUT_ENV = "DIGITS_BROWSER_TIMEOUT_MS"
UPDATE_TIMEOUT_MS = int(os.environ.get(TIMEOUT_ENV, 15_000))

# Digits as pen strokes in a unit box (x right, y down), each stroke a polyline drawn without
# lifting the mouse; all are single strokes, so a drawing is finished at its only mouse-up.
_ZERO = [
    (0.5 + 0.42 * math.sin(2 * math.pi * i / 24), 0.5 - 0.5 * math.cos(2 * math.pi * i / 24))
    for i in range(25)
]
DIGIT_STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [_ZERO],
    1: [[(0.6, 0.0), (0.45, 1.0)]],
    7: [[(0.05, 0.05), (0.95, 0.05), (0.65, 0.45), (0.4, 1.0)]],
    2: [
        [(0.1, 0.25), (0.3, 0.05), (0.7, 0.05), (0.9, 0.25), (0.85, 0.45), (0.1, 1.0),
         (0.95, 1.0)]
    ],
    3: [
        [(0.1, 0.1), (0.5, 0.0), (0.85, 0.15), (0.8, 0.4), (0.45, 0.5), (0.85, 0.6), (0.9, 0.85),
         (0.5, 1.0), (0.1, 0.9)]
    ],
    4: [[(0.7, 1.0), (0.7, 0.0), (0.05, 0.7), (0.95, 0.7)]],
    5: [
        [(0.85, 0.05), (0.2, 0.05), (0.15, 0.45), (0.5, 0.4), (0.85, 0.55), (0.85, 0.85),
         (0.5, 1.0), (0.1, 0.9)]
    ],
    6: [
        [(0.75, 0.05), (0.35, 0.3), (0.15, 0.65), (0.25, 0.95), (0.6, 1.0), (0.85, 0.8),
         (0.75, 0.55), (0.4, 0.5), (0.2, 0.7)]
    ],
}  # fmt: skip
# (digit, left, top, height) in canvas pixels: different sizes and places on the 280 px pad.
DESKTOP_DRAWINGS = [(1, 110, 40, 200), (7, 20, 15, 140), (0, 150, 150, 110)]
PHONE_DRAWINGS = [(7, 60, 60, 180), (0, 40, 30, 120)]
# The toolbar slides out of the way 0.1 s after hover starts and takes 0.1 s to do so.
HOVER_SETTLE_MS = 300
# Even then the toolbar's padding overlaps the canvas's top 4 px, so no stroke starts there.
TOP_MARGIN = 8
POLL_MS = 20
ONE_DIGIT = re.compile(r"^[0-9]$")
# A digit's width as a fraction of its height, as people draw them.
ASPECT = 0.7
# Streamlit scrolls inside its own container, so a screenshot of a whole page needs a viewport
# as tall as the page; this caps it.
MAX_HEIGHT = 6000


def sidebar_link(page, name: str):
    """The locator of the sidebar's link to the page titled `name`."""
    return page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(script: str, log: Path, env: dict | None = None) -> Iterator[tuple]:
    """Run `streamlit run script` headless on a free port; yields (url, process), stops it after."""
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
             "--server.port", str(port), "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    """Return once the server answers its health check; raise if it exits or takes too long."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"streamlit did not answer in {SERVER_START_TIMEOUT} s:\n{log.read_text()}")


def launch_chromium(playwright):
    """Debian's Chromium, headless; skips the test when it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; install Debian's chromium to run the browser tests")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def pad_canvas(page, pad: str = "canvas", layer: str = "upper"):
    """The locator of a pad's canvas: the "upper" one takes the mouse, the "lower" one the ink.

    By pad name (canvas.py), as the page has the Draw tab's pad and the Number tab's.
    """
    return page.locator(f".st-key-{pad}-pad canvas.dc-canvas.{layer}-canvas")


def draw_digit(
    page, digit: int, left: float, top: float, height: float, pad: str = "canvas"
) -> None:
    """Draw `digit` with the mouse, its box at (left, top) on the canvas and `height` px tall."""
    canvas = pad_canvas(page, pad)
    box = canvas.bounding_box(timeout=UPDATE_TIMEOUT_MS)
    width = height * ASPECT
    for stroke in DIGIT_STROKES[digit]:
        points = [(box["x"] + left + x * width, box["y"] + top + y * height) for x, y in stroke]
        page.mouse.move(*points[0])
        # Like a hand, rest on the canvas before pressing: until the pointer has hovered for
        # a moment, the component's hidden toolbar still covers the canvas's top-right corner.
        page.wait_for_timeout(HOVER_SETTLE_MS)
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=6)
        page.mouse.up()


def prediction(page):
    """The locator of the value of the visible metric labelled "Prediction".

    Visible only: an inactive tab can keep its last reading in the page, hidden.
    """
    metric = page.get_by_test_id("stMetric").filter(has_text="Prediction", visible=True)
    return metric.get_by_test_id("stMetricValue")


def canvas_ink(page, pad: str = "canvas") -> int:
    """The brightest red value in the pad's drawing layer (0 when nothing is drawn)."""
    # The component lives in a shadow root, which locators pierce and querySelector does not.
    return pad_canvas(page, pad, "lower").evaluate(
        """c => {
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let most = 0;
            for (let i = 0; i < d.length; i += 4) most = Math.max(most, d[i]);
            return most;
        }"""
    )


def press_clear(page, pad: str = "canvas") -> None:
    """Press Clear and wait until the emptied canvas has replaced the old one, in its place."""
    canvas = pad_canvas(page, pad)
    # A page just opened can still hold the last run's elements (a pad's old slot among them)
    # until its script finishes; only then is the canvas where it belongs.
    wait_until_no_stale_elements(page)
    wait_until_pad_settled(page, pad)
    old = canvas.element_handle()
    page.locator(f".st-key-{pad}-clear button").click()
    page.wait_for_function("canvas => !canvas.isConnected", arg=old, timeout=UPDATE_TIMEOUT_MS)
    wait_until_pad_settled(page, pad)


def wait_until_pad_settled(page, pad: str = "canvas") -> None:
    """Wait until the pad's canvas fills its slot alone, its top at the slot's top.

    A canvas mounted anew (after Clear, or back from another page) can sit for a moment below
    the old one's leftover space in the same slot, and a stroke aimed at it would miss.
    """
    canvas, slot = pad_canvas(page, pad), page.locator(f".st-key-{pad}-pad")
    deadline = time.monotonic() + UPDATE_TIMEOUT_MS / 1000
    while True:
        at = canvas.bounding_box(timeout=UPDATE_TIMEOUT_MS)
        room = slot.bounding_box(timeout=UPDATE_TIMEOUT_MS)
        if abs(at["y"] - room["y"]) < 1 and abs(at["height"] - room["height"]) < 1:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the pad's canvas is {at['y'] - room['y']:.0f} px below the top of its "
                f"{room['height']:.0f} px slot, not at it"
            )
        page.wait_for_timeout(POLL_MS)


def wait_until_no_stale_elements(page) -> None:
    """Wait until the page's script has finished its run (Streamlit's running icon is gone) and
    the page shows no element left over from an earlier run: only then is its layout final."""
    page.wait_for_function(
        """() => !document.querySelector('[data-stale="true"]')
                 && !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')""",
        timeout=UPDATE_TIMEOUT_MS,
    )


def clear(page) -> None:
    """Press Clear and check that the prediction has gone and the prompt is back."""
    press_clear(page)
    expect(page.get_by_text(EMPTY_PROMPT, exact=True)).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
    expect(prediction(page)).to_have_count(0)


def open_app(browser, url: str, viewport: dict, scale: float = 1):
    """A fresh page on the app, waited on until the empty pad and its prompt are shown."""
    page = browser.new_page(viewport=viewport, device_scale_factor=scale)
    page.goto(url, timeout=max(UPDATE_TIMEOUT_MS, 30_000))
    pad_canvas(page).wait_for(timeout=UPDATE_TIMEOUT_MS)
    expect(page.get_by_text(EMPTY_PROMPT, exact=True)).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
    return page


def whole_page_screenshot(page, name: str) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its own container, so the
    viewport is made tall, at the same width, and the images are waited for."""
    page.mouse.move(0, 0)  # off the pad, so its hover toolbar hides
    page.set_viewport_size({"width": page.viewport_size["width"], "height": TALL_PAGE})
    wait_for_images(page)
    page.screenshot(path=SCREENSHOTS / name)


def wait_for_images(page) -> None:
    """Wait until every image on the page has loaded, so a screenshot shows them."""
    page.wait_for_function(
        "() => [...document.images].every(img => img.complete && img.naturalWidth > 0)"
    )


def check_drawings(page, drawings: list[tuple], name: str) -> None:
    """Draw each digit on a cleared pad and check the prediction; screenshot each result."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for digit, left, top, height in drawings:
        draw_digit(page, digit, left, top, height)
        expect(prediction(page)).to_have_text(str(digit), timeout=UPDATE_TIMEOUT_MS)
        page.mouse.move(0, 0)  # away from the canvas, so its hover toolbar hides
        wait_for_images(page)
        page.screenshot(path=SCREENSHOTS / f"{name}_{digit}.png")
        assert canvas_ink(page) > 0, "the drawing is not on the canvas"
        clear(page)
        assert canvas_ink(page) == 0, "Clear left ink on the canvas"


def settle(page) -> None:
    """Wait until the script has finished, images have loaded and every chart is drawn."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=UPDATE_TIMEOUT_MS)
    wait_for_images(page)
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
            .every(c => c.querySelector('canvas, svg'))""",
        timeout=UPDATE_TIMEOUT_MS,
    )


def screenshot_whole(page, path, width: int) -> None:
    """A screenshot of the whole page, by making the viewport as tall as its content."""
    height = page.evaluate(
        """() => document.querySelector('[data-testid="stMainBlockContainer"]').scrollHeight"""
    )
    page.set_viewport_size({"width": width, "height": min(height + 100, MAX_HEIGHT)})
    settle(page)
    page.screenshot(path=path)
