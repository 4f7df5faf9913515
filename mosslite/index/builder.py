"""Writes index version files: version 1 from a batch of documents, version N+1 from version N.

Invariants (issue #2, issue #3, issue #7, issue #8):
- A build only ever creates a file: its arguments are checked before any work
  (check_build), and a target where anything exists (a version, a device node,
  the base itself) is refused, as is a base of another index or not older.
- The base file is never opened for writing: N+1 is built in a temp copy beside
  the target and renamed into place only when complete and verified, so a crash
  or an error at any point leaves no partial version under the target name.
- Unchanged documents are never re-embedded: an upsert whose text equals the
  stored text keeps the stored vector; only new or changed texts reach the model.
- A build reads its documents from a batch file (batch.py) with SQL, in
  bounded memory: no Python object per document on the way to the file, so
  1M documents build like 10k, only longer.
- What the reader needs is written here, once (format 3): each vector once in
  docs_vec, document lengths and posting lists (postings.py), and the 8-bit
  codes of the vectors (codes.py). Version N+1 carries N's forward and touches
  only what changed: new postings go to the recent lists, codes are rewritten
  only for the chunks of slots whose vectors changed, with N's codebook. So
  consecutive versions share almost every page, and a page patch stays small.
- The result is one compact file: no -wal/-shm beside it, free pages vacuumed
  when they pile up, FTS5 segments merged on a fresh build.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
from .._db import connect, translating_sqlite_errors
from .._fs import check_path, fsync_file, in_background, install, temp_path_for
from ..embeddings import Embedder
from ..errors import ConflictError, CorruptIndexError, IndexNotFoundError, InvalidArgumentError, InvalidDocumentError
from ..rows import Row, same_row, vector_blobs
from ..types import DocumentInfo, JobPhase, Version
from ..validation import check_ids, validate_name
from . import codes, postings, vec0
from .batch import BatchWriter
from .format import COUNT_DOCS_SQL, IndexMeta, create_schema, read_meta, utc_now_iso, write_meta
from .pages import PageMap
from .vectors import wants_codes

#: Called with (phase, percent 0-100) as a build moves on; phases follow Moss.
ProgressFn = Callable[[str, float], None]
PHASE_EMBEDDING = JobPhase.GENERATING_EMBEDDINGS
PHASE_BUILDING = JobPhase.BUILDING_INDEX

EMBED_BATCH = 64
# Vacuum an incremental version when this share of its pages is free.
VACUUM_FREE_RATIO = 0.2

ATTACH_SQL = """
ATTACH DATABASE :path AS batch
"""

DETACH_SQL = """
DETACH DATABASE batch
"""

CONFLICTS_SQL = """
SELECT docs.id
FROM docs JOIN batch.upserts USING (id)
ORDER BY docs.id
LIMIT 5
"""

COUNT_CONFLICTS_SQL = """
SELECT count(*)
FROM docs JOIN batch.upserts USING (id)
"""

#: Upserts without a vector whose text is unchanged: the stored vector is reused.
REUSABLE_SQL = """
SELECT batch.upserts.seq, docs.rowid
FROM batch.upserts JOIN docs USING (id)
WHERE batch.upserts.embedding IS NULL AND batch.upserts.text = docs.text
"""

STORED_VECTOR_SQL = """
SELECT embedding
FROM docs_vec
WHERE rowid = :rowid
"""

TO_EMBED_SQL = """
SELECT seq, text
FROM batch.upserts
WHERE embedding IS NULL
ORDER BY seq
"""

SET_EMBEDDING_SQL = """
UPDATE batch.upserts
SET embedding = :embedding
WHERE seq = :seq
"""

#: Documents the batch removes or replaces: (rowid, id, replaced).
REMOVED_SQL = """
SELECT docs.rowid, docs.id, docs.id IN (SELECT id FROM batch.upserts)
FROM docs
WHERE docs.id IN (SELECT id FROM batch.deletes)
   OR docs.id IN (SELECT id FROM batch.upserts)
