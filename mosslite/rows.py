"""The docs row: a document as index, batch and session files store it, both ways.

A stored document is ``id``, ``text``, ``metadata`` as JSON text (``metadata_json``:
sorted keys, UTF-8), ``payload``, and its vector as float32 little-endian bytes,
L2-normalised (``vector_blobs``). Batch and session files keep the vector in the
row (``Row``); an index file keeps it once, in ``docs_vec``, and its ``docs`` rows
(``DocRow``) are read back by the SQL below, into documents (``stored_doc``) and
ranked results (``result_docs``).

Why one module (issue #9): this codec was split over the builder, the batch
writer, the reader and the changesets, so a session or the service imported
the builder to write a row. Builder, reader, session, service and changesets
now share it; it imports only records (types, filters).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .metadata_columns import metadata_object, metadata_objects
from .types import DocumentInfo, QueryResultDocumentInfo

if TYPE_CHECKING:
    import apsw

#: (text, metadata JSON, payload, embedding float32 blob): a document minus its id.
Row = tuple[str, str, str | None, bytes]

#: A document as results and get_docs need it: (id, text, metadata JSON, payload).
DocRow = tuple[str, str, str, str | None]


def metadata_json(metadata: object) -> str:
    """Metadata as stored in index, batch and session files alike (sorted keys, UTF-8)."""
    return json.dumps(metadata or {}, ensure_ascii=False, sort_keys=True)


#: A row whose length is this close to 1 is normalised already, and is stored bit for
#: bit as given: dividing a float32 unit vector by its (rounded) length again moves its
#: last bits, so a stored vector taken back (an export, a pushed row) would change.
UNIT_TOLERANCE = 1e-4


def vector_blobs(vectors: np.ndarray) -> list[bytes]:
    """Each row as float32 little-endian bytes, L2-normalised (zero rows stay zero). A row
    of unit length already (within UNIT_TOLERANCE) is kept as given, so storing a stored
    vector again gives the same bytes (issue #12)."""
    rows = np.asarray(vectors, dtype=np.float32)
    wide = rows.astype(np.float64)  # lengths in float64: no overflow past ~1.8e19, and exact enough
    norms = np.sqrt(np.einsum("ij,ij->i", wide, wide))
    out = (wide / np.maximum(norms, 1e-12)[:, None]).astype("<f4")
    unit = np.abs(norms - 1.0) <= UNIT_TOLERANCE
    out[unit] = rows[unit]
    return [row.tobytes() for row in out]


def vector_blob(vector: np.ndarray) -> bytes:
    """One vector as float32 little-endian bytes, as given (a checked vector is normalised already)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def same_row(a: Row | None, b: Row | None) -> bool:
    """Same document content. Embeddings compare within float32 rounding: a vector
    normalised on another path (a session's, the service's) may differ in its last bits."""
    if a is None or b is None:
        return a is None and b is None
    if a[0] != b[0] or a[2] != b[2] or json.loads(a[1]) != json.loads(b[1]) or len(a[3]) != len(b[3]):
        return False
    return bool(np.allclose(np.frombuffer(a[3], dtype="<f4"), np.frombuffer(b[3], dtype="<f4"), atol=1e-6))


def doc_bytes(row: Sequence[Any], dimension: int) -> int:
    """About what a document costs a page: its strings, and ~10 bytes per vector value as JSON."""
    return sum(len(v) for v in row if isinstance(v, str)) + 10 * dimension


def stored_doc(row: DocRow, vector: np.ndarray | None) -> DocumentInfo:
    """A DocumentInfo from a stored row and its float32 vector (None: without it)."""
    doc_id, text, metadata, payload = row
    return DocumentInfo(
        id=doc_id,
        text=text,
        metadata=metadata_object(metadata),
        payload=payload,
        embedding=vector.tolist() if vector is not None else None,
    )


def result_docs(rows: Sequence[DocRow], scores: np.ndarray, index_name: str) -> list[QueryResultDocumentInfo]:
    """Ranked results: ``rows`` in rank order, ``scores`` alike."""
    return [
        QueryResultDocumentInfo(
            id=doc_id, text=text, metadata=metadata, score=score, payload=payload, index_name=index_name
        )
        for (doc_id, text, _, payload), metadata, score in zip(
            rows, metadata_objects([row[2] for row in rows]), scores.tolist()
        )
    ]


# --------------------------------------------------------------------------- an index file's docs rows

ROWS_BY_ROWID_SQL = """
SELECT rowid, id, text, metadata, payload
FROM docs
WHERE rowid IN ({parameters})
"""

ROWS_BY_ID_SQL = """
SELECT rowid, id, text, metadata, payload
FROM docs
WHERE id IN (SELECT value FROM json_each(:ids))
"""

ROWS_AFTER_SQL = """
SELECT rowid, id, text, metadata, payload
FROM docs
WHERE rowid > :after
ORDER BY rowid
"""

LAST_ROWID_SQL = """
SELECT coalesce(max(rowid), 0)
FROM docs
"""

#: Ids looked up per statement when paging through asked ids.
ID_CHUNK = 500

METADATA_SQL = """
SELECT rowid, metadata
FROM docs
"""


def rows_from(conn: apsw.Connection, wanted: list[str] | None, after: int) -> Iterator[tuple[int, tuple]]:
    """(``after`` for what follows, row) from ``after`` on: asked ids in their order, or all by rowid."""
    if wanted is None:
        for row in conn.execute(ROWS_AFTER_SQL, {"after": after}):
            yield row[0], row
        return
    for start in range(after, len(wanted), ID_CHUNK):
        chunk = wanted[start : start + ID_CHUNK]
        found = {r[1]: r for r in conn.execute(ROWS_BY_ID_SQL, {"ids": json.dumps(chunk)})}
        for offset, doc_id in enumerate(chunk, start + 1):
            if doc_id in found:
                yield offset, found[doc_id]
