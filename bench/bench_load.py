"""Many users on one app server while the Train page trains: errors, answers, latency, memory.

One `streamlit run app.py` server, on its own model copy, samples database and runs folder
(bench_app_latency.private_files). A Train page session starts the Train page's default run
(bench_app_latency.TrainingRun: 10 epochs on all the training images and the drawn digits) and
starts it again whenever it ends, until the last phase is over. Then, in phases, one session
alone (the reference), --sessions sessions at once (10, then 25), each in a browser of its own
on a thread of its own: each opens the Draw page (OPENING_AT_ONCE browsers starting at a time),
and once all are open, draws --digits digits on a cleared pad with the mouse
(tests/helpers/browser.py), waits for the prediction and answers Right, or every other time
Wrong with another digit picked, and waits for "Saved as".

Prints, per phase: exceptions raised in a session (a timeout included) and every error box
(st.exception or st.error) seen on any page, which must both be none; the answers given against
the rows the store holds for them, matched by (label, prediction); the last mouse-up to
"Prediction" latency, timed in the browser (bench_app_latency.WATCH_JS), median and 95th
percentile, and their ratio to the session alone; and peak memory, sampled from /proc every
0.1 s: the server process's RSS (target: at most 300 MB with 10 sessions), and its process tree,
which adds a run's own process and augmentation worker while the Train page trains: the tree's
PSS, and its RSS summed, which counts the pages those processes share twice.

With --no-training the Train page stays idle, which shows what the sessions alone take.

    python bench/bench_load.py [--sessions 10 25] [--digits 4] [--seed 0] [--no-training]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# What a session waits for at most, in every step the browser helpers take: many browsers and
# a training share two cores with the server, so a step can take far longer than when idle.
# Set before the helpers are imported, which read it once.
LOAD_TIMEOUT_MS = 120_000
os.environ.setdefault("DIGITS_BROWSER_TIMEOUT_MS", str(LOAD_TIMEOUT_MS))

import numpy as np
from bench_app_latency import (
    APP_LABEL,
    LOGS,
    TrainingRun,
    one_drawing,
    placements,
    private_files,
)
from helpers.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, open_app, prediction, streamlit_server
from playwright.sync_api import sync_playwright

from digits.app.user_store import DB_ENV, UserStore

TARGET_MB = 300
TARGET_SESSIONS = 10
# Browsers that start at the same time: 25 Chromiums launching at once on two cores, beside the
# server and a training, time each other out before any page has loaded.
OPENING_AT_ONCE = 3
ERROR_BOXES = '[data-testid="stException"], [data-testid="stAlertContentError"]'
SAMPLE_S = 0.1


@dataclass
class Session:
    """What one session did: latencies, answers (label, prediction) given, problems seen."""

    latencies_ms: list[float] = field(default_factory=list)
    answers: list[tuple[int, int]] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    error_boxes: list[str] = field(default_factory=list)


def answer(page, right: bool) -> tuple[int, int]:
    """Press Right, or Wrong after picking another digit; (label, prediction) once it is saved."""
    predicted = int(prediction(page).inner_text())
    page.mouse.move(0, 0)  # off the pad, so its hover toolbar hides
    label = predicted
    if not right:
        label = (predicted + 1) % 10
        page.get_by_test_id("stSelectbox").filter(visible=True).click()
        page.get_by_role("option", name=str(label), exact=True).click()
    name = "Right" if right else f"Wrong, it was {label}"
    page.get_by_role("button", name=name).click(timeout=LOAD_TIMEOUT_MS)
    page.get_by_text("Saved as").wait_for(timeout=LOAD_TIMEOUT_MS)
    return label, predicted


def error_boxes(page) -> list[str]:
    return [box.inner_text() for box in page.locator(ERROR_BOXES).all()]


def run_session(
    url: str,
    drawings: list[tuple],
    opening: threading.Semaphore,
    ready: threading.Barrier,
    out: Session,
) -> None:
    """One user in a browser of their own: open the Draw page, then draw and answer each digit.

    The browser starts and opens the page when `opening` lets it; the drawing starts once
    every session is `ready`.
    """
    with sync_playwright() as playwright, ExitStack() as stack:
        with opening:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            stack.callback(browser.close)
            try:
                page = open_app(browser, url, DESKTOP)
            except Exception as exc:  # reported with the others; the other sessions go on
                out.exceptions.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
                ready.abort()
                return
        try:
            page.on("pageerror", lambda exc: out.exceptions.append(f"page error: {exc}"))
            ready.wait()
            for i, drawing in enumerate(drawings):
                out.latencies_ms.append(one_drawing(page, APP_LABEL, *drawing))
                out.answers.append(answer(page, right=i % 2 == 0))
                out.error_boxes += error_boxes(page)
        except Exception as exc:  # reported with the others; the other sessions go on
            out.exceptions.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            ready.abort()


def process_memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB of one process, from /proc/<pid>/smaps_rollup."""
    fields = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    )
    return int(fields["Rss"].split()[0]), int(fields["Pss"].split()[0])


