"""A Train-page job in a process of its own: python -m digits.app.job_process

The runner calls a `RemoteJob` like any job; it starts this module as a child process, sends it
the job, hands each progress call the job makes on to the runner's Run, and returns the job's
Outcome or raises its exception. So a run's training images, its test set and its step buffers
live only in the child and go back to the system when the run ends, and the server answers
drawings meanwhile without sharing an interpreter lock with the training loop.

The pipes carry one pickle a message. To the child: its parent's sys.path (so the job's function
and loader import there as they do here), then (function, args, load); after that any byte asks
the job to stop, and so does the end of the input, so the child never outlives its server. From
the child: ("call", method, args, kwargs) for each progress call, then ("outcome", Outcome) or
("error", exception, traceback text).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from digits import PROJECT_ROOT

if TYPE_CHECKING:
    from digits.app.training_runner import Outcome, Run
    from digits.data.mnist import Mnist

# The Run methods a job may call from the child; should_stop is answered there.
RELAYED = ("say", "expect", "on_start", "on_batch", "on_epoch", "on_trial")
# How often the parent looks at the stop request while no message comes.
POLL_S = 0.1
# Drawings are answered first: the app's server keeps its priority while a run trains.
NICENESS = 5


class RemoteTraceback(Exception):
    """The child's traceback, chained to the exception it sent so the server's log shows it."""


@dataclass(frozen=True)
class RemoteJob:
    """A job run in a child process as function(run, load, *args) -> Outcome.

    function and the args must pickle (a module-level function and plain data), and so must
    the loader the runner passes.
    """

    function: Callable[..., Outcome]
    args: tuple[Any, ...] = ()

    def __call__(self, run: Run, load: Callable[[], Mnist]) -> Outcome:
        with subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=PROJECT_ROOT,
        ) as child:
            assert child.stdin is not None, "started with a pipe"
            assert child.stdout is not None, "started with a pipe"
            messages: queue.Queue[tuple] = queue.Queue()
            reader = threading.Thread(target=_read_all, args=(child.stdout, messages))
            reader.start()
            try:
                _send(child.stdin, list(sys.path))
                _send(child.stdin, (self.function, self.args, load))
                return _relay(messages, child.stdin, run, child)
            finally:
                # However it went here, the child ends after its current step (nothing to do
                # once it has ended by itself), and its last messages are read before it goes.
                child.stdin.close()
                child.wait()
                reader.join()


def _send(pipe: IO[bytes], message: object) -> None:
    pickle.dump(message, pipe, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.flush()


def _relay(
    messages: queue.Queue[tuple], to_child: IO[bytes], run: Run, child: subprocess.Popen
) -> Outcome:
    """Pass the child's progress calls to `run` until it sends its outcome or error."""
    stop_sent = False
    while True:
        if not stop_sent and run.should_stop():
            with contextlib.suppress(BrokenPipeError):  # it has ended already: nothing to stop
                to_child.write(b"s")
                to_child.flush()
            stop_sent = True
        try:
            kind, *body = messages.get(timeout=POLL_S)
        except queue.Empty:
            continue
        if kind == "call":
            method, args, kwargs = body
            assert method in RELAYED, f"the child called Run.{method}"
            getattr(run, method)(*args, **kwargs)
        elif kind == "outcome":
            return body[0]
        elif kind == "error":
            exc, text = body
            raise exc from RemoteTraceback(text)
        else:
            raise RuntimeError(
                f"The training process ended without a result (exit status {child.wait()}); "
                "its log is above."
            )


def _read_all(pipe: IO[bytes], messages: queue.Queue[tuple]) -> None:
    try:
        while True:
            messages.put(pickle.load(pipe))
    except (EOFError, pickle.UnpicklingError):
        messages.put(("ended",))


class RemoteRun:
    """The child's stand-in for the runner's Run: its progress calls go to the parent."""

    def __init__(self, pipe: IO[bytes], stop: threading.Event):
        self._pipe, self._stop = pipe, stop

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def __getattr__(self, method: str) -> Callable[..., None]:
        if method not in RELAYED:
            raise AttributeError(method)
        return lambda *args, **kwargs: _send(self._pipe, ("call", method, args, kwargs))


def _portable(exc: BaseException) -> BaseException:
    """exc if it survives a pickle round trip (the parent re-raises it), else a RuntimeError."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(repr(exc))
    return exc


def main() -> None:
    if hasattr(os, "nice"):
        os.nice(NICENESS)
    stdin = sys.stdin.buffer
    # The pipe to the parent is a copy of fd 1; fd 1 itself then goes to the log with fd 2,
    # so whatever the job prints cannot garble the messages.
    pipe = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.path[:] = pickle.load(stdin)
    function, args, load = pickle.load(stdin)
    stop = threading.Event()

    def wait_for_stop() -> None:
        stdin.read(1)  # a byte, or the end of the input when the parent has gone
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    message: tuple
    try:
        message = ("outcome", function(RemoteRun(pipe, stop), load, *args))
    except Exception as exc:
        message = ("error", _portable(exc), traceback.format_exc())
    with contextlib.suppress(BrokenPipeError):  # the server has gone, and anyone to tell
        _send(pipe, message)
    # Out without the interpreter's shutdown, which would wait for the input's lock that the
    # thread above holds while it waits for a stop byte (Python aborts on that).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
