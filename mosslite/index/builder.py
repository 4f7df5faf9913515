"""Writes index version files: version 1 from documents, version N+1 from version N.

Invariants (issue #2, issue #3):
- The base file is never opened for writing: N+1 is built in a temp copy beside
  the target and renamed into place only when complete and verified, so a crash
  or an error at any point leaves no partial version under the target name.
- Unchanged documents are never re-embedded: an upsert whose text equals the
  stored text keeps the stored vector; only new or changed texts reach the model.
- The result is one compact file: no -wal/-shm beside it, free pages vacuumed
  when they pile up, FTS5 segments merged on a fresh build.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import apsw
import numpy as np

from .._db import connect, translating_sqlite_errors
from .._fs import fsync_file, in_background, install, temp_path_for
from ..embeddings import Embedder
from ..errors import ConflictError, CorruptIndexError, InvalidArgumentError, InvalidDocumentError
from ..types import DocumentInfo, JobPhase, Version
from .format import COUNT_DOCS_SQL, IndexMeta, create_schema, read_meta, utc_now_iso, write_meta
from .pages import PageMap
from .postings import update_postings

#: Called with (phase, percent 0-100) as a build moves on; phases follow Moss.
ProgressFn = Callable[[str, float], None]
PHASE_EMBEDDING = JobPhase.GENERATING_EMBEDDINGS
PHASE_BUILDING = JobPhase.BUILDING_INDEX

EMBED_BATCH = 64
# Vacuum an incremental version when this share of its pages is free.
VACUUM_FREE_RATIO = 0.2

EXISTING_DOCS_SQL = """
SELECT id, text, embedding
FROM docs
WHERE id IN (SELECT value FROM json_each(:ids))
"""

TEXTS_SQL = """
SELECT rowid, text
FROM docs
WHERE id IN (SELECT value FROM json_each(:ids))
"""

DELETE_DOCS_SQL = """
DELETE FROM docs
WHERE id IN (SELECT value FROM json_each(:ids))
"""

UPSERT_DOC_SQL = """
INSERT INTO docs (id, text, metadata, payload, embedding)
VALUES (:id, :text, :metadata, :payload, :embedding)
ON CONFLICT (id) DO UPDATE SET
    text = excluded.text,
    metadata = excluded.metadata,
    payload = excluded.payload,
    embedding = excluded.embedding
"""

FREE_PAGES_SQL = """
SELECT
    (SELECT freelist_count FROM pragma_freelist_count),
    (SELECT page_count FROM pragma_page_count)
"""

COUNT_VEC_SQL = """
SELECT count(*)
FROM docs_vec
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

    @property
    def sha256(self) -> str:
        return self.page_map.sha256


def check_batch(docs: Iterable[DocumentInfo]) -> list[DocumentInfo]:
    """``docs`` (any iterable of DocumentInfo) as a list, after the batch-level rules
    the records cannot check alone. Called where a batch enters (client, session,
    service), so a slip such as passing None or one document fails there, typed,
    and not deep in a worker."""
    if isinstance(docs, (DocumentInfo, str, bytes, Mapping)) or not isinstance(docs, Iterable):
        raise InvalidDocumentError(f"docs must be a list of DocumentInfo, got {type(docs).__name__}")
    docs = list(docs)
    seen: set[str] = set()
    for doc in docs:
        if not isinstance(doc, DocumentInfo):
            raise InvalidDocumentError(f"expected DocumentInfo, got {type(doc).__name__}")
        if doc.id in seen:
            raise InvalidDocumentError(f"duplicate document id {doc.id!r} in one batch", id=doc.id)
        seen.add(doc.id)
    return docs


def check_ids(ids: Sequence[str]) -> list[str]:
    if not isinstance(ids, (list, tuple)):
        raise InvalidArgumentError(f"ids must be a list of strings, got {type(ids).__name__}")
    out = list(ids)
    for doc_id in out:
        if not isinstance(doc_id, str) or not doc_id:
            raise InvalidArgumentError(f"document ids must be non-empty strings, got {doc_id!r}")
    return out


