"""Batch files: the changes one job applies to an index, one SQLite file each.

Why (issue #7): a job's request used to live in the catalog's jobs row as JSON
text of floats. At 100k documents most of a build was spent writing it
(``json.dumps``) and rewriting it with every progress update, the catalog
grew by 1.7 GB and never shrank, and a 1M-document request could not be held
at all. A batch file (``schemas/batch.sql``) holds vectors as float32 blobs,
is written once, documents streaming in ``WRITE_ROWS`` at a time, and is
deleted when its job ends; the catalog keeps only the job's small row.

Invariants:
- Checked on the way in: every document is a DocumentInfo, ids are unique in
  the batch, a vector has the index's width (the first one fixes it for the
  custom model) and is stored normalised, a model that computes no vectors
  gets one with every document, and text that SQLite cannot store (a lone
  surrogate) is refused. A failed write leaves no file behind (``abort``), so
  bad input never reaches a queue.
- Memory stays bounded by ``WRITE_ROWS`` documents, whatever the batch's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import apsw
import numpy as np

from .._db import connect, read_schema
from ..errors import DimensionMismatchError, InvalidArgumentError, InvalidDocumentError
from ..rows import Row, metadata_json, vector_blobs
from ..types import DocumentInfo, iter_docs

SCHEMA_FILE = "batch.sql"
#: Documents checked and written per statement: bounds a batch's memory (4096
#: documents of 384 dimensions: ~6 MB of vectors, plus their texts).
WRITE_ROWS = 4096

INSERT_UPSERT_SQL = """
INSERT INTO upserts (id, text, metadata, payload, embedding)
VALUES (?, ?, ?, ?, ?)
"""

INSERT_DELETE_SQL = """
INSERT OR IGNORE INTO deletes (id)
VALUES (?)
"""

INSERT_SEEN_SQL = """
INSERT INTO seen (id, text, metadata, payload, embedding)
VALUES (?, ?, ?, ?, ?)
"""

ID_TAKEN_SQL = """
SELECT 1
FROM upserts
WHERE id = ?
"""

WRITE_FACT_SQL = """
INSERT OR REPLACE INTO facts (key, value)
VALUES (:key, :value)
"""

READ_FACTS_SQL = """
SELECT key, value
FROM facts
"""

UPSERT_IDS_SQL = """
SELECT seq, id
FROM upserts
WHERE seq > :after
ORDER BY seq
LIMIT :limit
"""

COUNTS_SQL = """
SELECT (SELECT count(*) FROM upserts), (SELECT count(*) FROM deletes)
"""


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class BatchWriter:
    """Writes one batch file. Example::

        writer = BatchWriter(path, dimension=384, computes_embeddings=False, facts={"kind": "add_docs"})
        try:
            writer.add_docs(docs)
        except BaseException:
            writer.abort()
            raise
        writer.close()
    """

    def __init__(
        self, path: Path, *, dimension: int | None, computes_embeddings: bool, facts: Mapping[str, object] | None = None
    ) -> None:
        """A new batch file at ``path``. ``dimension``: the index's vector width; None for
        a custom index not created yet (its first vector fixes it). ``computes_embeddings``:
        whether documents may come without a vector (the model embeds them)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        self._open()
        self._conn.execute(read_schema(SCHEMA_FILE))
        self.set_facts(dimension=dimension, computes_embeddings=int(computes_embeddings), **(facts or {}))
        self.dimension, self.computes_embeddings = dimension, computes_embeddings

    @classmethod
    def reopen(cls, path: Path) -> BatchWriter:
        """Append to an existing batch file (an upload filled by several requests)."""
        writer = cls.__new__(cls)
        writer.path = Path(path)
        writer._open()
        facts = dict(writer._conn.execute(READ_FACTS_SQL).fetchall())
        writer.dimension, writer.computes_embeddings = facts.get("dimension"), bool(facts.get("computes_embeddings"))
        return writer

    def _open(self) -> None:
        self._conn = connect(self.path)
        # Fsynced by its owner when it matters (service/batches.py). The journal is
        # kept in memory, not on disk: a refused statement still rolls back whole.
        self._conn.execute("PRAGMA journal_mode = MEMORY")
        self._conn.execute("PRAGMA synchronous = OFF")

    def set_facts(self, **facts: object) -> None:
        self._conn.executemany(WRITE_FACT_SQL, [{"key": k, "value": v} for k, v in facts.items()])

    def add_docs(self, docs: object) -> int:
        """Check and append ``docs``; returns how many were added."""
        added = 0
        for batch in chunked(iter_docs(docs), WRITE_ROWS):
            rows = self._rows(batch)
            try:
                with self._conn:
                    self._conn.executemany(INSERT_UPSERT_SQL, rows)
            except apsw.ConstraintError as exc:
                raise self._duplicate(batch) from exc
            except UnicodeEncodeError as exc:
                raise InvalidDocumentError(f"a document holds text SQLite cannot store: {exc}") from exc
            added += len(rows)
        return added

    def _rows(self, batch: Sequence[DocumentInfo]) -> list[tuple[Any, ...]]:
        given = [i for i, doc in enumerate(batch) if doc.embedding is not None]
        if len(given) < len(batch) and not self.computes_embeddings:
            doc = next(d for d in batch if d.embedding is None)
            raise InvalidDocumentError(
                f"document {doc.id!r} has no embedding, and this index's model computes none",
                id=doc.id,
                hint="pass DocumentInfo(embedding=[...]) for every document of a custom index",
            )
        blobs: list[bytes | None] = [None] * len(batch)
        if given:
            if self.dimension is None:
                self.dimension = len(batch[given[0]].embedding)  # type: ignore[arg-type]
                self.set_facts(dimension=self.dimension)
            for i in given:
                if len(batch[i].embedding) != self.dimension:  # type: ignore[arg-type]
                    doc = batch[i]
                    raise DimensionMismatchError(
                        f"document {doc.id!r} has a {len(doc.embedding)}-dimensional embedding; "  # type: ignore[arg-type]
                        f"the index uses {self.dimension}",
                        id=doc.id,
                        expected=self.dimension,
                        got=len(doc.embedding),  # type: ignore[arg-type]
                    )
            vectors = np.array([batch[i].embedding for i in given], dtype=np.float32)
            for i, blob in zip(given, vector_blobs(vectors)):
                blobs[i] = blob
        return [
            (doc.id, doc.text, metadata_json(doc.metadata), doc.payload, blob) for doc, blob in zip(batch, blobs)
        ]

    def _duplicate(self, batch: Sequence[DocumentInfo]) -> InvalidDocumentError:
        """The error for the id the UNIQUE constraint refused: twice in ``batch``, or
        already written by an earlier one (the failed statement was rolled back)."""
        seen: set[str] = set()
        for doc in batch:
            if doc.id in seen:
                break
            seen.add(doc.id)
        else:
            doc = next(d for d in batch if self._conn.execute(ID_TAKEN_SQL, (d.id,)).fetchone() is not None)
        return InvalidDocumentError(f"duplicate document id {doc.id!r} in one batch", id=doc.id)

    def add_deletes(self, ids: Iterable[str]) -> int:
        """Append ids to remove; each a non-empty string."""
        added = 0
        for batch in chunked(ids, WRITE_ROWS):
            for doc_id in batch:
                if not isinstance(doc_id, str) or not doc_id:
                    raise InvalidArgumentError(f"document ids must be non-empty strings, got {doc_id!r}")
            try:
                with self._conn:
                    self._conn.executemany(INSERT_DELETE_SQL, [(doc_id,) for doc_id in batch])
            except UnicodeEncodeError as exc:
                raise InvalidArgumentError(f"a document id holds text SQLite cannot store: {exc}") from exc
            added += len(batch)
        return added

    def add_seen(self, rows: Iterable[tuple[str, Row | None]]) -> None:
        """For a push: the row each changed document had when the session saw it."""
        with self._conn:
            self._conn.executemany(
                INSERT_SEEN_SQL, ((doc_id, *(row or (None, None, None, None))) for doc_id, row in rows)
            )

    def close(self) -> None:
        self._conn.close()

    def abort(self) -> None:
        """Close and remove the file: nothing of a refused batch is kept."""
        try:
            self._conn.close()
        finally:
            self.path.unlink(missing_ok=True)


def read_facts(path: Path) -> dict[str, Any]:
    conn = connect(path, readonly=True)
    try:
        return dict(conn.execute(READ_FACTS_SQL).fetchall())
    finally:
        conn.close()


def batch_counts(path: Path) -> tuple[int, int]:
    """(documents to upsert, ids to delete) in a batch file."""
    conn = connect(path, readonly=True)
    try:
        return tuple(conn.execute(COUNTS_SQL).fetchone())  # type: ignore[return-value]
    finally:
        conn.close()


def batch_ids(path: Path, size: int = WRITE_ROWS) -> Iterator[list[str]]:
    """The ids of a batch file's upserts, ``size`` at a time."""
    conn = connect(path, readonly=True)
    try:
        after = 0
        while rows := conn.execute(UPSERT_IDS_SQL, {"after": after, "limit": size}).fetchall():
            yield [doc_id for _, doc_id in rows]
            after = rows[-1][0]
    finally:
        conn.close()

