"""_fs: durable replacement and background helpers."""

from __future__ import annotations

import errno
import os
import sys
import threading
from pathlib import Path

import pytest

from mosslite import _fs
from mosslite._background import LOW_PRIORITY_NICE
from mosslite._fs import copy_written_back, in_background


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


PIECE = 4096
SIZES = [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 5]


@pytest.mark.parametrize("size", SIZES)
def test_a_copy_is_written_back_piece_by_piece(tmp_path: Path, size: int, written_back: list[tuple[int, int]]) -> None:
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.write_bytes(os.urandom(size))
    assert copy_written_back(source, dest, piece_bytes=PIECE) is True
    assert dest.read_bytes() == source.read_bytes()
    # Every byte was written back, in order, one piece at a time.
    assert written_back == [(start, min(PIECE, size - start)) for start in range(0, size, PIECE)]


def test_without_copy_file_range_the_pieces_are_read_and_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written_back: list[tuple[int, int]]
) -> None:
    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "not across these filesystems")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.write_bytes(os.urandom(3 * PIECE + 5))
    assert copy_written_back(source, dest, piece_bytes=PIECE) is True
    assert dest.read_bytes() == source.read_bytes() and len(written_back) == 4


def test_without_sync_file_range_the_file_is_copied_whole_for_the_caller_to_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_fs, "_sync_file_range", lambda: None)
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.write_bytes(os.urandom(3 * PIECE + 5))
    assert copy_written_back(source, dest, piece_bytes=PIECE) is False
    assert dest.read_bytes() == source.read_bytes()
