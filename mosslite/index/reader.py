"""IndexReader: answers queries from one immutable index version file.

Invariants (issue #2):
- Read-only: the file is opened with ``immutable=1``. Published versions never
  change, so SQLite skips locking, and a newer version renamed over the path
  later does not affect this reader, which holds the old inode open.
- Served from memory: every row (id, text, metadata, payload, normalised vector)
  is hydrated once at open. Vector search is exact over the matrix (measured
  faster than a vec0 KNN scan; see benchmarks/query_latency.py): one
  matrix-vector product, or on large indexes (and mid-sized ones whose model
  embeds every query text) an int8 copy that picks the rows to rescore
  (vectors.py), rotated on the largest so most queries read half of it
  (principal.py). Keyword search scores FTS5's BM25 in numpy from the posting
  lists of the query's terms (keyword.py), the one read from SQLite, and keeps
  recently asked terms' lists scored.
- Thread-safe: queries share only read-only arrays and lists; each SQLite access
  borrows a connection from a pool, so concurrent queries from threads (or from
  asyncio code via worker threads) never share a connection mid-statement.
"""

from __future__ import annotations

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
from .builder import check_ids
from .filters import Filter, JsonColumns, compile_filter, metadata_object
from .format import IndexMeta, read_meta
from .fusion import rank
from .keyword import Bm25
from .vectors import vector_search

HYDRATE_SQL = """
SELECT rowid, id, text, metadata, payload, embedding
FROM docs
ORDER BY rowid
"""

#: A document as results and get_docs need it: (id, text, metadata JSON, payload).
DocRow = tuple[str, str, str, str | None]


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
            id=doc_id,
            text=text,
            metadata=metadata_object(metadata),
            score=score,
            payload=payload,
            index_name=index_name,
        )
        for (doc_id, text, metadata, payload), score in zip(rows, scores.tolist())
    ]


def embedding_matrix(rows: Sequence[tuple[Any, ...]], dimension: int, path: Path) -> np.ndarray:
    """The vectors of HYDRATE_SQL's rows, one per row, each blob copied into an array
    numpy allocated: joining the blobs into one bytes object first took ~135 ms at
    100k documents, this ~80."""
    width = 4 * dimension
    matrix = np.empty((len(rows), dimension), dtype="<f4")
    if not rows:
        return matrix  # (a memoryview of an empty array cannot be cast)
    flat = memoryview(matrix).cast("B")
    start = 0
    try:
        for row in rows:
            flat[start : start + width] = row[5]
            start += width
    except (TypeError, ValueError) as exc:  # not bytes, or not 4 * dimension of them
        raise CorruptIndexError(
            f"document {rows[start // width][1]!r} has a damaged embedding (not {width} bytes)", path=str(path)
        ) from exc
    return matrix


class IndexReader:
    def __init__(self, path: Path | str, *, embedder: Embedder | None = None, tracer: Tracer | None = None) -> None:
        self.path = Path(path)
        self._tracer = tracer
        self._idle: list[apsw.Connection] = []  # connections no query holds
        self._lock = threading.Lock()
        self._closed = False
        if not self.path.exists():
            raise NotFoundError(f"no index file at {self.path}", path=str(self.path))
        if not self.path.is_file():
            raise CorruptIndexError(f"{self.path} is not a file", path=str(self.path))
        with self._conn() as conn:
            self.meta: IndexMeta = read_meta(conn, self.path)
            with translating_sqlite_errors(self.path):
                rows = conn.execute(HYDRATE_SQL).fetchall()
        self.embedder = embedder or get_embedder(self.meta.model_id, dimension=self.meta.dimension)
        # Texts, metadata and payloads stay in memory beside the vectors (as much
        # again as the text in the file: ~7 MB at 10k benchmark documents): reading
        # a query's 5 hits back from SQLite cost ~40 us, after a scan had just
        # evicted the CPU caches, of a ~0.3 ms vector query. Kept as columns, built
        # by comprehensions: zip(*rows) was faster alone but makes an iterator per
        # row, and the garbage collector's extra passes cost more than it saved.
        self._rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        self._ids: list[str] = [r[1] for r in rows]
        self._texts: list[str] = [r[2] for r in rows]
        self._metadata: list[str] = [r[3] for r in rows]
        self._payloads: list[str | None] = [r[4] for r in rows]
        self._matrix = embedding_matrix(rows, self.meta.dimension, self.path).astype(np.float32, copy=False)
        self._matrix.setflags(write=False)
        del rows
        self._position = dict(zip(self._ids, range(len(self._ids))))
        # Parsed on the first filter: indexes that are never filtered should not pay for it.
        self._columns = JsonColumns(self._metadata)
        self._vectors = vector_search(self._matrix, quiet=self.embedder.needs_the_cores)
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
            self._check_open()
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

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"index reader for {self.path} is closed", path=str(self.path))

    def __enter__(self) -> IndexReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata for filters -----------------------------------------------

    def _filter_mask(self, spec: Filter | None) -> np.ndarray | None:
        return None if spec is None else spec.mask(self._columns)

    # -- search --------------------------------------------------------------

    def query(self, query: str | Sequence[float], options: QueryOptions | None = None) -> SearchResult:
        """Top-k documents for ``query`` (text, or an embedding for vector-only search)."""
        started = time.perf_counter()
        self._check_open()
        options = options_or_default(options, QueryOptions)
        if isinstance(query, str):
            text = query
        elif isinstance(query, (Sequence, np.ndarray)) and not isinstance(query, bytes):
            text, options = "", QueryOptions(top_k=options.top_k, alpha=1.0, filter=options.filter, embedding=query)
        else:
            raise InvalidArgumentError(f"query must be text or an embedding, got {type(query).__name__}")
        mask = self._filter_mask(compile_filter(options.filter))
        vector = (
            self.embedder.query_vector(text, options.vector, kind="index", name=self.index_name)
            if options.alpha > 0.0
            else None
        )
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
        return result_docs([self._row(p) for p in positions.tolist()], scores, self.index_name)

    def _row(self, position: int) -> DocRow:
        return self._ids[position], self._texts[position], self._metadata[position], self._payloads[position]

    # -- documents -----------------------------------------------------------

    def get_docs(
        self, ids: Sequence[str] | None = None, filter: dict[str, Any] | None = None, *, include_embedding: bool = True
    ) -> list[DocumentInfo]:
        """Documents by id (in the order asked, missing ids skipped) and/or filter (in index order).
        ``ids`` is a list or tuple of non-empty strings, checked as the service checks them.

        ``include_embedding=False`` leaves ``embedding`` None: for callers that compare
        texts (a folder mirror) or show them, 10k vectors are ~90 MB of JSON over HTTP
        and ~5 s of encoding and decoding; without them, 6 MB."""
        self._check_open()
        compiled = compile_filter(filter)
        if ids is not None:
            positions = [self._position[i] for i in dict.fromkeys(check_ids(ids)) if i in self._position]
        else:
            positions = range(len(self._ids))
        mask = self._filter_mask(compiled)
        return [
            stored_doc(self._row(p), self._matrix[p] if include_embedding else None)
            for p in positions
            if mask is None or mask[p]
        ]
