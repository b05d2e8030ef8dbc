"""Network input prepared one chunk ahead, on the second core, while the first trains.

Augmentation runs in a process of its own (ProcessAugmenter): in a thread it would share the
interpreter lock with the training loop, and both are made of many short NumPy calls, so each
would wait for the other at every call (bench/bench_train.py shows the cost). The training
images and two output chunks are unnamed files in memory, mapped into both processes, so only
indices cross the pipe, and nothing is left behind however the processes end. When the worker
falls behind, the training process augments the tail of each chunk itself.
Plain input (ThreadPrefetcher) is one cheap conversion a chunk, for which a thread is enough.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import pickle
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, NoReturn, Protocol, cast

import numpy as np

from digits import PROJECT_ROOT
from digits.data.augment import AugmentConfig, AugmentPlan, apply_plan, draw_plan
from digits.data.mnist import N_PIXELS, to_input

# Memory-backed where the system has such a folder, so the files never reach a disk.
SHARED_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None

# The unnamed files shared_images made, by the id of their mapping; each goes with its mapping.
_SHARED_FILES: dict[int, BinaryIO] = {}
# How the training process's share of each chunk follows the worker: up by SHARE_STEP after a
# chunk it waited more than WAITED_S for, down by half that after one it did not, up to half.
SHARE_STEP = 0.02
WAITED_S = 0.001
MAX_SHARE = 0.5


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
    """A submitted chunk: its result is a view of the shared output it is written to.

    The worker writes its first `split` images; result() writes the rest here, then waits.
    """

    def __init__(
        self,
        owner: ProcessAugmenter,
        number: int,
        out: np.ndarray,
        idx: np.ndarray,
        plan: AugmentPlan,
        split: int,
    ):
        self.owner, self.number, self.out = owner, number, out
        self.idx, self.plan, self.split = idx, plan, split

    def result(self) -> np.ndarray:
        n, split = len(self.idx), self.split
        if split < n:
            started = time.perf_counter()
            images = self.owner.images[self.idx[split:]]
            apply_plan(images, self.plan.rows(split, n), self.out[split:n])
            self.owner.own_seconds += time.perf_counter() - started
        return self.out[: self.owner.wait(self.number)]


class ProcessAugmenter:
    """augment_batch(images[idx]) in a worker process, one chunk ahead, into shared memory.

    The worker (augment_worker.py, a program of its own, so nothing of the caller's main
    module runs again in it) and this process each draw every chunk's plan from a copy of
    `rng`, in the order chunks are submitted; the worker applies it to the chunk's head, this
    process to the `share` left at its tail. Each image's output depends on its plan alone, so
    it is that of augment_batch(images[idx], rng, config) called here chunk by chunk,
    whatever the shares.
    """

    def __init__(
        self, images: np.ndarray, rng: np.random.Generator, config: AugmentConfig, chunk: int
    ):
        self.busy_seconds = self.own_seconds = 0.0  # augmenting, in the worker and here
        self.share = 0.0
        self.rng, self.config = rng, config
        self.sent = self.received = self.last_size = 0
        self.files: list[BinaryIO] = []  # the files this augmenter made, closed at the end
        # Files mapped into both processes rather than SharedMemory blocks: a mapping lives
        # as long as an array uses it (a batch the caller still holds), even once the file is
        # closed, whereas a block closed under an array leaves it pointing at nothing.
        self.images = images  # the worker maps the file behind them
        images_file = shared_file(images)
        if images_file is None:
            images_file = self._own(unnamed_file(images.nbytes))
            copy = mapped(images_file, images.nbytes)[: images.nbytes]
            copy.reshape(images.shape)[...] = images
        outputs_file = self._own(unnamed_file(2 * chunk * N_PIXELS * 4))
        self.outputs = mapped(outputs_file, 2 * chunk * N_PIXELS * 4, np.float32)
        self.outputs = self.outputs.reshape(2, chunk, -1)
        fds = images_file.fileno(), outputs_file.fileno()
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "digits.training.augment_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=PROJECT_ROOT,
            pass_fds=fds,  # the child has them under the same numbers
        )
        self._send((fds[0], images.shape, fds[1], chunk, rng, config))

    def _own(self, file: BinaryIO) -> BinaryIO:
        self.files.append(file)
        return file

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
        idx = np.ascontiguousarray(idx)
        plan = draw_plan(len(idx), self.rng, self.config, self.images.shape[1:])
        split = len(idx) - round(self.share * len(idx))
        self._send((idx, slot, split))
        self.sent += 1
        return _Chunk(self, self.sent - 1, self.outputs[slot], idx, plan, split)

    def wait(self, number: int) -> int:
        """Wait for chunk `number`, and for any before it nobody waited for; its size.

        Moves this process's share of the next chunks up if it had to wait, down if not.
        """
        assert self.worker.stdout is not None, "started with a pipe"
        started = time.perf_counter()
        behind = self.received <= number
        while self.received <= number:
            try:
                self.last_size, seconds = pickle.load(self.worker.stdout)
            except EOFError:
                self._stopped()
            self.busy_seconds += seconds
            self.received += 1
        self.share = adjusted_share(self.share, behind and time.perf_counter() - started > WAITED_S)
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
        for file in self.files:
            file.close()  # the memory goes once no mapping uses it


def adjusted_share(share: float, waited: bool) -> float:
    """The training process's next share of a chunk, after one it did or did not wait for."""
    change = SHARE_STEP if waited else -SHARE_STEP / 2
    return min(max(share + change, 0.0), MAX_SHARE)


