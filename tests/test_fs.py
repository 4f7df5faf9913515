"""_fs: durable replacement and background helpers."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from mosslite._background import LOW_PRIORITY_NICE
from mosslite._fs import in_background


def nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_low_priority_work_runs_on_a_thread_of_its_own_at_a_lower_priority() -> None:
    before = nice_of_this_thread()
    assert in_background(nice_of_this_thread, low_priority=True)() >= LOW_PRIORITY_NICE
    assert in_background(nice_of_this_thread)() == before  # the default: as the caller
    assert nice_of_this_thread() == before  # the caller's own priority is untouched


def test_errors_reach_whoever_joins() -> None:
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        in_background(fail, low_priority=True)()
