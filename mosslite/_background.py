"""Work that gives way to queries: threads at a lower CPU priority.

A refresh at 100k documents spends ~0.3 s of CPU making the next version's file
(the previous one copied with the changed pages, hashed as it goes, issue #7).
At normal priority that is one more thread beside the queries: on two cores
kept busy by four query threads, the queries' p99 rose 1.6x while versions
arrived every ~2 s. On the low-priority thread (nice 10 on Linux, where nice is
a thread's own) the scheduler runs it when the queries leave a core free, and
in the ~10% of a core it grants such a thread when they do not. Opening that
version (~0.1-0.25 s) runs there too; the service's job threads and the
builder's hashing and flushing threads (``_fs.in_background(...,
low_priority=True)``) lower themselves the same way.

A thread inherits its creator's priority, and a query must never wait for a
thread that waits for the queries: work on a low-priority thread that starts
threads of its own (an onnxruntime session makes its pool) goes through
``at_normal_priority``, which hands it to a thread started before the lowering.
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
#: One thread at the priority of the first thread lowered (and the nice it has), made
#: before that lowering: what a low-priority thread hands to ``at_normal_priority`` runs there.
_normal: tuple[ThreadPoolExecutor, int] | None = None


def lower_priority() -> None:
    """Lower this thread's priority to LOW_PRIORITY_NICE (Linux, where a thread has its
    own nice value; elsewhere the same call would lower the whole process, so it runs
    as is). Threads it starts inherit the priority: see ``at_normal_priority``."""
    if not sys.platform.startswith("linux"):
        return
    _start_normal_thread()
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), max(_nice(), LOW_PRIORITY_NICE))
    except OSError:  # a sandbox that forbids it: normal priority, nothing lost but the courtesy
        pass


def at_normal_priority(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)``, on a thread of normal priority if this one was lowered: for work
    that starts threads (onnxruntime's session makes its pool, whose threads would
    inherit a low priority, and every query using the session would wait on them)."""
    normal = _normal
    if normal is None or _nice() <= normal[1]:
        return fn(*args)
    return normal[0].submit(fn, *args).result()


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _start_normal_thread() -> None:
    global _normal
    with _lock:
        if _normal is None:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mosslite-normal")
            executor.submit(_nice).result()  # its thread starts now, at this thread's priority
            _normal = executor, _nice()


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


__all__ = ["LOW_PRIORITY_NICE", "at_normal_priority", "in_low_priority", "lower_priority"]