def anonymous_kb(pid: int) -> int:
    """The part of a process's RSS that is its own memory (heap, stacks), not mapped files."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise ValueError(f"no RssAnon in /proc/{pid}/status")


def tree_memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB of a process and all its descendants.

    The RSS sum counts a page shared by two processes twice (the training images a run's
    process shares with its augmentation worker, the libraries all map); PSS splits each shared
    page among the processes that map it, so its sum is the memory the tree takes.
    """
    rss = pss = 0
    todo = [pid]
    while todo:
        pid = todo.pop()
        try:
            one_rss, one_pss = process_memory_kb(pid)
            rss, pss = rss + one_rss, pss + one_pss
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass  # the process ended while being read
    return rss, pss


class PeakMemory:
    """Peaks sampled on a thread while the `with` block runs: the server process's own RSS,
    and its tree's PSS and summed RSS (the tree adds a run's process and its worker)."""

    def __init__(self, pid: int):
        self.pid, self.peak_server_rss_kb, self.peak_rss_kb, self.peak_pss_kb = pid, 0, 0, 0
        self.peak_server_anon_kb = 0
        self._done = threading.Event()

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(SAMPLE_S):
            server_rss, _ = process_memory_kb(self.pid)
            rss, pss = tree_memory_kb(self.pid)
            self.peak_server_rss_kb = max(self.peak_server_rss_kb, server_rss)
            self.peak_server_anon_kb = max(self.peak_server_anon_kb, anonymous_kb(self.pid))
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_pss_kb = max(self.peak_pss_kb, pss)


class KeepTraining:
    """The Train page in a browser of its own, on a thread, keeping a run under way until closed."""

    def __init__(self, origin: str):
        self.origin, self.started = origin, threading.Event()
        self.done, self.failure = threading.Event(), ""
        self.starts, self.reached = 0, ""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                run = TrainingRun(browser, self.origin)
                self.started.set()
                while not self.done.wait(1.0):
                    run.keep_going()
                self.starts, self.reached = run.starts, run.stop()
            except Exception as exc:  # reported in the output
                self.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            finally:
                self.started.set()
                browser.close()

    def close(self) -> None:
        self.done.set()
        self._thread.join()


@dataclass
class Phase:
    sessions: list[Session]
    stored: collections.Counter  # the rows the store gained, as (label, prediction)
    peak_server_rss_kb: int
    peak_server_anon_kb: int
    peak_rss_kb: int
    peak_pss_kb: int
    seconds: float


def run_phase(url: str, pid: int, db: Path, n: int, drawings: list[tuple]) -> Phase:
    """n sessions at once, each drawing and answering `drawings`; what they saw, peak memory."""
    before = stored_answers(db)
    sessions = [Session() for _ in range(n)]
    opening, ready = threading.Semaphore(OPENING_AT_ONCE), threading.Barrier(n)
    threads = [
        threading.Thread(target=run_session, args=(url, drawings, opening, ready, s))
        for s in sessions
    ]
    started = time.perf_counter()
    with PeakMemory(pid) as memory:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    seconds = time.perf_counter() - started
    stored = stored_answers(db) - before
    peaks = (
        memory.peak_server_rss_kb, memory.peak_server_anon_kb, memory.peak_rss_kb,
        memory.peak_pss_kb,
    )  # fmt: skip
    return Phase(sessions, stored, *peaks, seconds)


