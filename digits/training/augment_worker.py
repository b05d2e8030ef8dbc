"""The worker prefetch.ProcessAugmenter starts: python -m digits.training.augment_worker

Its standard input carries pickles from its parent: one setup (the descriptors of the two files
to map, which it inherits, the rng, the AugmentConfig), then (indices, slot, split) per
chunk, whose first `split` images it augments (its parent does the rest); it answers each chunk
on standard output with (images in the chunk, seconds it took), and ends at the
end of its input.
"""

from __future__ import annotations

import math
import os
import pickle
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from digits.data.augment import apply_plan, draw_plan
from digits.data.mnist import N_PIXELS
from digits.training.prefetch import mapped

# The worker only has to keep ahead of the training loop, so whatever else the machine does
# (the app answering a drawing while it trains) goes first.
NICENESS = 10


def main() -> None:
    if hasattr(os, "nice"):
        os.nice(NICENESS)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    images_fd, shape, outputs_fd, chunk, rng, config = pickle.load(stdin)
    n_bytes = math.prod(shape)
    images = mapped(images_fd, n_bytes, readonly=True)[:n_bytes].reshape(shape)
    outputs = mapped(outputs_fd, 2 * chunk * N_PIXELS * 4, np.float32)
    outputs = outputs.reshape(2, chunk, N_PIXELS)
    with threadpool_limits(1, "blas"):
        while True:
            try:
                idx, slot, split = pickle.load(stdin)
            except EOFError:
                break
            started = time.perf_counter()
            plan = draw_plan(len(idx), rng, config, shape[1:])
            apply_plan(images[idx[:split]], plan.rows(0, split), outputs[slot, :split])
            pickle.dump((len(idx), time.perf_counter() - started), stdout)
            stdout.flush()


if __name__ == "__main__":
    main()
