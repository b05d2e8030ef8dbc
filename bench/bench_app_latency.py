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
  drawings, and the app's again after its MNIST tab has loaded the test set;
- with --during-training, then the latency while a training run is under way on the same app
  server: a second page opens the Train page and presses "Start training" on its default
  settings; once the run is into its epochs, a fresh Draw page and the bare app take the same
  drawings in turns again, and afterwards the Stop button ends the run. The default run (10
  epochs) may end before the drawings do: then Start training is pressed again, and a turn
  during which a run ended is drawn again. Printed beside the idle drawings above: medians
  and percentiles, the ratios training/idle for both apps (the bare app's server runs no
  training, so its ratio is what the busy CPU alone costs), the app's memory during the run
  and how far the last run got. Off by default: it doubles the drawings.

The app's server gets its own copy of the model, samples database and runs folder in a
temporary folder (DIGITS_MODEL, DIGITS_USER_DB, DIGITS_RUNS_DIR), so a run started here leaves
nothing in runs/, data/user/ or model_params.pkl.

    python bench/bench_app_latency.py [--drawings 25] [--seed 0] [--during-training]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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
    pad_canvas,
    press_clear,
    streamlit_server,
)
from playwright.sync_api import sync_playwright

from digits.app.logic import EMPTY_PROMPT
from digits.app.training_runner import RUNS_ENV
from digits.app.user_store import DB_ENV
from digits.data.pad import CANVAS_SIDE
from model_loader import MODEL_PATH
from pages.shared import MODEL_ENV

LOGS = ROOT / "artifacts"
BARE_APP = "bench/bare_canvas_app.py"
BARE_LABEL = "Ink"  # bench/bare_canvas_app.py's INK_LABEL (that script cannot be imported)
APP_LABEL = "Prediction"
TARGET_RATIO = 1.2
MIN_DRAWINGS = 20
# Drawn digit heights in canvas pixels, from a small digit in a corner to one filling the pad.
DIGIT_HEIGHTS = (110, 220)
PERCENTILES = (10, 90)
# Streamlit takes a page's URL path from its file name, pages/training.py.
TRAIN_URL_PATH = "training"
TRAIN_HEADING = "Train the network"
EPOCH_TEXT = re.compile(r"^Epoch \d+ of \d+")
# Before its first epoch a run loads MNIST and the drawn digits: slow on a busy machine.
RUN_START_TIMEOUT_MS = 180_000

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
    pad_canvas(page).wait_for(timeout=UPDATE_TIMEOUT_MS)
    if label_free_marker:
        expect(page.get_by_text(label_free_marker, exact=True)).to_be_visible(
            timeout=UPDATE_TIMEOUT_MS
        )
    page.get_by_role("button", name="Clear").wait_for(timeout=UPDATE_TIMEOUT_MS)
    return page


def private_files(stack: ExitStack) -> dict[str, str]:
    """The app server's environment: its own model copy, samples database and runs folder."""
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_app_")))
    shutil.copyfile(MODEL_PATH, folder / "model.pkl")
    return {MODEL_ENV: str(folder / "model.pkl"), DB_ENV: str(folder / "samples.sqlite"),
            RUNS_ENV: str(folder / "runs")}  # fmt: skip


def start(stack: ExitStack, browser, script: str, marker: str | None, env: dict | None = None):
    """Start a server for `script` and open it; returns (page, pid, server-up s, interactive s)."""
    began = time.perf_counter()
    log = LOGS / f"bench_{Path(script).stem}.log"
    url, process = stack.enter_context(streamlit_server(script, log, env))
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


def rounds(app, bare, drawings: list[tuple], run: TrainingRun | None = None) -> tuple[list, list]:
    """The drawings in turns on the app and the bare app; each one's ms, for each app.

    With a `run`, a turn during which its run ended is done again, on the next run.
    """
    app_ms, bare_ms = [], []
    for drawing in drawings:
        while True:
            if run is not None:
                run.keep_going()
            turn = one_drawing(app, APP_LABEL, *drawing), one_drawing(bare, BARE_LABEL, *drawing)
            if run is None or run.under_way():
                break
            run.redone += 1
        app_ms.append(turn[0])
        bare_ms.append(turn[1])
    return app_ms, bare_ms


