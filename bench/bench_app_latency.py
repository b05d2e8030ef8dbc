"""How quickly the app answers a stroke, against a bare canvas app, in headless Chromium.

Prints, from one run on this machine:
- latency: from the last mouse-up of a drawing to the "Prediction" metric appearing on the
  page, timed inside the browser (a capture-phase mouseup listener and a MutationObserver on
  one performance.now() clock), median and 10th-90th percentiles over --drawings drawings,
  each on a cleared pad; beside the same for bench/bare_canvas_app.py (the same canvas and a
  metric of the ink sum, nothing else), and their ratio (target: at most 1.2). Both include
  the canvas component's own 200 ms send debounce; the drawings alternate between the apps;
- cold start: from launching `streamlit run` to the page being interactive (the canvas shown
  and the first script run finished), for both apps;
- memory: the resident set (VmRSS, and its peak VmHWM) of each streamlit server after the
  drawings, and the app's again after its MNIST tab has loaded the test set.

    python bench/bench_app_latency.py [--drawings 25] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np
from helpers.browser import (
    ASPECT,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    DIGIT_STROKES,
    TOP_MARGIN,
    UPDATE_TIMEOUT_MS,
    draw_digit,
    press_clear,
    streamlit_server,
)
from playwright.sync_api import sync_playwright

from digits.app.logic import EMPTY_PROMPT
from digits.data.pad import CANVAS_SIDE

LOGS = ROOT / "artifacts"
BARE_APP = "bench/bare_canvas_app.py"
BARE_LABEL = "Ink"  # bench/bare_canvas_app.py's INK_LABEL (that script cannot be imported)
APP_LABEL = "Prediction"
TARGET_RATIO = 1.2
MIN_DRAWINGS = 20
# Drawn digit heights in canvas pixels, from a small digit in a corner to one filling the pad.
DIGIT_HEIGHTS = (110, 220)
PERCENTILES = (10, 90)

# Times the first appearance of a metric with the given label after the next mouse-up.
WATCH_JS = """label => {
    const watch = {up: null, shown: null};
    window.__latency = watch;
    const present = () => [...document.querySelectorAll('[data-testid="stMetricLabel"]')]
        .some(e => e.innerText.trim() === label);
    document.addEventListener("mouseup", () => { watch.up = performance.now(); },
                              {capture: true});
    const observer = new MutationObserver(() => {
        if (watch.up !== null && watch.shown === null && present()) {
            watch.shown = performance.now();
            observer.disconnect();
        }
    });
    observer.observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def status_kb(pid: int, field: str) -> int:
    """A memory field (VmRSS, VmHWM) of a process from /proc, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def memory_text(pid: int) -> str:
    return f"{status_kb(pid, 'VmRSS') / 1024:.0f} MB (peak {status_kb(pid, 'VmHWM') / 1024:.0f} MB)"


def open_when_interactive(browser, url: str, label_free_marker: str | None):
    """A desktop page on `url`, returned once the canvas shows and the first run has finished."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport=DESKTOP)
    page.goto(url)
    page.locator("canvas.upper-canvas").wait_for(timeout=UPDATE_TIMEOUT_MS)
    if label_free_marker:
        expect(page.get_by_text(label_free_marker, exact=True)).to_be_visible(
            timeout=UPDATE_TIMEOUT_MS
        )
    page.get_by_role("button", name="Clear").wait_for(timeout=UPDATE_TIMEOUT_MS)
    return page


def start(stack: ExitStack, browser, script: str, marker: str | None):
    """Start a server for `script` and open it; returns (page, pid, server-up s, interactive s)."""
    began = time.perf_counter()
    log = LOGS / f"bench_{Path(script).stem}.log"
    url, process = stack.enter_context(streamlit_server(script, log))
    answered = time.perf_counter() - began
    page = open_when_interactive(browser, url, marker)
    return page, process.pid, answered, time.perf_counter() - began


def one_drawing(page, label: str, digit: int, left: float, top: float, height: float) -> float:
    """Clear the pad, draw one single-stroke digit; ms from its mouse-up to `label` showing."""
    press_clear(page)
    page.get_by_test_id("stMetric").filter(has_text=label).first.wait_for(
        state="detached", timeout=UPDATE_TIMEOUT_MS
    )
    page.evaluate(WATCH_JS, label)
    draw_digit(page, digit, left, top, height)
    page.wait_for_function("() => window.__latency.shown !== null", timeout=UPDATE_TIMEOUT_MS)
    return page.evaluate("() => window.__latency.shown - window.__latency.up")


def placements(n: int, rng: np.random.Generator) -> list[tuple[int, float, float, float]]:
    """n (digit, left, top, height) drawings of single-stroke digits at varied sizes and places."""
    digits = sorted(d for d, strokes in DIGIT_STROKES.items() if len(strokes) == 1)
    drawings = []
    for i in range(n):
        height = rng.uniform(*DIGIT_HEIGHTS)
        left = rng.uniform(0, CANVAS_SIDE - ASPECT * height)
        top = rng.uniform(TOP_MARGIN, CANVAS_SIDE - height)
        drawings.append((digits[i % len(digits)], left, top, height))
    return drawings


def summary(ms: list[float]) -> str:
    (low, high), (p_low, p_high) = np.percentile(ms, PERCENTILES), PERCENTILES
    return f"median {statistics.median(ms):6.1f} ms  (p{p_low} {low:.1f}, p{p_high} {high:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drawings", type=int, default=25, help="drawings per app")
    parser.add_argument("--seed", type=int, default=0, help="for the digits' sizes and places")
    args = parser.parse_args()
    if args.drawings < MIN_DRAWINGS:
        parser.error(f"--drawings must be at least {MIN_DRAWINGS} for a steady median")
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing; install Debian's chromium to run this benchmark.")

    drawings = placements(args.drawings, np.random.default_rng(args.seed))
    with sync_playwright() as playwright, ExitStack() as stack:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        app, app_pid, app_up, app_ready = start(stack, browser, "app.py", EMPTY_PROMPT)
        bare, bare_pid, bare_up, bare_ready = start(stack, browser, BARE_APP, None)

        # One warm-up drawing each: the first run after start imports what later runs reuse.
        one_drawing(app, APP_LABEL, *drawings[0])
        one_drawing(bare, BARE_LABEL, *drawings[0])
        app_ms, bare_ms = [], []
        for drawing in drawings:
            app_ms.append(one_drawing(app, APP_LABEL, *drawing))
            bare_ms.append(one_drawing(bare, BARE_LABEL, *drawing))
        app_memory, bare_memory = memory_text(app_pid), memory_text(bare_pid)

        app.get_by_role("tab", name="MNIST test digit").click()
        app.get_by_role("button", name="Random MNIST test digit").click()
        app.get_by_test_id("stMetric").filter(has_text="True label").wait_for(
            timeout=UPDATE_TIMEOUT_MS
        )
        app_mnist_memory = memory_text(app_pid)

    ratio = statistics.median(app_ms) / statistics.median(bare_ms)
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"latency, last mouse-up -> metric shown, {len(drawings)} drawings each:")
    print(f"  app  {summary(app_ms)}")
    print(f"  bare {summary(bare_ms)}")
    print(f"  ratio app/bare (medians) {ratio:.2f}  ({verdict} the {TARGET_RATIO} target)")
    print("cold start, launch -> page interactive (server answering):")
    print(f"  app  {app_ready:5.2f} s  ({app_up:.2f} s)")
    print(f"  bare {bare_ready:5.2f} s  ({bare_up:.2f} s)")
    print("server memory, RSS after the drawings:")
    print(f"  app  {app_memory}")
    print(f"  bare {bare_memory}")
    print(f"  app with the MNIST test set loaded {app_mnist_memory}")


if __name__ == "__main__":
    main()
