"""The app server returns freed large arrays to the system (glibc's malloc)."""

import subprocess
import sys
import textwrap

import pytest

from digits import PROJECT_ROOT

# Frees a 31 MB array, which raises glibc's dynamic mmap threshold; then makes 30 arrays of
# 8 MB, each followed by a small one that pins it in the heap, and frees the 30. Prints the MB
# the process still holds of them.
PINNED_HEAP = textwrap.dedent(
    """
    import sys
    import numpy as np
    from digits.app.server_memory import return_large_blocks

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    if sys.argv[1] == "fixed":
        assert return_large_blocks()
    np.ones(31 << 18, np.float32)  # made and freed at once
    before = rss_mb()
    arrays, pins = [], []
    for _ in range(30):
        arrays.append(np.ones(8 << 20, np.uint8))
        pins.append(np.ones(1000))
    del arrays
    print(rss_mb() - before)
    """
)


def held_mb(mode: str) -> float:
    result = subprocess.run(
        [sys.executable, "-c", PINNED_HEAP, mode],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_freed_large_arrays_go_back_to_the_system_once_the_threshold_is_fixed():
    assert held_mb("dynamic") > 200  # the failure it prevents: the freed arrays stay resident
    assert held_mb("fixed") < 20
