"""Work that gives way to queries (mosslite/_background.py): one thread at a lower
CPU priority, here read back from the kernel."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from mosslite._background import LOW_PRIORITY_NICE, at_normal_priority, in_low_priority


def where_and_how_nice() -> tuple[int, int]:
    me = threading.get_native_id()
    return me, os.getpriority(os.PRIO_PROCESS, me)


def fails() -> None:
    raise ValueError("from the background")


def test_work_runs_off_the_loop_and_its_errors_come_back() -> None:
    async def main() -> tuple[int, tuple[int, int]]:
        return threading.get_native_id(), await in_low_priority(where_and_how_nice)

    loop_thread, (worker, _) = asyncio.run(main())
    assert worker != loop_thread
    with pytest.raises(ValueError, match="from the background"):
        asyncio.run(in_low_priority(fails))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux gives a thread its own nice value")
def test_on_linux_only_the_background_thread_is_lowered() -> None:
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    _, theirs = asyncio.run(in_low_priority(where_and_how_nice))
    assert theirs == max(mine, LOW_PRIORITY_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # this thread, and so the process, untouched


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux gives a thread its own nice value")
def test_work_handed_back_from_the_background_runs_at_the_normal_priority() -> None:
    """What starts threads (onnxruntime's sessions make their pools) is handed to a thread
    of the normal priority: threads made on the low one would inherit its priority."""
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    low, (normal, nice) = asyncio.run(in_low_priority(lambda: (where_and_how_nice(), at_normal_priority(where_and_how_nice))))
    assert low[1] == max(mine, LOW_PRIORITY_NICE)
    assert normal != low[0] and nice == mine
    assert at_normal_priority(where_and_how_nice) == (threading.get_native_id(), mine)  # at that priority already: run here