"""

DELETE_DOC_SQL = """
DELETE FROM docs
WHERE rowid = :rowid
"""

DELETE_VECTOR_SQL = """
DELETE FROM docs_vec
WHERE rowid = :rowid
"""

MAX_ROWID_SQL = """
SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'docs'), 0)
"""

INSERT_DOCS_SQL = """
INSERT INTO docs (id, text, metadata, payload)
SELECT id, text, metadata, payload
FROM batch.upserts
ORDER BY seq
"""

INSERT_VECTORS_SQL = """
INSERT INTO docs_vec (rowid, embedding)
SELECT docs.rowid, batch.upserts.embedding
FROM batch.upserts JOIN docs USING (id)
ORDER BY docs.rowid
"""


NEW_ROWIDS_SQL = """
SELECT rowid
FROM docs
WHERE rowid > :after
"""

#: For a push: what the service held of each document the session changed, before this batch.
SEEN_SQL = """
SELECT batch.seen.id, batch.seen.text, batch.seen.metadata, batch.seen.payload, batch.seen.embedding,
       batch.upserts.text, batch.upserts.metadata, batch.upserts.payload, batch.upserts.embedding,
       docs.rowid, docs.text, docs.metadata, docs.payload
FROM batch.seen
LEFT JOIN batch.upserts USING (id)
LEFT JOIN docs ON docs.id = batch.seen.id
"""

HAS_SEEN_SQL = """
SELECT EXISTS (SELECT 1 FROM batch.seen)
"""

COUNT_UPSERTS_SQL = """
SELECT count(*)
FROM batch.upserts
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
    #: Digests of the file and of each page (index/pages.py), computed while it was fsynced.
    page_map: PageMap
    #: For a push (a batch with ``seen`` rows): documents whose row was neither what
    #: the session had seen nor what it wrote (another writer's change, replaced).
    overwritten: int | None = None

    @property
    def sha256(self) -> str:
        return self.page_map.sha256


def check_build(
    target: Any, *, embedder: Any, index_name: Any, version: Any, base: Any
) -> tuple[Path, Version, Path | None]:
    """(target, version, base) after every rule of a build is checked, before any work.

    Invariants (issue #8): a build never replaces an existing file (``target`` must
    not exist: a version file, a device node, a folder) and never reads and writes
    the same file (base != target); ``index_name`` passes validate_name; ``version``
    is at least 1; ``embedder`` is an Embedder; ``base`` is an index file of the same
    name, an older version and the same model. Each broken rule is a typed error."""
    target = check_path(target, "target")
    if not isinstance(embedder, Embedder):
        raise InvalidArgumentError(
            f"embedder must be an Embedder, got {type(embedder).__name__}", hint="pass embedder=get_embedder(model_id)"
        )
    validate_name(index_name)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArgumentError(f"version must be an integer of at least 1, got {version!r}", index=index_name)
    version = Version(version)
    if base is not None:
        base = check_path(base, "base")
    _refuse_existing(target, base)
    if base is not None:
        _check_base_file(base, embedder, index_name, version)
    return target, version, base


def _refuse_existing(target: Path, base: Path | None) -> None:
    """A build writes a new file: it is an error if anything is at ``target`` (issue #8),
    or if the nearest existing folder above it is not a folder."""
    if os.path.lexists(target):
        if base is not None and _same_file(target, base):
            raise InvalidArgumentError(
                f"target {target} is the base file: a version is built into a new file beside its base",
                path=str(target),
                hint="pass a target path where no file exists yet",
            )
        raise ConflictError(
            f"{target} already exists; a build never replaces a file",
            path=str(target),
            hint="pass a target path where no file exists yet (remove the old file first if it is garbage)",
        )
    parent = target.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InvalidArgumentError(f"{target}: {parent} is not a folder", path=str(target))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # (b missing: then it is not a)
        return False


