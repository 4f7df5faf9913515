"""Writes index version files: version 1 from a batch of documents, version N+1 from version N.

Invariants (issue #2, issue #3, issue #7, issue #8):
- A build only ever creates a file: its arguments are checked before any work
  (check_build, build_checks.py), and a target where anything exists (a version, a device node,
  the base itself) is refused, as is a base of another index or not older.
- The base file is never opened for writing: N+1 is built in a temp copy beside
  the target and renamed into place only when complete and verified, so a crash
  or an error at any point leaves no partial version under the target name.
- Unchanged documents are never re-embedded: an upsert whose text equals the
  stored text keeps the stored vector; only new or changed texts reach the model
  (apply_batch.py, which holds the SQL of applying a batch).
- A build reads its documents from a batch file (batch.py) with SQL, in
  bounded memory: no Python object per document on the way to the file, so
  1M documents build like 10k, only longer.
- What the reader needs is written here, once (format 3): each vector once in
  docs_vec, document lengths and posting lists (postings.py), and the 8-bit
  codes of the vectors (vectors/codes.py). Version N+1 carries N's forward and touches
  only what changed: new postings go to the recent lists, codes are rewritten
  only for the chunks of slots whose vectors changed, with N's codebook. So
  consecutive versions share almost every page, and a page patch stays small.
- The result is one compact file: no -wal/-shm beside it, free pages vacuumed
  when they pile up, FTS5 segments merged on a fresh build.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import apsw

from .._db import connect, translating_sqlite_errors
from .._fs import copy_written_back, fsync_file, in_background, install, temp_path_for
from ..embeddings import Embedder
from ..types import DocumentInfo, Version
from ..validation import check_ids
from .apply_batch import PHASE_BUILDING, ProgressFn, apply_batch
from .batch import BatchWriter
from .build_checks import check_build, refuse_existing
from .format import IndexMeta, read_meta
from .page_patch import Alike, PageMap

# Vacuum an incremental version when this share of its pages is free.
VACUUM_FREE_RATIO = 0.2

ATTACH_SQL = """
ATTACH DATABASE :path AS batch
"""

DETACH_SQL = """
DETACH DATABASE batch
"""

FREE_PAGES_SQL = """
SELECT
    (SELECT freelist_count FROM pragma_freelist_count),
    (SELECT page_count FROM pragma_page_count)
