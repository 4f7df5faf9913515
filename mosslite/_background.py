"""Work that gives way to queries: threads at a lower CPU priority.

A refresh at 100k documents spends ~0.3 s of CPU making the next version's file
(the previous one copied with the changed pages, hashed as it goes, issue #7).
At normal priority that is one more thread beside the queries: on two cores
kept busy by four query threads, the queries' p99 rose 1.6x while versions
arrived every ~2 s. On the low-priority thread (nice 10 on Linux, where nice is
a thread's own) the scheduler runs it when the queries leave a core free, and
in the ~10% of a core it grants such a thread when they do not. The builder's
hashing and flushing threads (``_fs.in_background(..., low_priority=True)``)
lower themselves the same way.

Only work that starts no thread of its own goes here: a thread inherits its
creator's priority, and a query must never wait for a thread that waits for the
queries (onnxruntime's pools are made by the reader, never on this thread).
Elsewhere than Linux the thread keeps the normal priority: there, the same call
would lower the whole process.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

#: The nice value of low-priority threads: queries of the same process keep ~90% of a core.
LOW_PRIORITY_NICE = 10

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def lower_priority() -> None:
    """Lower this thread's priority to LOW_PRIORITY_NICE (Linux, where a thread has its
    own nice value; elsewhere the same call would lower the whole process, so it runs
    as is). Only for a thread that starts no thread pool of its own: onnxruntime's
    would inherit the priority, and a query must never wait for it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, max(os.getpriority(os.PRIO_PROCESS, me), LOW_PRIORITY_NICE))
    except OSError:  # a sandbox that forbids it: normal priority, nothing lost but the courtesy
        pass


async def in_low_priority(fn: Callable[..., T], *args: object) -> T:
    """``await asyncio.to_thread(fn, *args)``, on the one low-priority thread."""
    return await asyncio.get_running_loop().run_in_executor(_the_executor(), functools.partial(fn, *args))


def _the_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="mosslite-background", initializer=lower_priority
            )
        return _executor


__all__ = ["LOW_PRIORITY_NICE", "in_low_priority", "lower_priority"]