def _check_base_file(base: Path, embedder: Embedder, index_name: str, version: Version) -> None:
    """``base`` is an index file (checked as IndexReader checks one) whose meta fits the build."""
    if not base.exists():
        raise IndexNotFoundError(f"no index file at {base}", path=str(base), index=index_name)
    if not base.is_file():  # (a folder, or a FIFO that would block the open)
        raise CorruptIndexError(f"{base} is not a file", path=str(base))
    with translating_sqlite_errors(base):
        conn = connect(base, readonly=True)
        try:
            _check_base(read_meta(conn, base), base, embedder, index_name, version)
        finally:
            conn.close()


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
    upsert: bool = True,
    progress: ProgressFn | None = None,
) -> BuildReport:
    """Write ``target`` as ``base`` (if any) with the batch file ``batch`` applied
    (batch.py; its vectors are checked and normalised; missing ones are filled in).
    The arguments are checked as build_version checks them (check_build)."""
    target, version, base = check_build(target, embedder=embedder, index_name=index_name, version=version, base=base)
    return _build_checked(
        target, embedder=embedder, index_name=index_name, version=version, batch=batch, base=base,
        upsert=upsert, progress=progress,
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
) -> BuildReport:
    """build_from_batch once check_build has passed. ``target`` is checked again just
    before the rename: a file that appeared there while the build ran is not replaced."""
    report_progress = progress or (lambda phase, pct: None)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(target)
    early_flush = None
    try:
        if base is not None:
            shutil.copyfile(base, temp)
            # The copy dirtied every page of the file. Write them out now, while
            # the model embeds (CPU): install()'s fsync then only flushes what
            # this version changed (at 100k docs, ~0.4 s of I/O off the job).
            early_flush = in_background(fsync_file, temp, low_priority=True)
        conn = connect(temp, vec=True)
        try:
            with translating_sqlite_errors(base or temp):
                conn.execute(ATTACH_SQL, {"path": str(batch)})
                try:
                    counts = _apply(conn, temp, base, embedder, index_name, version, upsert, report_progress)
                finally:
                    conn.execute(DETACH_SQL)
                _compact(conn, fresh=base is None)
                report_progress(PHASE_BUILDING, 100.0)
                meta = read_meta(conn, temp)
        finally:
            conn.close()
        size_bytes = temp.stat().st_size
        try:  # (checked at the start too; this catches a file made there while the build ran)
            page_map = install(temp, target, digest=PageMap.of_stream, replace=False)
        except FileExistsError:
            _refuse_existing(target, base)
            raise
    finally:
        if early_flush is not None:
            try:
                early_flush()
            except OSError:  # only an optimisation; install() fsyncs (or the build failed)
                pass
        temp.unlink(missing_ok=True)
    return BuildReport(path=target, meta=meta, size_bytes=size_bytes, page_map=page_map, **counts)


def _apply(
    conn: apsw.Connection,
    temp: Path,
    base: Path | None,
    embedder: Embedder,
    index_name: str,
    version: Version,
    upsert: bool,
    report_progress: ProgressFn,
) -> dict[str, int | None]:
    # The temp file is thrown away on any failure, so a rollback journal on disk buys nothing.
    conn.execute("PRAGMA journal_mode = MEMORY")
    conn.execute("PRAGMA synchronous = OFF")
    if base is None:
        create_schema(conn, embedder.dimension)
    else:  # (checked before the copy; the copy is checked too, as it is what is built on)
        _check_base(read_meta(conn, base), base, embedder, index_name, version)
    if not upsert and (clash := [r[0] for r in conn.execute(CONFLICTS_SQL)]):
        count = conn.execute(COUNT_CONFLICTS_SQL).fetchone()[0]
        raise ConflictError(
            f"{count} document id(s) already exist in {index_name!r}, e.g. {clash}",
            index=index_name,
            hint="pass MutationOptions(upsert=True) to replace them",
        )
    embedded, reused = _fill_embeddings(conn, embedder, report_progress)

    report_progress(PHASE_BUILDING, 0.0)
    with conn:
        overwritten = _count_overwritten(conn) if conn.execute(HAS_SEEN_SQL).fetchone()[0] else None
        removed = conn.execute(REMOVED_SQL).fetchall()
        updated = sum(1 for _, _, replaced in removed if replaced)
        removed_rowids = [rowid for rowid, _, _ in removed]
        touched = vec0.chunks_holding(conn, removed_rowids)
        conn.executemany(DELETE_DOC_SQL, ({"rowid": r} for r in removed_rowids))
        conn.executemany(DELETE_VECTOR_SQL, ({"rowid": r} for r in removed_rowids))
        after = conn.execute(MAX_ROWID_SQL).fetchone()[0]
        conn.execute(INSERT_DOCS_SQL)
        conn.execute(INSERT_VECTORS_SQL)
        if base is None:  # every chunk is new
            touched = set(vec0.chunk_ids(conn))
        else:
            touched |= vec0.chunks_holding(conn, [r[0] for r in conn.execute(NEW_ROWIDS_SQL, {"after": after})])
        report_progress(PHASE_BUILDING, 20.0)
        doc_count = conn.execute(COUNT_DOCS_SQL).fetchone()[0]
        postings.update(conn, after, fresh=base is None, removed=len(removed_rowids), doc_count=doc_count)
        report_progress(PHASE_BUILDING, 50.0)
        wanted = wants_codes(doc_count, embedder.dimension, quiet=embedder.needs_the_cores)
        codes.update(conn, touched, doc_count, embedder.dimension, wanted=wanted)
        write_meta(
            conn,
            IndexMeta(
                index_name=index_name,
                version=version,
                model_id=embedder.model_id,
                dimension=embedder.dimension,
                doc_count=doc_count,
                created_at=utc_now_iso(),
            ),
        )
    report_progress(PHASE_BUILDING, 60.0)
    _verify(conn, temp, doc_count, full=base is None)
    upserts = conn.execute(COUNT_UPSERTS_SQL).fetchone()[0]
    return {
        "embedded": embedded,
        "reused": reused,
        "inserted": upserts - updated,
        "updated": updated,
        "deleted": len(removed_rowids) - updated,
        "overwritten": overwritten,
    }


