"""Does the samples store lose answers when many writers answer at once on a busy machine?

For each version of digits/app/user_store.py (--store-from: a git revision, or "." for the file
in this worktree; by default the one before the fix of issue 14, a724108^, against "."), it runs
--writers writers of --answers answers each, all let go at the same moment, as threads of one
process and as processes, on three files: a new one, an existing one (already set up, in WAL)
and an existing one left in rollback-journal mode (journal_mode = DELETE), --repetitions times
each, while a process per core burns CPU. An answer is lost when add() raises StoreError (what
the app shows in an error box); it prints, per case, the answers lost out of those given, the
repetitions with any loss, the first error, and the median time of a repetition.

    python bench/bench_user_store.py [--writers 16] [--answers 200] [--repetitions 20]
        [--store-from a724108^ --store-from .]
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from digits.data.mnist import IMAGE_SIDE

STORE_FILE = "digits/app/user_store.py"
BEFORE_FIX = "a724108^"
WORKTREE = "."
# Fork, not spawn: a writer process starts in milliseconds and inherits the loaded store module.
FORK = multiprocessing.get_context("fork")
FILES = ("new", "existing", "rollback journal")
KINDS = ("threads", "processes")


def load_store(revision: str, folder: Path) -> tuple[str, ModuleType]:
    """user_store.py as it is at `revision` ("." for the worktree's), as a module; its label."""
    if revision == WORKTREE:
        path, label = ROOT / STORE_FILE, "this worktree"
    else:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", revision], cwd=ROOT, check=True,
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        source = subprocess.run(
            ["git", "show", f"{commit}:{STORE_FILE}"], cwd=ROOT, check=True,
            capture_output=True, text=True,
        ).stdout  # fmt: skip
        path, label = folder / f"user_store_{commit}.py", f"{revision} ({commit})"
        path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return label, module


def prepare_file(store_module: ModuleType, path: Path, kind: str) -> int:
    """Make the file a case starts from; how many answers it already holds."""
    if kind == "new":
        return 0
    store = store_module.UserStore(path)
    store.add(0, np.zeros((IMAGE_SIDE, IMAGE_SIDE), np.float32), b"png", source="earlier")
    if kind == "rollback journal":
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA journal_mode = DELETE")
    return 1


def write_answers(store_module: ModuleType, path: Path, writer: int, answers: int) -> list[str]:
    """Add `answers` answers; the message of each one refused (lost)."""
    store = store_module.UserStore(path)
    refused = []
    for i in range(answers):
        image = np.full((IMAGE_SIDE, IMAGE_SIDE), i / answers, np.float32)
        try:
            store.add(i % 10, image, b"png", prediction=(i + 1) % 10, source=f"{writer}-{i}")
        except store_module.StoreError as exc:
            refused.append(str(exc))
    return refused


def _thread_writer(go: threading.Barrier, refused: list, *args) -> None:
    go.wait()
    refused.extend(write_answers(*args))


def in_threads(store_module: ModuleType, path: Path, writers: int, answers: int) -> list[str]:
    go, refused = threading.Barrier(writers), []
    threads = [
        threading.Thread(target=_thread_writer, args=(go, refused, store_module, path, w, answers))
        for w in range(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return refused


def _process_writer(go, results, *args) -> None:
    go.wait()
    results.put(write_answers(*args))


def in_processes(store_module: ModuleType, path: Path, writers: int, answers: int) -> list[str]:
    go, results = FORK.Barrier(writers), FORK.Queue()
    processes = [
        FORK.Process(target=_process_writer, args=(go, results, store_module, path, w, answers))
        for w in range(writers)
    ]
    for process in processes:
        process.start()
    refused = [message for _ in processes for message in results.get()]
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a writer process ended with exit code {process.exitcode}")
    return refused


RUNNERS: dict[str, Callable[..., list[str]]] = {"threads": in_threads, "processes": in_processes}


@dataclass
class Case:
    given: int = 0
    lost: int = 0
    refused: int = 0  # answers add() raised StoreError for; lost should equal it
    repetitions_with_loss: int = 0
    first_error: str = ""
    seconds: list[float] = field(default_factory=list)


def run_repetition(store_module, kind: str, file: str, args, path: Path, case: Case) -> None:
    """One repetition of a case on a file of its own; adds its figures to `case`."""
    before = prepare_file(store_module, path, file)
    started = time.perf_counter()
    refused = RUNNERS[kind](store_module, path, args.writers, args.answers)
    case.seconds.append(time.perf_counter() - started)
    given = args.writers * args.answers
    with closing(sqlite3.connect(path)) as conn:
        kept = conn.execute("SELECT count(*) FROM samples").fetchone()[0] - before
    case.given += given
    case.lost += given - kept
    case.refused += len(refused)
    case.repetitions_with_loss += kept < given
    case.first_error = case.first_error or (refused[0] if refused else "")


def burn() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--answers", type=int, default=200, help="answers per writer")
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument(
        "--store-from",
        action="append",
        metavar="REV",
        help=f'a git revision of {STORE_FILE}, or "." for this worktree\'s; repeatable '
        f"(default: {BEFORE_FIX} and .)",
    )
    args = parser.parse_args()
    revisions = args.store_from or [BEFORE_FIX, WORKTREE]

    burners = [FORK.Process(target=burn, daemon=True) for _ in range(os.cpu_count() or 1)]
    for burner in burners:
        burner.start()
    print(f"{args.writers} writers x {args.answers} answers, {args.repetitions} repetitions per "
          f"case, {len(burners)} CPU-burning processes; the versions take turns")  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix="bench_store_") as tmp:
            folder = Path(tmp)
            stores = dict(load_store(revision, folder) for revision in revisions)
            cases = {(label, kind, file): Case() for label in stores for kind in KINDS
                     for file in FILES}  # fmt: skip
            for kind in KINDS:
                for file in FILES:
                    for repetition in range(args.repetitions):
                        for n, (label, module) in enumerate(stores.items()):
                            name = f"{n}-{kind}-{file}-{repetition}.sqlite".replace(" ", "_")
                            case = cases[label, kind, file]
                            run_repetition(module, kind, file, args, folder / name, case)
    finally:
        for burner in burners:
            burner.terminate()
            burner.join()
    for label in stores:
        print(f"user_store.py from {label}:")
        for kind in KINDS:
            for file in FILES:
                print_case(kind, file, cases[label, kind, file])


def print_case(kind: str, file: str, case: Case) -> None:
    seconds = statistics.median(case.seconds)
    print(f"  {kind:9} {file:16} lost {case.lost:5} of {case.given}  "
          f"repetitions with a loss {case.repetitions_with_loss:2}  "
          f"(refused {case.refused})  median {seconds:5.2f} s/repetition")  # fmt: skip
    if case.first_error:
        print(f"    first error: {case.first_error}")


if __name__ == "__main__":
    main()
