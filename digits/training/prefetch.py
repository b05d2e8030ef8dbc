"""Network input prepared one chunk ahead, on the second core, while the first trains.

Augmentation runs in a process of its own (ProcessAugmenter): in a thread it would share the
interpreter lock with the training loop, and both are made of many short NumPy calls, so each
would wait for the other at every call (bench/bench_train.py shows the cost). The training
images and two output chunks are files mapped into both processes, so only indices cross
the pipe.
Plain input (ThreadPrefetcher) is one cheap conversion a chunk, for which a thread is enough.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn, Protocol

import numpy as np

from digits import PROJECT_ROOT
from digits.data.augment import AugmentConfig
from digits.data.mnist import N_PIXELS, to_input

# Memory-backed where the system has such a folder, so the files never reach a disk.
SHARED_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None


class Pending(Protocol):
    def result(self) -> np.ndarray: ...


class Prefetcher(Protocol):
    """Starts preparing the network input of images[idx]; `result()` of what it returns waits."""

    def submit(self, idx: np.ndarray) -> Pending: ...


class ThreadPrefetcher:
    """prepare(images[idx]) on a thread, one chunk ahead."""

    def __init__(self, images: np.ndarray, prepare: Callable[[np.ndarray], np.ndarray]):
        self.images, self.prepare = images, prepare
        self.pool = ThreadPoolExecutor(max_workers=1)

    def submit(self, idx: np.ndarray) -> Future:
        return self.pool.submit(lambda: self.prepare(self.images[idx]))

    def __enter__(self) -> ThreadPrefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(cancel_futures=True)


class _Chunk:
    """A submitted chunk: its result is a view of the shared output it is written to."""

    def __init__(self, owner: ProcessAugmenter, number: int, out: np.ndarray):
        self.owner, self.number, self.out = owner, number, out

    def result(self) -> np.ndarray:
        return self.out[: self.owner.wait(self.number)]


class ProcessAugmenter:
    """augment_batch(images[idx]) in a worker process, one chunk ahead, into shared memory.

    The worker (augment_worker.py, a program of its own, so nothing of the caller's main
    module runs again in it) draws from a copy of `rng` in the order chunks are submitted, so
    the output is that of augment_batch(images[idx], rng, config) called here chunk by chunk.
    """

    def __init__(
        self, images: np.ndarray, rng: np.random.Generator, config: AugmentConfig, chunk: int
    ):
        self.busy_seconds = 0.0
        self.sent = self.received = self.last_size = 0
        # Files mapped into both processes rather than SharedMemory blocks: a mapping lives
        # as long as an array uses it (a batch the caller still holds), even once the files
        # are deleted, whereas a block closed under an array leaves it pointing at nothing.
        self.folder = tempfile.TemporaryDirectory(
            prefix="digits-augment-", dir=SHARED_DIR, ignore_cleanup_errors=True
        )
        files = Path(self.folder.name, "images"), Path(self.folder.name, "outputs")
        mapped(files[0], images.nbytes)[: images.nbytes].reshape(images.shape)[...] = images
        self.outputs = mapped(files[1], 2 * chunk * N_PIXELS * 4, np.float32).reshape(2, chunk, -1)
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "digits.training.augment_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=PROJECT_ROOT,
        )
        self._send((str(files[0]), images.shape, str(files[1]), chunk, rng, config))

    def _send(self, message) -> None:
        assert self.worker.stdin is not None, "started with a pipe"
        try:
            pickle.dump(message, self.worker.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.worker.stdin.flush()
        except BrokenPipeError:
            self._stopped()

    def submit(self, idx: np.ndarray) -> _Chunk:
        # Two slots: the worker fills one while the training loop reads the other.
        slot = self.sent % 2
        self._send((np.ascontiguousarray(idx), slot))
        self.sent += 1
        return _Chunk(self, self.sent - 1, self.outputs[slot])

    def wait(self, number: int) -> int:
        """Wait for chunk `number`, and for any before it nobody waited for; its size."""
        assert self.worker.stdout is not None, "started with a pipe"
        while self.received <= number:
            try:
                self.last_size, seconds = pickle.load(self.worker.stdout)
            except EOFError:
                self._stopped()
            self.busy_seconds += seconds
            self.received += 1
        return self.last_size

    def _stopped(self) -> NoReturn:
        code = self.worker.wait()
        raise RuntimeError(f"the augmentation worker stopped (exit code {code})") from None

    def __enter__(self) -> ProcessAugmenter:
        return self

    def __exit__(self, *exc) -> None:
        assert self.worker.stdin is not None
        assert self.worker.stdout is not None
        with contextlib.suppress(BrokenPipeError):  # a worker that died has no input left
            self.worker.stdin.close()  # the worker ends at the end of its input
        try:
            self.worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.worker.kill()
            self.worker.wait()
        self.worker.stdout.close()
        self.folder.cleanup()


def mapped(path: Path, size: int, dtype=np.uint8, readonly: bool = False) -> np.ndarray:
    """A flat array over the file at `path` (made `size` bytes long unless `readonly`)."""
    size = max(size, 1)  # a mapping cannot be empty
    with open(path, "rb" if readonly else "a+b") as file:
        if not readonly:
            file.truncate(size)
        # The mapping outlives the file object; the array keeps it alive.
        access = mmap.ACCESS_READ if readonly else mmap.ACCESS_WRITE
        return np.frombuffer(mmap.mmap(file.fileno(), size, access=access), dtype)


def open_prefetcher(
    images: np.ndarray, augment: AugmentConfig | None, rng: np.random.Generator, chunk: int
) -> ThreadPrefetcher | ProcessAugmenter:
    """The prefetcher for a run: augmenting in a worker process, or converting on a thread."""
    if augment is None:
        return ThreadPrefetcher(images, to_input)
    return ProcessAugmenter(images, rng, augment, chunk)
