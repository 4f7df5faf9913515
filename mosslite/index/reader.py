"""IndexReader: answers queries from one immutable index version file.

Invariants (issue #2):
- Read-only: the file is opened with ``immutable=1``. Published versions never
  change, so SQLite skips locking, and a newer version renamed over the path
  later does not affect this reader, which holds the old inode open.
- Vectors are served from memory: the normalised embedding matrix is hydrated
  once at open, and vector search is exact over it (measured faster than a vec0
  KNN scan; see benchmarks/query_latency.py): one matrix-vector product, or on
  large indexes an int8 copy that picks the rows to rescore (vectors.py). Keyword search scores
  FTS5's BM25 in numpy from the posting lists of the query's terms (keyword.py);
  texts and metadata of hits are read by rowid.
- Thread-safe: queries share only read-only numpy arrays; each SQLite access
  borrows a connection from a pool, so concurrent queries from threads (or from
  asyncio code via worker threads) never share a connection mid-statement.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw
import numpy as np

from .._db import Tracer, connect, translating_sqlite_errors
from ..embeddings import Embedder, get_embedder
from ..errors import ClosedError, CorruptIndexError, InvalidArgumentError, NotFoundError
from ..types import DocumentInfo, QueryOptions, QueryResultDocumentInfo, SearchResult, options_or_default
from .filters import DictColumns, Filter, compile_filter
from .format import IndexMeta, read_meta
from .fusion import rank
from .keyword import Bm25
from .vectors import vector_search

HYDRATE_SQL = """
SELECT rowid, id, embedding
FROM docs
ORDER BY rowid
"""

METADATA_SQL = """
SELECT metadata
FROM docs
ORDER BY rowid
"""

ROWS_BY_ROWID_SQL = """
SELECT rowid, id, text, metadata, payload
FROM docs
WHERE rowid IN ({parameters})
"""

ROWS_BY_ID_SQL = """
SELECT rowid, id, text, metadata, payload, embedding
FROM docs
WHERE id IN (SELECT value FROM json_each(:ids))
"""

ALL_ROWS_SQL = """
SELECT rowid, id, text, metadata, payload, embedding
FROM docs
ORDER BY rowid
"""


def rows_by_rowid(conn: apsw.Connection, rowids: list[int]) -> apsw.Cursor:
    """Rows of ROWS_BY_ROWID_SQL for ``rowids`` (a query's results: at most MAX_TOP_K),
    bound as parameters: a third faster than passing them through json_each."""
    sql, names = _rows_by_rowid_sql(len(rowids))
    return conn.execute(sql, dict(zip(names, rowids)))


@functools.cache
def _rows_by_rowid_sql(count: int) -> tuple[str, tuple[str, ...]]:
    names = tuple(f"r{i}" for i in range(count))
    return ROWS_BY_ROWID_SQL.format(parameters=", ".join(f":{name}" for name in names)), names


def stored_doc(
    doc_id: str, text: str, metadata: str, payload: str | None, embedding: bytes, *, include_embedding: bool = True
) -> DocumentInfo:
    """A DocumentInfo from a stored row (metadata JSON, float32 little-endian blob)."""
    return DocumentInfo(
        id=doc_id,
        text=text,
        metadata=json.loads(metadata),
        payload=payload,
        embedding=np.frombuffer(embedding, dtype="<f4").tolist() if include_embedding else None,
    )


def result_docs(
    rows: dict[int, tuple], rowids: list[int], scores: np.ndarray, index_name: str
) -> list[QueryResultDocumentInfo]:
    """Ranked results from rows of ROWS_BY_ROWID_SQL (rowid, id, text, metadata, payload)."""
    out = []
    for rowid, score in zip(rowids, scores):
        _, doc_id, text, metadata, payload = rows[rowid]
        out.append(
            QueryResultDocumentInfo(
                id=doc_id,
                text=text,
                metadata=json.loads(metadata),
                score=float(score),
                payload=payload,
                index_name=index_name,
            )
        )
    return out


class IndexReader:
    def __init__(self, path: Path | str, *, embedder: Embedder | None = None, tracer: Tracer | None = None) -> None:
        self.path = Path(path)
        self._tracer = tracer
        self._idle: list[apsw.Connection] = []  # connections no query holds
        self._lock = threading.Lock()
        self._closed = False
        self._metadata: list[dict[str, str]] | None = None
        self._columns: DictColumns | None = None
        if not self.path.exists():
            raise NotFoundError(f"no index file at {self.path}", path=str(self.path))
        if not self.path.is_file():
            raise CorruptIndexError(f"{self.path} is not a file", path=str(self.path))
        with self._conn() as conn:
            self.meta: IndexMeta = read_meta(conn, self.path)
            with translating_sqlite_errors(self.path):
                rows = conn.execute(HYDRATE_SQL).fetchall()
        self.embedder = embedder or get_embedder(self.meta.model_id, dimension=self.meta.dimension)
        self._rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        self._ids: list[str] = [r[1] for r in rows]
        self._position = {doc_id: i for i, doc_id in enumerate(self._ids)}
        dim = self.meta.dimension
        blob = b"".join(r[2] for r in rows)
        self._matrix = np.frombuffer(blob, dtype="<f4").reshape(len(rows), dim).astype(np.float32, copy=False)
        self._matrix.setflags(write=False)
        self._vectors = vector_search(self._matrix)
        with self._conn() as conn, translating_sqlite_errors(self.path):
            self._bm25 = Bm25(conn, self._rowids)

    # -- facts ---------------------------------------------------------------

    @property
    def index_name(self) -> str:
        return self.meta.index_name

    @property
    def version(self) -> int:
        return int(self.meta.version)

    @property
    def doc_count(self) -> int:
        return len(self._ids)

    @property
    def matrix(self) -> np.ndarray:
        """The hydrated, normalised embeddings (read-only), row i = i-th doc by rowid."""
        return self._matrix

    # -- connections ---------------------------------------------------------

    @contextmanager
    def _conn(self) -> Iterator[apsw.Connection]:
        with self._lock:
            if self._closed:
                raise ClosedError(f"index reader for {self.path} is closed", path=str(self.path))
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            with translating_sqlite_errors(self.path):
                conn = connect(self.path, immutable=True, tracer=self._tracer)
        try:
            yield conn
        finally:
            with self._lock:
                if not self._closed:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:  # closed while this query ran: its last user closes it
                conn.close()

    def close(self) -> None:
        """Queries after this raise ClosedError. Idle connections close now, those in
        use when their query ends: apsw refuses to close a connection another thread
        is inside (a delete_index racing a get_docs raised ThreadingViolationError)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> IndexReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata for filters -----------------------------------------------

    def _filter_mask(self, spec: Filter | None) -> np.ndarray | None:
        if spec is None:
            return None
        return spec.mask(self._metadata_columns())

    def _metadata_columns(self) -> DictColumns:
        # Built on first use: loading and parsing all metadata is the one cost a
        # filter adds, and indexes that are never filtered should not pay it.
        if self._columns is None:
            with self._conn() as conn:
                metadata = [json.loads(r[0]) for r in conn.execute(METADATA_SQL)]
            with self._lock:
                if self._columns is None:
                    self._metadata = metadata
                    self._columns = DictColumns(metadata)
        return self._columns

    # -- search --------------------------------------------------------------

    def query_vector(self, text: str, options: QueryOptions) -> np.ndarray | None:
        """The query's embedding: given, or computed (and cached) by the model."""
        if options.vector is not None:
            return self.embedder.check_vector(options.vector, "query embedding")
        if not self.embedder.computes_embeddings:
            raise InvalidArgumentError(
                f"index {self.index_name!r} uses the custom model: pass QueryOptions(embedding=[...])",
                index=self.index_name,
            )
        return self.embedder.embed_query(text)

    def query(self, query: str | Sequence[float], options: QueryOptions | None = None) -> SearchResult:
        """Top-k documents for ``query`` (text, or an embedding for vector-only search)."""
        started = time.perf_counter()
        options = options_or_default(options, QueryOptions)
        if isinstance(query, str):
            text = query
        elif isinstance(query, (Sequence, np.ndarray)) and not isinstance(query, bytes):
            text, options = "", QueryOptions(top_k=options.top_k, alpha=1.0, filter=options.filter, embedding=query)
        else:
            raise InvalidArgumentError(f"query must be text or an embedding, got {type(query).__name__}")
        mask = self._filter_mask(compile_filter(options.filter))
        vector = self.query_vector(text, options) if options.alpha > 0.0 else None
        positions, scores = rank(
            options.alpha, options.top_k, vector, self._vectors, lambda want: self._keyword(text, want, mask), mask
        )
        docs = self._result_docs(positions, scores)
        return SearchResult(
            docs=docs,
            query=text,
            index_name=self.index_name,
            time_taken_ms=(time.perf_counter() - started) * 1000.0,
        )

    def _keyword(self, text: str, want: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        with self._conn() as conn:
            return self._bm25.hits(conn, text, want, mask)

    def _result_docs(self, positions: np.ndarray, scores: np.ndarray) -> list[QueryResultDocumentInfo]:
        rowids = self._rowids[positions].tolist()
        if not rowids:
            return []
        with self._conn() as conn:
            rows = {r[0]: r for r in rows_by_rowid(conn, rowids)}
        return result_docs(rows, rowids, scores, self.index_name)

    # -- documents -----------------------------------------------------------

    def get_docs(
        self, ids: Sequence[str] | None = None, filter: dict[str, Any] | None = None, *, include_embedding: bool = True
    ) -> list[DocumentInfo]:
        """Documents by id (in the order asked, missing ids skipped) and/or filter (in index order).

        ``include_embedding=False`` leaves ``embedding`` None: for callers that compare
        texts (a folder mirror) or show them, 10k vectors are ~90 MB of JSON over HTTP
        and ~5 s of encoding and decoding; without them, 6 MB."""
        compiled = compile_filter(filter)
        if ids is not None:
            if isinstance(ids, str):
                raise InvalidArgumentError("ids must be a list of strings, not one string")
            with self._conn() as conn:
                found = {r[1]: r for r in conn.execute(ROWS_BY_ID_SQL, {"ids": json.dumps(list(ids))})}
            rows = [found[i] for i in dict.fromkeys(ids) if i in found]
        else:
            with self._conn() as conn:
                rows = conn.execute(ALL_ROWS_SQL).fetchall()
        mask = self._filter_mask(compiled)
        docs = []
        for rowid, doc_id, text, metadata, payload, embedding in rows:
            if mask is not None and not mask[self._position[doc_id]]:
                continue
            docs.append(stored_doc(doc_id, text, metadata, payload, embedding, include_embedding=include_embedding))
        return docs
