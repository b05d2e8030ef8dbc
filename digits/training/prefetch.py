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
# The weight of the latest chunk in Balance's running costs: a few chunks' memory, so one
# epoch-end validation moves the split little.
BALANCE_WEIGHT = 0.2


class Balance:
    """How many images of a chunk the training process augments, so both cores finish together.

    From running means of what an image costs each process and of the time the training
    process spends on a chunk's batches: the worker's (n - k) images take as long as those
    batches plus this process's k images, with k at most half the chunk.
    """

    def __init__(self) -> None:
        self.worker_cost: float | None = None  # seconds an image, in the worker
        self.own_cost: float | None = None  # here
        self.train_seconds: float | None = None  # a chunk's batches, here

    @staticmethod
    def _mean(mean: float | None, value: float) -> float:
        return value if mean is None else mean + BALANCE_WEIGHT * (value - mean)

    def worker_did(self, images: int, seconds: float) -> None:
        if images:
            self.worker_cost = self._mean(self.worker_cost, seconds / images)

    def own_did(self, images: int, seconds: float) -> None:
        if images:
            self.own_cost = self._mean(self.own_cost, seconds / images)

    def trained(self, seconds: float) -> None:
        self.train_seconds = self._mean(self.train_seconds, seconds)

    def own_images(self, n: int) -> int:
        """The images of an n-image chunk this process should augment itself."""
        if self.worker_cost is None:
            return 0
        own_cost = self.worker_cost if self.own_cost is None else self.own_cost
        k = (n * self.worker_cost - (self.train_seconds or 0.0)) / (self.worker_cost + own_cost)
        return int(min(max(k, 0), n // 2))


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
        owner, n, split = self.owner, len(self.idx), self.split
        started = time.perf_counter()
        if owner.returned is not None:
            owner.balance.trained(started - owner.returned)
        if split < n:
            apply_plan(owner.images[self.idx[split:]], self.plan.rows(split, n), self.out[split:n])
            seconds = time.perf_counter() - started
            owner.own_seconds += seconds
            owner.balance.own_did(n - split, seconds)
        size = owner.wait(self.number)
        owner.returned = time.perf_counter()
        return self.out[:size]


class ProcessAugmenter:
    """augment_batch(images[idx]) in a worker process, one chunk ahead, into shared memory.

    The worker (augment_worker.py, a program of its own, so nothing of the caller's main
    module runs again in it) and this process each draw every chunk's plan from a copy of
    `rng`, in the order chunks are submitted; the worker applies it to the chunk's head, this
    process to the tail Balance leaves it. Each image's output depends on its plan alone, so
    it is that of augment_batch(images[idx], rng, config) called here chunk by chunk,
    whatever the split.
    """

    def __init__(
        self, images: np.ndarray, rng: np.random.Generator, config: AugmentConfig, chunk: int
    ):
        self.busy_seconds = self.own_seconds = 0.0  # augmenting, in the worker and here
        self.balance = Balance()
        self.splits: dict[int, int] = {}  # the worker's images of each chunk not received yet
        self.returned: float | None = None  # when the last result was handed out
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
        split = len(idx) - self.balance.own_images(len(idx))
        self._send((idx, slot, split))
        self.splits[self.sent] = split
        self.sent += 1
        return _Chunk(self, self.sent - 1, self.outputs[slot], idx, plan, split)

    def wait(self, number: int) -> int:
        """Wait for chunk `number`, and for any before it nobody waited for; its size."""
        assert self.worker.stdout is not None, "started with a pipe"
        while self.received <= number:
            try:
                self.last_size, seconds = pickle.load(self.worker.stdout)
            except EOFError:
                self._stopped()
            self.busy_seconds += seconds
            self.balance.worker_did(self.splits.pop(self.received), seconds)
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
        for file in self.files:
            file.close()  # the memory goes once no mapping uses it


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