"""


@dataclass(frozen=True, kw_only=True)
class BuildReport:
    path: Path
    meta: IndexMeta
    embedded: int
    reused: int
    inserted: int
    updated: int
    deleted: int
    size_bytes: int
    #: Digests of the file and of each page (index/page_patch.py), computed while it was fsynced.
    page_map: PageMap
    #: For a push (a batch with ``seen`` rows): documents whose row was neither what
    #: the session had seen nor what it wrote (another writer's change, replaced).
    overwritten: int | None = None

    @property
    def sha256(self) -> str:
        return self.page_map.sha256


def build_version(
    target: Path,
    *,
    embedder: Embedder,
    index_name: str,
    version: Version,
    upserts: Iterable[DocumentInfo] = (),
    deletes: Sequence[str] = (),
    base: Path | None = None,
    upsert: bool = True,
    progress: ProgressFn | None = None,
) -> BuildReport:
    """Write ``target`` as ``base`` (if any) with ``deletes`` removed, then ``upserts`` applied.

    With ``upsert=False`` an id that already exists is a ConflictError and
    nothing is written. ``upserts`` may be any iterable (a generator streams).
    The arguments are checked first (check_build): nothing is at ``target``, and
    ``base`` is an older version of ``index_name``; else a typed error, and no file
    is touched. Example::

        build_version(Path("1.sqlite"), embedder=get_embedder(), index_name="faq",
                      version=Version(1), upserts=docs)
    """
    target, version, base = check_build(target, embedder=embedder, index_name=index_name, version=version, base=base)
    deletes = check_ids(deletes)
    batch = temp_path_for(target.with_name(target.name + ".batch"))
    writer = BatchWriter(batch, dimension=embedder.dimension, computes_embeddings=embedder.computes_embeddings)
    try:
        writer.add_docs(upserts)
        writer.add_deletes(deletes)
        writer.close()
        return _build_checked(
            target, embedder=embedder, index_name=index_name, version=version, batch=batch, base=base,
            upsert=upsert, progress=progress,
        )  # fmt: skip
    finally:
        writer.abort()


def build_from_batch(
    target: Path,
    *,
    embedder: Embedder,
    index_name: str,
    version: Version,
    batch: Path,
    base: Path | None = None,
    base_map: PageMap | None = None,
    upsert: bool = True,
    progress: ProgressFn | None = None,
) -> BuildReport:
    """Write ``target`` as ``base`` (if any) with the batch file ``batch`` applied
    (batch.py; its vectors are checked and normalised; missing ones are filled in).
    The arguments are checked as build_version checks them (check_build).
    ``base_map``: ``base``'s page map, if known: then only the pages this version
    changed are hashed for its own (page_patch.Alike)."""
    target, version, base = check_build(target, embedder=embedder, index_name=index_name, version=version, base=base)
    return _build_checked(
        target, embedder=embedder, index_name=index_name, version=version, batch=batch, base=base,
        base_map=base_map, upsert=upsert, progress=progress,
    )  # fmt: skip


def _build_checked(
    target: Path,
    *,
    embedder: Embedder,
    index_name: str,
    version: Version,
    batch: Path,
    base: Path | None,
    upsert: bool,
    progress: ProgressFn | None,
    base_map: PageMap | None = None,
) -> BuildReport:
    """build_from_batch once check_build has passed. ``target`` is checked again just
    before the rename: a file that appeared there while the build ran is not replaced."""
    report_progress = progress or (lambda phase, pct: None)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(target)
    early_flush = None
    try:
        if base is not None and not copy_written_back(base, temp):
            # The copy dirtied every page of the file. Write them out now, while
            # the model embeds (CPU): install()'s fsync then only flushes what
            # this version changed (at 100k docs, ~0.4 s of I/O off the job).
            early_flush = in_background(fsync_file, temp, low_priority=True)
        conn = connect(temp, vec=True)
        try:
            with translating_sqlite_errors(base or temp):
                conn.execute(ATTACH_SQL, {"path": str(batch)})
                try:
                    counts = apply_batch(conn, temp, base, embedder, index_name, version, upsert, report_progress)
                finally:
                    conn.execute(DETACH_SQL)
                _compact(conn, fresh=base is None)
                report_progress(PHASE_BUILDING, 100.0)
                meta = read_meta(conn, temp)
        finally:
            conn.close()
        size_bytes = temp.stat().st_size
        try:  # (checked at the start too; this catches a file made there while the build ran)
            page_map = install(temp, target, digest=_page_mapper(base, base_map), replace=False)
        except FileExistsError:
            refuse_existing(target, base)
            raise
    finally:
        if early_flush is not None:
            try:
                early_flush()
            except OSError:  # only an optimisation; install() fsyncs (or the build failed)
                pass
        temp.unlink(missing_ok=True)
    return BuildReport(path=target, meta=meta, size_bytes=size_bytes, page_map=page_map, **counts)


def _page_mapper(base: Path | None, base_map: PageMap | None) -> Callable[[BinaryIO], PageMap]:
    """How install() maps the new file: against ``base`` where its map is known."""
    if base is None or base_map is None:
        return PageMap.of_stream

    def against_base(fh: BinaryIO) -> PageMap:
        with open(base, "rb") as old:
            return PageMap.of_stream(fh, Alike(base_map, old))

    return against_base


def _compact(conn: apsw.Connection, *, fresh: bool) -> None:
    if fresh:
        # One FTS5 b-tree instead of many small segments: faster MATCH on every device.
        conn.execute("INSERT INTO docs_fts (docs_fts) VALUES ('optimize')")
        # ...which frees the pages of the segments it merged: moved to the end and cut
        # off (auto_vacuum = INCREMENTAL). Not on later versions: moving pages would
        # change them, and the next version reuses free pages anyway.
        conn.execute("PRAGMA incremental_vacuum").fetchall()  # (it frees a page per step)
    free, total = conn.execute(FREE_PAGES_SQL).fetchone()
    if total and free / total > VACUUM_FREE_RATIO:
        conn.execute("VACUUM")
    # Published files are single files: no WAL, no journal left beside them.
    conn.execute("PRAGMA journal_mode = DELETE")


__all__ = ["BuildReport", "ProgressFn", "build_from_batch", "build_version"]