def stored_answers(db: Path) -> collections.Counter:
    return collections.Counter((s.label, s.prediction) for s in UserStore(db).samples())


def percentile_text(ms: list[float]) -> str:
    if not ms:
        return "no drawings"
    return f"median {statistics.median(ms):7.0f} ms  p95 {np.percentile(ms, 95):7.0f} ms"


def print_phase(name: str, phase: Phase, solo: list[float]) -> None:
    ms = [t for s in phase.sessions for t in s.latencies_ms]
    given = collections.Counter(a for s in phase.sessions for a in s.answers)
    print(f"{name}: {len(phase.sessions)} sessions, {len(ms)} drawings, {phase.seconds:.0f} s")
    print(f"  latency  {percentile_text(ms)}", end="")
    if ms and solo:
        median = statistics.median(ms) / statistics.median(solo)
        p95 = np.percentile(ms, 95) / np.percentile(solo, 95)
        print(f"  (x{median:.2f} and x{p95:.2f} the session alone)", end="")
    print()
    missing, extra = given - phase.stored, phase.stored - given
    print(f"  answers  given {given.total()}, rows added to the store {phase.stored.total()}"
          f"{', missing ' + str(dict(missing)) if missing else ''}"
          f"{', unexpected ' + str(dict(extra)) if extra else ''}")  # fmt: skip
    problems = [p for s in phase.sessions for p in s.exceptions + s.error_boxes]
    print(f"  exceptions and error boxes: {len(problems) or 'none'}")
    for problem in sorted(set(problems)):
        print(f"    {problems.count(problem)} x {problem}")
    verdict = ""
    if len(phase.sessions) == TARGET_SESSIONS:
        meets = phase.peak_server_rss_kb <= TARGET_MB * 1024
        verdict = f" ({'meets' if meets else 'misses'} the {TARGET_MB} MB target)"
    print(f"  peak memory: server process RSS {phase.peak_server_rss_kb / 1024:.0f} MB{verdict} "
          f"(its own, not mapped files: {phase.peak_server_anon_kb / 1024:.0f} MB); "
          f"with the run's processes PSS {phase.peak_pss_kb / 1024:.0f} MB, "
          f"RSS summed {phase.peak_rss_kb / 1024:.0f} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 25])
    parser.add_argument("--digits", type=int, default=4, help="digits each session draws")
    parser.add_argument("--seed", type=int, default=0, help="for the digits' sizes and places")
    parser.add_argument(
        "--no-training", action="store_true", help="leave the Train page idle: the reference"
    )
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing; install Debian's chromium to run this benchmark.")

    drawings = placements(args.digits, np.random.default_rng(args.seed))
    with ExitStack() as stack:
        env = private_files(stack)
        db = Path(env[DB_ENV])
        url, process = stack.enter_context(streamlit_server("app.py", LOGS / "bench_load.log", env))
        # A first drawing loads the model, which a user's first drawing waits for once a server.
        warm_up = run_phase(url, process.pid, db, 1, drawings[:1])
        training = None if args.no_training else KeepTraining(url)
        if training is not None:
            training.started.wait()
        try:
            phases = [("alone", run_phase(url, process.pid, db, 1, drawings))]
            for n in args.sessions:
                phases.append((f"{n} at once", run_phase(url, process.pid, db, n, drawings)))
        finally:
            if training is not None:
                training.close()
        rows = UserStore(db).count()

    if training is None:
        print(f"{args.digits} digits per session; no training (--no-training)")
    else:
        reached = training.reached or "?"
        print(f"{args.digits} digits per session; the Train page's default run kept under way "
              f"(runs started: {training.starts}; the last stopped at {reached})")  # fmt: skip
        if training.failure:
            print(f"  the Train page session failed: {training.failure}")
    solo = phases[0][1].sessions[0].latencies_ms
    print_phase("warm-up", warm_up, [])
    for name, phase in phases:
        print_phase(name, phase, solo)
    given = sum(len(s.answers) for p in [warm_up, *(p for _, p in phases)] for s in p.sessions)
    print(f"store: {rows} rows for {given} answers given in all")


if __name__ == "__main__":
    main()
