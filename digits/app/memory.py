"""The app server's memory: fewer malloc arenas for its many short-lived script threads.

Streamlit runs every rerun of every session's script on a thread of its own, and glibc's malloc
gives threads arenas of their own (up to eight per core), each keeping the memory that the
NumPy temporaries of a reading freed. Two arenas serve the server's threads as well, and hold
far less: bench/bench_load.py measures the server's memory with many sessions.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# glibc's malloc.h: the mallopt parameter for the most arenas malloc may create.
M_ARENA_MAX = -8
SERVER_ARENAS = 2


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process; False where the C library has no mallopt."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, Windows, musl's stub)
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