def unnamed_file(size: int) -> BinaryIO:
    """A file of `size` zero bytes with no name (under SHARED_DIR, so in memory where it can)."""
    file = tempfile.TemporaryFile(dir=SHARED_DIR)  # noqa: SIM115 (its owner closes it)
    file.truncate(max(size, 1))  # a mapping cannot be empty
    return cast(BinaryIO, file)


def mapped(file: BinaryIO | int, size: int, dtype=np.uint8, readonly: bool = False) -> np.ndarray:
    """A flat array over the first `size` bytes of an open file (or file descriptor)."""
    # The mapping outlives the file object; the array keeps it alive.
    return np.frombuffer(_mapping(file, size, readonly), dtype)


def _mapping(file: BinaryIO | int, size: int, readonly: bool = False) -> mmap.mmap:
    fd = file if isinstance(file, int) else file.fileno()
    access = mmap.ACCESS_READ if readonly else mmap.ACCESS_WRITE
    return mmap.mmap(fd, max(size, 1), access=access)


def shared_images(shape: tuple[int, ...]) -> np.ndarray:
    """A zeroed uint8 array in an unnamed file, which a ProcessAugmenter's worker maps rather
    than getting a copy of its own; the file goes when the array does."""
    size = math.prod(shape)
    file = unnamed_file(size)
    mapping = _mapping(file, size)
    _SHARED_FILES[id(mapping)] = file
    weakref.finalize(mapping, _forget_shared, id(mapping))
    return np.frombuffer(mapping, np.uint8)[:size].reshape(shape)


def _forget_shared(key: int) -> None:
    _SHARED_FILES.pop(key).close()


def shared_file(images: np.ndarray) -> BinaryIO | None:
    """The file behind `images` if shared_images made them (and they are all of it)."""
    base = images
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    if not isinstance(base, memoryview) or id(base.obj) not in _SHARED_FILES:
        return None
    start = np.frombuffer(base, np.uint8).ctypes.data
    whole = images.dtype == np.uint8 and images.flags.c_contiguous and images.size > 0
    if not (whole and images.ctypes.data == start and math.prod(images.shape) == len(base.obj)):
        return None
    return _SHARED_FILES[id(base.obj)]


def open_prefetcher(
    images: np.ndarray, augment: AugmentConfig | None, rng: np.random.Generator, chunk: int
) -> ThreadPrefetcher | ProcessAugmenter:
    """The prefetcher for a run: augmenting in a worker process, or converting on a thread."""
    if augment is None:
        return ThreadPrefetcher(images, to_input)
    return ProcessAugmenter(images, rng, augment, chunk)
