"""Giving memory back to the system after one-off work.

A thread that allocates and frees large temporary buffers (reading an index's
codes, onnxruntime packing its copies) leaves the freed memory in its own malloc
arena, still counted in the process's resident memory: at 100k documents ~20 MB
after the reader's 8-bit search was made ready.
"""

from __future__ import annotations

import functools
from collections.abc import Callable


def release_free_memory() -> None:
    """Hand freed memory back to the system (glibc's ``malloc_trim``); elsewhere a no-op."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        import ctypes

        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
