"""The batch files the service holds: uploads callers are still filling, and jobs' files.

A mutation's documents enter as a batch file (index/batch.py), checked on
the way in. Small ones arrive in one call; a batch larger than one request
(over HTTP, 64 MiB) arrives as an upload: opened, appended to by several
requests, then committed, when it becomes a job's file. The same path serves
the one-call form, so both check alike. Files live in one folder:

- ``up_<token>.sqlite``: an upload being filled. Its facts say whose it is
  (project) and what for (index, kind, model, upsert). An upload nobody has
  touched for ``UPLOAD_TTL_S`` is removed: nothing is kept that the caller
  did not finish asking for.
- ``<job_id>.sqlite``: a job's documents, from its commit until it ends
  (completed or failed): then it is deleted (issue #7). A file whose job has
  ended, or that no job names, is removed at the next start.

Invariants:
- An upload is used by one caller at a time (a lock per upload); appending,
  committing and aborting it exclude each other.
- A project's key opens only that project's uploads: another project's
  upload id is simply not found.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._fs import fsync_dir, fsync_file, remove_stale_temps
from ..errors import NotFoundError
from ..index.batch import BatchWriter, read_facts

UPLOAD_PREFIX = "up_"
SUFFIX = ".sqlite"
#: An upload not appended to for this long is removed (and its id forgotten).
UPLOAD_TTL_S = 3600.0
_UPLOAD_ID_RE = re.compile(r"up_[0-9a-f]{24}")  # (fullmatch: "$" would let a final newline in)


class Batches:
    def __init__(self, folder: Path, *, upload_ttl_s: float = UPLOAD_TTL_S) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.upload_ttl_s = upload_ttl_s
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    # -- uploads ------------------------------------------------------------------

    def open_upload(self, *, project_id: str, dimension: int | None, computes_embeddings: bool, **facts: object) -> str:
        """A new, empty upload; returns its id."""
        self.expire()
        upload_id = UPLOAD_PREFIX + secrets.token_hex(12)
        writer = BatchWriter(
            self._upload_path(upload_id),
            dimension=dimension,
            computes_embeddings=computes_embeddings,
            facts={"project_id": project_id, **facts},
        )
        writer.close()
        return upload_id

    @contextmanager
    def upload(self, project_id: str, upload_id: str) -> Iterator[tuple[Path, dict[str, object]]]:
        """(path, facts) of ``project_id``'s upload ``upload_id``, held by this caller
        alone for the ``with`` block. Unknown (or another project's): NotFoundError."""
        missing = NotFoundError(
            f"no upload {upload_id!r}", upload_id=str(upload_id)[:40], hint="open a new upload; an idle one expires"
        )
        if not isinstance(upload_id, str) or not _UPLOAD_ID_RE.fullmatch(upload_id):
            raise missing
        path = self._upload_path(upload_id)
        with self._lock(upload_id):
            facts = read_facts(path) if path.exists() else None
            if facts is None or facts.get("project_id") != project_id:
                if facts is None:  # (no lock is kept for an id that names nothing)
                    self._forget_lock(upload_id)
                raise missing
            yield path, facts
            if path.exists():
                os.utime(path)  # touched: the TTL counts from the last use

    def remove_upload(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._forget_lock(path.name.removesuffix(SUFFIX))

    def _forget_lock(self, upload_id: str) -> None:
        with self._locks_lock:
            self._locks.pop(upload_id, None)

    def expire(self) -> None:
        """Remove uploads idle for longer than the TTL."""
        cutoff = time.time() - self.upload_ttl_s
        for path in self.folder.glob(f"{UPLOAD_PREFIX}*{SUFFIX}"):
            try:
                if path.stat().st_mtime < cutoff:
                    self.remove_upload(path)
            except FileNotFoundError:
                pass

    def _upload_path(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}{SUFFIX}"

    def _lock(self, upload_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(upload_id, threading.Lock())

    # -- jobs' files -------------------------------------------------------------------

    def job_path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}{SUFFIX}"

    def adopt(self, path: Path, job_id: str) -> Path:
        """Make ``path`` (a filled upload or batch) the file of ``job_id``."""
        target = self.job_path(job_id)
        os.replace(path, target)
        return target

    def store(self, job_id: str) -> bool:
        """Make a job's file durable (the job's "uploading" step); False if it is missing."""
        path = self.job_path(job_id)
        if not path.exists():
            return False
        fsync_file(path)
        fsync_dir(self.folder)
        return True

    def release(self, job_id: str) -> None:
        """The job ended: its file goes."""
        self.job_path(job_id).unlink(missing_ok=True)

    def job_ids(self) -> list[str]:
        """Jobs that have a file here."""
        return [
            p.name.removesuffix(SUFFIX)
            for p in self.folder.glob(f"*{SUFFIX}")
            if not p.name.startswith(UPLOAD_PREFIX) and not p.name.startswith(".")
        ]

    def new_path(self) -> Path:
        """A name for a batch written in one call (it becomes a job's file, or is removed)."""
        return self.folder / f"{UPLOAD_PREFIX}{secrets.token_hex(12)}{SUFFIX}"

    def clean(self) -> None:
        """At start: temp files, and uploads past their TTL."""
        remove_stale_temps(self.folder)
        self.expire()
