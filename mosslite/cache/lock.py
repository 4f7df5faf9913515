"""The cache folder's lock: one ``flock`` per index folder, ``<index dir>/.lock``.

Invariants (issue #4):
- Whoever adds, replaces or removes a file in an index's cache folder holds this
  lock: downloads, patches, installs, cleanups (``fetch.py``, ``layout.py``). Two
  processes (or two clients of one process) sharing a cache therefore never
  download one version twice at once, and each finds the other's finished file.
- Exclusive across processes and threads: each holder opens the lock file
  itself, and ``flock`` locks belong to the open file, not the process. So it
  is not re-entrant: a holder that asked for it again would wait for itself.
- Waiting happens on a worker thread, never on the event loop: a slow download
  of one index holds its lock without delaying anything else the loop runs.
- Readers take no lock: a file under a version's final name is complete and
  never rewritten (``verify.py``), only removed.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

LOCK_NAME = ".lock"


def _lock_blocking(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@asynccontextmanager
async def index_dir_lock(index_dir: Path) -> AsyncIterator[None]:
    """Exclusive across processes and threads; waits in a worker thread, not on the loop.
    Creates the folder if need be. Example::

        async with index_dir_lock(cache_dir / "faq"):
            ...  # add or remove files of index "faq"
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = await asyncio.to_thread(_lock_blocking, index_dir / LOCK_NAME)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
