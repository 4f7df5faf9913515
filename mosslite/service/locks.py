"""The per-index lock: one builder per index across every process on a data folder.

Invariants (issues #3, #8):
- ``index_lock`` is an flock on ``<locks>/<project>/<index>.lock``, held for a whole
  build: the version a job builds on is still the newest when it publishes.
- A deleted index's lock file is removed (``remove_index_lock``) unless a builder
  holds it; a waiter that finds its file removed and made again locks the new one,
  so two builders never hold two different files of one name.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._fs import remove_empty_folders

JobKey = tuple[str, str]  # (project_id, index_name)


def lock_path(lock_dir: Path, key: JobKey) -> Path:
    return lock_dir / key[0] / f"{key[1]}.lock"


@contextmanager
def index_lock(lock_dir: Path, key: JobKey) -> Iterator[None]:
    """Exclusive across processes: one builder per index on this data folder."""
    path = lock_path(lock_dir, key)
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # its folder was removed just now (remove_index_lock)
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _still_linked(fd, path):
            break
        os.close(fd)  # removed while we waited: lock the file that is there now
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def remove_index_lock(lock_dir: Path, key: JobKey) -> None:
    """Remove a deleted index's lock file (and its project's folder, once empty), unless
    a builder holds it now: that one's job fails when it tries to publish."""
    path = lock_path(lock_dir, key)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return
    try:
        if _still_linked(fd, path):
            path.unlink()
    finally:
        os.close(fd)  # (releases the lock)
    remove_empty_folders(path.parent, lock_dir)


def _still_linked(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed and made again)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