class TrainingRun:
    """The app's Train page in a page of its own, keeping its default training run under way."""

    def __init__(self, browser, origin: str):
        self.page = browser.new_page(viewport=DESKTOP)
        self.url = f"{origin}/{TRAIN_URL_PATH}"
        self.starts, self.redone = 0, 0
        self.start()

    def start(self) -> None:
        """Open the Train page afresh, press Start training and wait for the run's epochs."""
        # Afresh, as a new session: after a run the old one's form can come back with every
        # field at its widget's minimum, which "Start training" then refuses.
        self.page.goto(self.url)
        self.page.get_by_role("heading", name=TRAIN_HEADING).wait_for(timeout=UPDATE_TIMEOUT_MS)
        self.page.get_by_role("button", name="Start training").click()
        self.page.get_by_text(EPOCH_TEXT).wait_for(timeout=RUN_START_TIMEOUT_MS)
        self.starts += 1

    def under_way(self) -> bool:
        """Whether the run is in its epochs (not loading, scoring, saving or finished)."""
        return self.page.get_by_text(EPOCH_TEXT).count() > 0

    def keep_going(self) -> None:
        """Start the run again once it has finished, so that the next drawings have one."""
        if not self.under_way():
            # Not over yet while it scores and saves: a new run would be refused.
            self.page.get_by_text(re.compile(r"^Finished in")).wait_for(
                timeout=RUN_START_TIMEOUT_MS
            )
            self.start()

    def stop(self) -> str:
        """Press Stop and wait until the run has stopped; how far it had got."""
        reached = self.page.get_by_text(EPOCH_TEXT).inner_text().split(" · ")[0]
        self.page.get_by_role("button", name="Stop").click()
        self.page.get_by_text(re.compile(r"^Stopped after")).wait_for(timeout=RUN_START_TIMEOUT_MS)
        return reached


@dataclass
class DuringTraining:
    app_ms: list[float]
    bare_ms: list[float]
    memory: str  # the app server's, with the run's training data loaded
    reached: str  # the last run's progress when stopped, "Epoch 2 of 10"
    starts: int
    redone: int  # turns drawn again because the run ended during them


def during_training(browser, app_page, app_pid: int, bare, drawings) -> DuringTraining:
    """The drawings again, on a fresh Draw page, while the Train page's run is under way."""
    split = urlsplit(app_page.url)
    origin = f"{split.scheme}://{split.netloc}"
    # A fresh page: the first one's MNIST tab has left a hidden "Prediction" metric behind.
    app = open_when_interactive(browser, origin, EMPTY_PROMPT)
    one_drawing(app, APP_LABEL, *drawings[0])
    run = TrainingRun(browser, origin)
    app_ms, bare_ms = rounds(app, bare, drawings, run)
    memory = memory_text(app_pid)
    return DuringTraining(app_ms, bare_ms, memory, run.stop(), run.starts, run.redone)


def print_during_training(idle_app: list, idle_bare: list, busy: DuringTraining) -> None:
    app_ratio = statistics.median(busy.app_ms) / statistics.median(idle_app)
    bare_ratio = statistics.median(busy.bare_ms) / statistics.median(idle_bare)
    print(f"latency during the Train page's default run, {len(busy.app_ms)} drawings each "
          f"(runs started: {busy.starts}, turns redone as a run ended: {busy.redone}; "
          f"the last stopped at {busy.reached}):")  # fmt: skip
    print(f"  app  idle     {summary(idle_app)}")
    print(f"  app  training {summary(busy.app_ms)}")
    print(f"  bare idle     {summary(idle_bare)}")
    print(f"  bare training {summary(busy.bare_ms)}")
    print(f"  ratio training/idle (medians): app {app_ratio:.2f}, bare {bare_ratio:.2f}")
    print(f"  app server memory during the run {busy.memory}")


def memory_with_mnist(app, app_pid: int) -> str:
    """The app server's memory once its MNIST tab has loaded the test set."""
    app.get_by_role("tab", name="MNIST test digit").click()
    app.get_by_role("button", name="Random MNIST test digit").click()
    app.get_by_test_id("stMetric").filter(has_text="True label").wait_for(timeout=UPDATE_TIMEOUT_MS)
    return memory_text(app_pid)


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
    parser.add_argument(
        "--during-training",
        action="store_true",
        help="then the drawings again while the Train page's default run is under way",
    )
    args = parser.parse_args()
    if args.drawings < MIN_DRAWINGS:
        parser.error(f"--drawings must be at least {MIN_DRAWINGS} for a steady median")
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing; install Debian's chromium to run this benchmark.")

    drawings = placements(args.drawings, np.random.default_rng(args.seed))
    with sync_playwright() as playwright, ExitStack() as stack:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        env = private_files(stack)
        app, app_pid, app_up, app_ready = start(stack, browser, "app.py", EMPTY_PROMPT, env)
        bare, bare_pid, bare_up, bare_ready = start(stack, browser, BARE_APP, None)

        # One warm-up drawing each: the first run after start imports what later runs reuse.
        one_drawing(app, APP_LABEL, *drawings[0])
        one_drawing(bare, BARE_LABEL, *drawings[0])
        app_ms, bare_ms = rounds(app, bare, drawings)
        app_memory, bare_memory = memory_text(app_pid), memory_text(bare_pid)

        app_mnist_memory = memory_with_mnist(app, app_pid)
        busy = None
        if args.during_training:
            busy = during_training(browser, app, app_pid, bare, drawings)

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
    if busy is not None:
        print_during_training(app_ms, bare_ms, busy)


if __name__ == "__main__":
    main()