def vector_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def build_version(
    target: Path,
    *,
    embedder: Embedder,
    index_name: str,
    version: Version,
    upserts: Sequence[DocumentInfo] = (),
    deletes: Sequence[str] = (),
    base: Path | None = None,
    upsert: bool = True,
    progress: ProgressFn | None = None,
) -> BuildReport:
    """Write ``target`` as ``base`` (if any) with ``deletes`` removed, then ``upserts`` applied.

    With ``upsert=False`` an id that already exists is a ConflictError and
    nothing is written. Example::

        build_version(Path("1.sqlite"), embedder=get_embedder(), index_name="faq",
                      version=Version(1), upserts=docs)
    """
    check_batch(upserts)
    deletes = check_ids(deletes)
    report_progress = progress or (lambda phase, pct: None)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(target)
    early_flush = None
    try:
        if base is not None:
            shutil.copyfile(base, temp)
            # The copy dirtied every page of the file. Write them out now, while
            # the model embeds (CPU): install()'s fsync then only flushes what
            # this version changed (at 100k docs, ~0.4 s of I/O off the job).
            early_flush = in_background(fsync_file, temp)
        conn = connect(temp, vec=True)
        try:
            with translating_sqlite_errors(base or temp):
                counts = _apply(conn, temp, base, embedder, index_name, version, upserts, deletes, upsert, report_progress)
                meta = read_meta(conn, temp)
        finally:
            conn.close()
        size_bytes = temp.stat().st_size
        page_map = install(temp, target, digest=PageMap.of_stream)
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
    upserts: Sequence[DocumentInfo],
    deletes: list[str],
    upsert: bool,
    report_progress: ProgressFn,
) -> dict[str, int]:
    # The temp file is thrown away on any failure, so a rollback journal on disk buys nothing.
    conn.execute("PRAGMA journal_mode = MEMORY")
    conn.execute("PRAGMA synchronous = OFF")
    if base is None:
        create_schema(conn, embedder.dimension)
    else:
        _check_base(conn, base, embedder, index_name)

    existing = {
        row[0]: (row[1], row[2])
        for row in conn.execute(EXISTING_DOCS_SQL, {"ids": json.dumps([d.id for d in upserts])})
    }
    if not upsert and existing:
        clash = sorted(existing)[:5]
        raise ConflictError(
            f"{len(existing)} document id(s) already exist in {index_name!r}, e.g. {clash}",
            index=index_name,
            hint="pass MutationOptions(upsert=True) to replace them",
        )
    still_there = set(existing) - set(deletes)
    blobs, embedded, reused = _embeddings_for(upserts, existing, still_there, embedder, report_progress)

    report_progress(PHASE_BUILDING, 0.0)
    touched = {"ids": json.dumps(list(dict.fromkeys([*deletes, *(d.id for d in upserts)])))}
    with conn:
        before = dict(conn.execute(TEXTS_SQL, touched).fetchall())
        conn.execute(DELETE_DOCS_SQL, {"ids": json.dumps(deletes)})
        deleted = conn.changes()  # rows of docs only: trigger changes are not counted
        conn.executemany(
            UPSERT_DOC_SQL,
            (
                {
                    "id": doc.id,
                    "text": doc.text,
                    "metadata": json.dumps(doc.metadata or {}, ensure_ascii=False, sort_keys=True),
                    "payload": doc.payload,
                    "embedding": blob,
                }
                for doc, blob in zip(upserts, blobs)
            ),
        )
        after = dict(conn.execute(TEXTS_SQL, touched).fetchall())
        # A row keeps its rowid when its id is upserted, so (rowid, text) pairs
        # present on one side only are exactly what the postings must drop or gain.
        update_postings(
            conn,
            removed={r: t for r, t in before.items() if after.get(r) != t},
            added={r: t for r, t in after.items() if before.get(r) != t},
        )
        doc_count = conn.execute(COUNT_DOCS_SQL).fetchone()[0]
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
    _compact(conn, fresh=base is None)
    _verify(conn, temp, doc_count, full=base is None)
    report_progress(PHASE_BUILDING, 100.0)
    updated = len(still_there)
    return {
        "embedded": embedded,
        "reused": reused,
        "inserted": len(upserts) - updated,
        "updated": updated,
        "deleted": deleted,
    }


