"""LiveIndex: the pointer to the reader that serves an index, swapped atomically.

Invariants (issue #4):
- A query takes a lease on the reader current at its start and uses only that
  reader, so each result comes entirely from one version.
- ``swap`` replaces the pointer under a lock: queries that start afterwards see
  the new reader at once; queries already running finish on the old one.
- An old reader is closed (and its file deleted) only when its last lease is
  released, so no query ever finds its reader closed under it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..index.reader import IndexReader

log = logging.getLogger("mosslite.sync")

#: Closes retired readers and deletes their files, one at a time, off the query threads.
#: Its thread is not a daemon (concurrent.futures joins it at exit, after the queue):
#: closing lets go of onnxruntime's sessions, and a daemon thread inside onnxruntime
#: when the interpreter exits aborts the process.
_RETIRING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mosslite-retire")


@dataclass(eq=False)
class _Slot:
    reader: IndexReader
    delete_file: bool
    leases: int = 0
    retired: bool = False


class LiveIndex:
    def __init__(self, reader: IndexReader, *, on_retired: Callable[[IndexReader], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._slot = _Slot(reader, delete_file=False)
        self._on_retired = on_retired
        self._closed = False
        _RETIRING.submit(_nothing)  # its thread starts now, in the loading thread, not in a query

    @property
    def reader(self) -> IndexReader:
        """The current reader (for facts; queries should use ``lease``)."""
        return self._slot.reader

    @property
    def version(self) -> int:
        return self._slot.reader.version

    @contextmanager
    def lease(self) -> Iterator[IndexReader]:
        with self._lock:
            slot = self._slot
            slot.leases += 1
        try:
            yield slot.reader
        finally:
            with self._lock:
                slot.leases -= 1
                done = slot.retired and slot.leases == 0
            if done:
                self._dispose(slot)

    def swap(self, reader: IndexReader, *, delete_old_file: bool = True) -> IndexReader:
        """Install ``reader``; returns the old one, closed (and its file deleted) before
        this returns if no query holds it, else when its last query ends. Closing and
        unlinking take a moment: call it from a worker thread, not an event loop."""
        with self._lock:
            old = self._slot
            self._slot = _Slot(reader, delete_file=False)
            old.retired = True
            old.delete_file = delete_old_file and old.reader.path != reader.path
            done = old.leases == 0
        if done:
            self._retire(old)
        return old.reader

    def close(self, *, delete_file: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            slot = self._slot
            slot.retired = True
            slot.delete_file = delete_file
            done = slot.leases == 0
        if done:
            self._dispose(slot)

    def _dispose(self, slot: _Slot) -> None:
        # Closing a reader and unlinking a large file take ~25 ms at 100k documents,
        # and the thread releasing the last lease is usually a query's: handed to the
        # retiring thread. A queue, not a thread per reader: starting a thread waits
        # until it runs, up to ~28 ms on two busy cores, and it was the query's wait.
        _RETIRING.submit(self._retire, slot)

    def _retire(self, slot: _Slot) -> None:
        slot.reader.close()
        if slot.delete_file:
            _unlink_quietly(slot.reader.path)
        if self._on_retired:
            self._on_retired(slot.reader)


def _nothing() -> None:
    pass


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # another process may hold or have removed it; never fail a query for it
        log.warning("could not remove old version file %s: %s", path, exc)
