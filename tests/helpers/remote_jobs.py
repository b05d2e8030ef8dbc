"""Jobs for digits/app/job_process.py's tests: module-level, so a child process can import them.

Each is called in the child as job(run, load, *args) and returns an Outcome (or fails).
"""

import os
import sys
import time

from digits.app.training_runner import Outcome
from digits.training.finetune import FinetuneError


def report(run, load, n: int) -> Outcome:
    """Reports n batches and what it loaded, printing noise on the way; names its process."""
    print("noise on standard output", flush=True)
    sys.stdout.buffer.write(b"\x80raw bytes\n")
    sys.stdout.flush()
    run.expect(1, n)
    for _ in range(n):
        run.on_batch(1, 0.5, 1.0)
    run.say("almost done", progress=0.99)
    return Outcome(summary=[f"pid {os.getpid()}", f"loaded {load()}"])


def until_stopped(run, load) -> Outcome:
    """Counts steps until the parent asks it to stop."""
    steps = 0
    run.say("started")
    while not run.should_stop():
        steps += 1
        time.sleep(0.01)
    return Outcome(summary=[f"stopped after {steps} steps"])


def fail_for_the_user(run, load) -> Outcome:
    raise FinetuneError("Teach the app at least 8 digits first.")


def divide_by_zero(run, load) -> Outcome:
    return Outcome(summary=[str(1 / 0)])


def die(run, load) -> Outcome:
    os._exit(3)


def loader_pid() -> int:
    """A loader that tells which process called it."""
    return os.getpid()


def report_pid_then_run_until_stopped(run, load, pid_file: str) -> Outcome:
    """Writes its process id to pid_file, then reports progress until told to stop."""
    with open(pid_file, "w") as out:
        out.write(str(os.getpid()))
    while not run.should_stop():
        run.say("working")
        time.sleep(0.01)
    return Outcome()