def _check_base(conn: apsw.Connection, base: Path, embedder: Embedder, index_name: str) -> None:
    meta = read_meta(conn, base)
    if meta.model_id != embedder.model_id or meta.dimension != embedder.dimension:
        raise InvalidArgumentError(
            f"index {index_name!r} uses model {meta.model_id!r} ({meta.dimension} dims), "
            f"not {embedder.model_id!r} ({embedder.dimension} dims)",
            index=index_name,
        )


def _embeddings_for(
    upserts: Sequence[DocumentInfo],
    existing: dict[str, tuple[str, bytes]],
    still_there: set[str],
    embedder: Embedder,
    report_progress: ProgressFn,
) -> tuple[list[bytes], int, int]:
    """One blob per upsert: supplied, reused (same text as stored), or newly embedded."""
    blobs: list[bytes | None] = [None] * len(upserts)
    to_embed: list[int] = []
    reused = 0
    for i, doc in enumerate(upserts):
        if doc.embedding is not None:
            blobs[i] = vector_blob(embedder.check_vector(doc.embedding, f"embedding of document {doc.id!r}"))
        elif doc.id in still_there and existing[doc.id][0] == doc.text:
            blobs[i] = existing[doc.id][1]
            reused += 1
        elif embedder.computes_embeddings:
            to_embed.append(i)
        else:
            raise InvalidDocumentError(
                f"document {doc.id!r} has no embedding, and model {embedder.model_id!r} computes none",
                id=doc.id,
                hint="pass DocumentInfo(embedding=[...]) for every document of a custom index",
            )
    if to_embed:
        report_progress(PHASE_EMBEDDING, 0.0)
        for start in range(0, len(to_embed), EMBED_BATCH):
            batch = to_embed[start : start + EMBED_BATCH]
            vectors = embedder.embed([upserts[i].text for i in batch])
            for i, vector in zip(batch, vectors):
                blobs[i] = vector_blob(vector)
            report_progress(PHASE_EMBEDDING, 100.0 * min(start + EMBED_BATCH, len(to_embed)) / len(to_embed))
    return [b for b in blobs if b is not None], len(to_embed), reused


def _compact(conn: apsw.Connection, *, fresh: bool) -> None:
    if fresh:
        # One FTS5 b-tree instead of many small segments: faster MATCH on every device.
        conn.execute("INSERT INTO docs_fts (docs_fts) VALUES ('optimize')")
    free, total = conn.execute(FREE_PAGES_SQL).fetchone()
    if total and free / total > VACUUM_FREE_RATIO:
        conn.execute("VACUUM")
    # Published files are single files: no WAL, no journal left beside them.
    conn.execute("PRAGMA journal_mode = DELETE")


def _verify(conn: apsw.Connection, path: Path, doc_count: int, *, full: bool) -> None:
    """Cheap consistency checks before a file may be renamed into place."""
    vec_count = conn.execute(COUNT_VEC_SQL).fetchone()[0]
    if vec_count != doc_count:
        raise CorruptIndexError(f"built {path} has {doc_count} docs but {vec_count} vectors", path=str(path))
    if full:
        # Reads the whole FTS index (~0.4 s at 100k docs): worth it on a fresh build;
        # an incremental one changes FTS only through the schema's triggers.
        conn.execute("INSERT INTO docs_fts (docs_fts) VALUES ('integrity-check')")
