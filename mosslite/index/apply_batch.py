"""One build step: a batch file applied to the copy of the base being built, in SQL.

``apply_batch`` runs inside ``builder._build_checked`` with the batch file attached
as ``batch`` (schemas/batch.sql). It refuses existing ids without upsert, gives
every upsert its vector (the stored one for an unchanged text, else the model's),
then in one transaction removes what the batch deletes or replaces, inserts the
new rows and vectors, and carries the derived tables forward: posting lists
(postings.py), the 8-bit codes of the touched vec0 chunks (vectors/stored_codes.py)
and ``meta``. A push's batch also counts what it overwrote of other writers'
changes. Last, cheap consistency checks before the file may be renamed into place.
``changes_nothing`` tells beforehand a batch that would change no document.

Invariant (see builder.py): unchanged documents are never re-embedded; only new
or changed texts reach the model, ``EMBED_BATCH`` at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import apsw

from .._db import connect, translating_sqlite_errors
from ..embeddings import Embedder
from ..errors import ConflictError, CorruptIndexError, InvalidDocumentError
from ..rows import Row, same_row, vector_blobs
from ..types import JobPhase, Version
from . import postings, vec0
from .build_checks import check_base
from .format import COUNT_DOCS_SQL, IndexMeta, create_schema, read_meta, utc_now_iso, write_meta
from .vectors import stored_codes
from .vectors.choice import wants_codes

#: Called with (phase, percent 0-100) as a build moves on; phases follow Moss.
ProgressFn = Callable[[str, float], None]
PHASE_EMBEDDING = JobPhase.GENERATING_EMBEDDINGS
PHASE_BUILDING = JobPhase.BUILDING_INDEX

EMBED_BATCH = 64

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

#: A batch (attached as ``batch``) that only deletes, none of whose ids the base holds.
CHANGES_NOTHING_SQL = """
SELECT NOT EXISTS (SELECT 1 FROM batch.upserts)
   AND NOT EXISTS (SELECT 1 FROM batch.seen)
   AND NOT EXISTS (SELECT 1 FROM docs WHERE id IN (SELECT id FROM batch.deletes))
"""

ATTACH_BATCH_SQL = """
ATTACH DATABASE :path AS batch
"""

COUNT_UPSERTS_SQL = """
SELECT count(*)
FROM batch.upserts
"""


def apply_batch(
    conn: apsw.Connection,
    temp: Path,
    base: Path | None,
    embedder: Embedder,
    index_name: str,
    version: Version,
    upsert: bool,
    report_progress: ProgressFn,
) -> dict[str, int | None]:
    """Apply the batch attached to ``conn`` (the copy at ``temp``, of ``base`` or new);
    returns the counts of its BuildReport."""
    # The temp file is thrown away on any failure, so a rollback journal on disk buys nothing.
    conn.execute("PRAGMA journal_mode = MEMORY")
    conn.execute("PRAGMA synchronous = OFF")
    if base is None:
        create_schema(conn, embedder.dimension)
    else:  # (checked before the copy; the copy is checked too, as it is what is built on)
        check_base(read_meta(conn, base), base, embedder, index_name, version)
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
        stored_codes.update(conn, touched, doc_count, embedder.dimension, wanted=wanted)
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


def changes_nothing(base: Path, batch: Path) -> bool:
    """True if applying the batch file ``batch`` to the version file ``base`` would change
    no document: it only deletes (no upserts, not a push), and ``base`` holds none of its
    ids. A job of such a batch publishes no version (issue #12: deleting a missing id
    made version N+1, identical to N, and every client downloaded it).

    An upsert of documents exactly as stored is not caught here: it still builds (its
    stored vectors reused) and publishes, which is how a caller asks for a fresh
    version, and what the build benchmark times; the folder mirror sends only changes."""
    conn = connect(base, immutable=True, mmap=False)  # (read-only: the attached batch too)
    try:
        with translating_sqlite_errors(base):
            conn.execute(ATTACH_BATCH_SQL, {"path": str(batch)})
            return bool(conn.execute(CHANGES_NOTHING_SQL).fetchone()[0])
    finally:
        conn.close()


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


def _verify(conn: apsw.Connection, path: Path, doc_count: int, *, full: bool) -> None:
    """Cheap consistency checks before a file may be renamed into place."""
    vectors = len(vec0.read_layout(conn))
    if vectors != doc_count:
        raise CorruptIndexError(f"built {path} has {doc_count} docs but {vectors} vectors", path=str(path))
    if full:
        # Reads the whole FTS index (~0.4 s at 100k docs): worth it on a fresh build;
        # an incremental one changes FTS only through the schema's triggers.
        conn.execute("INSERT INTO docs_fts (docs_fts) VALUES ('integrity-check')")


__all__ = ["EMBED_BATCH", "PHASE_BUILDING", "PHASE_EMBEDDING", "ProgressFn", "apply_batch"]
