"""Let the app server hand freed NumPy buffers back to the system instead of keeping its peak.

glibc's malloc raises its mmap threshold to the size of each large block freed (up to 32 MB):
after the test set's 31 MB float copy is freed once, every array below that size comes from the
heap or a thread's arena, where one small live object pins the freed space. A server runs each
session's script on a thread of its own and a training beside them, so that space piles up.
A fixed threshold gives every block from LARGE_BLOCK up pages of its own, unmapped when freed.
"""

from __future__ import annotations

import ctypes

# glibc's mallopt parameters (malloc.h).
M_MMAP_THRESHOLD = -3
# Large enough that a training step's batches (256 x 784 float32, 0.8 MB) stay in the heap,
# where reusing them costs nothing; a first-layer activation of the test set is far above.
LARGE_BLOCK = 1 << 20


def return_large_blocks() -> bool:
    """Fix the mmap threshold at LARGE_BLOCK; False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, TypeError, AttributeError):  # Windows has no CDLL(None); macOS no mallopt
        return False
    return mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK) == 1
