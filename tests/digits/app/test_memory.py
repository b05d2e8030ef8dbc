"""The server's malloc arenas are capped where the C library allows it."""

import ctypes.util

import pytest

from digits.app.memory import limit_malloc_arenas


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library to ask")
def test_the_arena_cap_is_accepted_by_glibc():
    # mallopt answers 1 when it takes the setting; this machine's libc is glibc.
    assert limit_malloc_arenas() is True


def test_a_c_library_without_mallopt_is_no_error(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libnothing-such.so")
    assert limit_malloc_arenas() is False