def _check_base(meta: IndexMeta, base: Path, embedder: Embedder, index_name: str, version: Version) -> None:
    """A base is an older version of the same index, made with the same model (issue #8)."""
    if meta.index_name != index_name:
        raise InvalidArgumentError(
            f"base {base} is a version of index {meta.index_name!r}, not {index_name!r}", index=index_name, path=str(base)
        )
    if meta.version >= version:
        raise InvalidArgumentError(
            f"base {base} is version {int(meta.version)} of {index_name!r}: version {int(version)} must be newer",
            index=index_name,
            path=str(base),
            hint=f"build version {int(meta.version) + 1} or later on it",
        )
    if meta.model_id != embedder.model_id or meta.dimension != embedder.dimension:
        raise InvalidArgumentError(
            f"index {index_name!r} uses model {meta.model_id!r} ({meta.dimension} dims), "
            f"not {embedder.model_id!r} ({embedder.dimension} dims)",
            index=index_name,
        )


def _fill_embeddings(conn: apsw.Connection, embedder: Embedder, report_progress: ProgressFn) -> tuple[int, int]:
    """Give every upsert its vector: the stored one where the text is unchanged, else
    the model's (written into the batch file). Returns (embedded, reused)."""
    reusable = conn.execute(REUSABLE_SQL).fetchall()
    with conn:
        for seq, rowid in reusable:
            stored = conn.execute(STORED_VECTOR_SQL, {"rowid": rowid}).fetchone()
            if stored is None:
                raise CorruptIndexError(f"document rowid {rowid} has no vector in docs_vec")
            conn.execute(SET_EMBEDDING_SQL, {"seq": seq, "embedding": stored[0]})
    missing = conn.execute(TO_EMBED_SQL).fetchall()
    if missing and not embedder.computes_embeddings:
        raise InvalidDocumentError(
            f"{len(missing)} document(s) have no embedding, and model {embedder.model_id!r} computes none",
            hint="pass DocumentInfo(embedding=[...]) for every document of a custom index",
        )
    if missing:
        report_progress(PHASE_EMBEDDING, 0.0)
        for start in range(0, len(missing), EMBED_BATCH):
            part = missing[start : start + EMBED_BATCH]
            blobs = vector_blobs(embedder.embed([text for _, text in part]))
            with conn:
                conn.executemany(SET_EMBEDDING_SQL, ({"seq": seq, "embedding": b} for (seq, _), b in zip(part, blobs)))
            report_progress(PHASE_EMBEDDING, 100.0 * min(start + EMBED_BATCH, len(missing)) / len(missing))
    return len(missing), len(reusable)


def _count_overwritten(conn: apsw.Connection) -> int:
    """How many of a push's documents were changed on the service by someone else
    since the session saw them: the row held now is neither the seen one nor the new."""
    count = 0
    for row in conn.execute(SEEN_SQL).fetchall():
        seen, new, rowid, held = row[1:5], row[5:9], row[9], row[10:13]
        current: Row | None = None
        if rowid is not None:
            vector = conn.execute(STORED_VECTOR_SQL, {"rowid": rowid}).fetchone()
            current = (*held, vector[0] if vector else b"")  # type: ignore[assignment]
        seen_row = None if seen[0] is None else seen
        new_row = None if new[0] is None else new
        if not same_row(current, seen_row) and not same_row(current, new_row):  # type: ignore[arg-type]
            count += 1
    return count


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


def _verify(conn: apsw.Connection, path: Path, doc_count: int, *, full: bool) -> None:
    """Cheap consistency checks before a file may be renamed into place."""
    vectors = len(vec0.read_layout(conn))
    if vectors != doc_count:
        raise CorruptIndexError(f"built {path} has {doc_count} docs but {vectors} vectors", path=str(path))
    if full:
        # Reads the whole FTS index (~0.4 s at 100k docs): worth it on a fresh build;
        # an incremental one changes FTS only through the schema's triggers.
        conn.execute("INSERT INTO docs_fts (docs_fts) VALUES ('integrity-check')")


__all__ = ["BuildReport", "ProgressFn", "build_from_batch", "build_version", "check_build"]
