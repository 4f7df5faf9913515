"""IndexReader: answers queries from one immutable index version file.

Invariants (issue #2, issue #7):
- Read-only: the file is opened with ``immutable=1``. Published versions never
  change, so SQLite skips locking, and a newer version renamed over the path
  later does not affect this reader, which holds the old inode open.
- Opening reads, it does not compute: the vectors are copied chunk by chunk
  out of the vec0 table (vec0.py), the 8-bit codes of large indexes and the
  document lengths likewise (vectors/stored_codes.py, postings.py), all by bulk
  blob reads. Nothing proportional to n x d^2 runs, and no Python object is made per
  document: ids, texts and metadata stay in the file, and a query fetches its
  hits' rows by rowid (tens of microseconds); filters read the metadata on
  first use.
- Vector search is exact over the in-memory matrix (measured faster than a
  vec0 KNN scan; see benchmarks/query_latency.py): one matrix-vector product
  (on mid-sized indexes over a transposed copy, which numpy's BLAS runs faster),
  or on large indexes (and mid-sized ones whose model embeds every query text)
  the 8-bit codes pick the rows to rescore (vectors/int8.py, rotated.py). Those
  searches are made ready on a thread of their own while the first queries are
  served by the plain scan (``wait_ready``); the transposed copy only once the
  reader has answered a few queries. Either way the answer is the same. Keyword
  search scores FTS5's BM25 in numpy from the posting lists of the query's
  terms (keyword.py), and keeps recently asked terms' lists scored.
- Thread-safe: queries share only read-only arrays; each SQLite access borrows
  a connection from a pool, so concurrent queries from threads (or from
  asyncio code via worker threads) never share a connection mid-statement.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apsw
import numpy as np

from .._db import Tracer, connect, translating_sqlite_errors, with_parameters
from .._fs import check_path
from .._memory import release_free_memory
from ..embeddings import Embedder, get_embedder
from ..errors import ClosedError, CorruptIndexError, InvalidArgumentError, NotFoundError
from ..filters import Filter, compile_filter
from ..metadata_columns import JsonColumns
from ..rows import LAST_ROWID_SQL, METADATA_SQL, ROWS_BY_ROWID_SQL, DocRow, doc_bytes, result_docs, rows_from, stored_doc
from ..types import DEFAULT_PAGE_DOCS, PAGE_BYTES, DocumentInfo, QueryOptions, QueryResultDocumentInfo, SearchResult, options_or_default
from ..validation import check_ids
from . import vec0
from .format import IndexMeta, read_meta
from .keyword import Bm25, has_words
from .postings import read_lengths
from .ranking import rank
from .vectors import choice
from .vectors.choice import scans_columns, searches_in_8_bits, vector_search
from .vectors.exact import ExactScan, VectorSearch
from .vectors.stored_codes import read_codebook, read_codes

log = logging.getLogger("mosslite.index")


#: Readers not closed yet: at exit, their onnxruntime sessions go before the interpreter
#: tears down (see IndexReader.close). Threads still making a search ready are joined
#: first (they are not daemons), so every session exists by then.
_OPEN_READERS: weakref.WeakSet[IndexReader] = weakref.WeakSet()


@atexit.register
def _close_open_readers() -> None:
    for reader in list(_OPEN_READERS):
        reader.close()


#: One past the largest rowid (and the largest cursor) SQLite can hold.
CURSOR_LIMIT = 2**63


def _check_page_args(after: Any, limit: Any) -> None:
    """What page_docs takes: 0 <= ``after`` < 2**63; ``limit`` None or >= 1. Not a bool."""
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < CURSOR_LIMIT:
        raise InvalidArgumentError(f"after must be an integer from 0 to {CURSOR_LIMIT - 1}, got {after!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidArgumentError(f"limit must be None or an integer of at least 1, got {limit!r}")


class IndexReader:
    def __init__(
        self,
        path: Path | str,
        *,
        embedder: Embedder | None = None,
        tracer: Tracer | None = None,
        search: bool = True,
        like: IndexReader | None = None,
    ) -> None:
        """``search=False``: a reader for documents and filters only (the service's own),
        which never makes a faster search ready; its vector queries scan. ``like``: the
        reader of the version this one will replace; what its vector search had to make
        for its queries (rotated.py's tail) is made here at once.

        ``path`` that is no path (5, None, a NUL in it) and an ``embedder`` that is not
        an Embedder are InvalidArgumentErrors, before anything is opened (issue #8)."""
        self.path = check_path(path, "index path")
        if embedder is not None and not isinstance(embedder, Embedder):
            raise InvalidArgumentError(
                f"embedder must be an Embedder or None, got {type(embedder).__name__}",
                hint="pass embedder=get_embedder(model_id), or leave it out to use the index's model",
            )
        self._tracer = tracer
        self._idle: list[apsw.Connection] = []  # connections no query holds
        self._lock = threading.Lock()
        self._closed = False
        if not self.path.exists():
            raise NotFoundError(f"no index file at {self.path}", path=str(self.path))
        if not self.path.is_file():
            raise CorruptIndexError(f"{self.path} is not a file", path=str(self.path))
        with self._conn() as conn, translating_sqlite_errors(self.path):
            self.meta: IndexMeta = read_meta(conn, self.path)
            self.embedder = embedder or get_embedder(self.meta.model_id, dimension=self.meta.dimension)
            layout = vec0.read_layout(conn)
            matrix = self._read_matrix(conn, layout)
            lengths = read_lengths(conn)
        if len(layout) != self.meta.doc_count:
            raise CorruptIndexError(
                f"{self.path} holds {len(layout)} vectors for {self.meta.doc_count} documents", path=str(self.path)
            )
        self._rowids = layout.rowids
        self._positions = np.full(int(self._rowids.max()) + 1 if len(self._rowids) else 0, -1, dtype=np.int32)
        self._positions[self._rowids] = np.arange(len(self._rowids), dtype=np.int32)
        self._matrix = matrix
        self._matrix.setflags(write=False)
        # Read and parsed on the first filter: indexes that are never filtered should not pay for it.
        # Through a weak method: a bound one made reader -> columns -> reader a cycle, so a
        # closed reader and its matrix (~150 MB at 100k) lived until a gen-2 collection.
        texts = weakref.WeakMethod(self._metadata_texts)
        self._columns = JsonColumns(len(self._rowids), lambda: texts()())  # type: ignore[misc]
        self._bm25 = Bm25(self._positions, lengths)
        # Exact at once. The 8-bit search of a large index (its codes, onnxruntime's packed
        # copies: ~0.15 s at 100k) is made ready beside the first queries; the transposed
        # copy of a mid-sized one once COLUMNS_AFTER_QUERIES queries were answered.
        self._vectors: VectorSearch = ExactScan(self._matrix)
        self._search_ready = threading.Event()
        self._search_error: BaseException | None = None
        self._preparing = False
        self._queries_to_prepare = 0  # > 0: the faster search waits for that many more queries
        self._tails = like is not None and like._vectors.reads_tails
        _OPEN_READERS.add(self)
        quiet = self.embedder.needs_the_cores
        if search and searches_in_8_bits(matrix.nbytes, quiet=quiet):
            self._start_preparing(layout)
        elif search and scans_columns(matrix.nbytes, quiet=quiet):
            self._queries_to_prepare = choice.COLUMNS_AFTER_QUERIES
        else:
            self._search_ready.set()

    def _read_matrix(self, conn: apsw.Connection, layout: vec0.Layout) -> np.ndarray:
        """The vectors, read by two threads if there are many (vec0.read_matrix) through a
        second connection of the pool, which concurrent queries use later."""
        if not vec0.reads_in_two(4 * len(layout) * self.meta.dimension):
            return vec0.read_matrix(conn, layout, self.meta.dimension)
        with self._conn() as helper:
            return vec0.read_matrix(conn, layout, self.meta.dimension, helper=helper)

    def _start_preparing(self, layout: vec0.Layout | None) -> None:
        """Make the faster search on a thread of its own (once)."""
        with self._lock:
            if self._preparing or self._search_ready.is_set():
                return
            self._preparing = True
            self._queries_to_prepare = 0
        # Not a daemon (which a thread made by a daemon, such as the blocking client's
        # workers, would be by default): an interpreter that exited while this thread
        # was in onnxruntime aborted the process (1M documents: ~1.5 s of building).
        threading.Thread(target=self._prepare_search, args=(layout,), name="mosslite-search", daemon=False).start()

    def _prepare_search(self, layout: vec0.Layout | None) -> None:
        try:
            codes = None
            if layout is not None:  # (the transposed copy needs no codes)
                with self._conn() as conn, translating_sqlite_errors(self.path):
                    codebook = read_codebook(conn)
                    codes = read_codes(conn, codebook, layout, self._bulk_connection) if codebook else None
            self._check_open()  # (closed meanwhile: nothing more to make)
            search = vector_search(self._matrix, codes=codes, quiet=self.embedder.needs_the_cores, tails=self._tails)
            if not self._closed:
                self._vectors = search
        except ClosedError:
            pass
        except BaseException as exc:  # handed to wait_ready; queries keep the exact scan
            log.error("%s: the faster vector search could not be made ready: %s", self.path, exc)
            self._search_error = exc
        finally:
            release_free_memory()  # what building it left in this thread's malloc arena (~20 MB at 100k)
            self._search_ready.set()

    def _bulk_connection(self) -> apsw.Connection:
        """A connection of its own (the caller closes it): the codes read back, if need be."""
        return connect(self.path, immutable=True, mmap=False)

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Wait until queries use the fastest search for this index (a large index opens
        with an exact float32 scan and switches to its 8-bit codes ~0.15 s later, at
        100k documents; a mid-sized one to a transposed copy, which this call makes
        now if the reader has not answered enough queries yet: ~7 ms at 10k).
        Returns False on timeout; a damaged file raises its error."""
        if self._queries_to_prepare:
            self._start_preparing(None)
        if not self._search_ready.wait(timeout_s):
            return False
        if self._search_error is not None:
            raise self._search_error
        return True

    def warm_from(self, other: IndexReader) -> None:
        """Learn from ``other`` (the version this one replaces) before taking its place: the
        posting lists its queries asked for most recently are read and scored here, and
        one vector query runs, so the first queries after a swap do not pay for a cold
        reader (~10 ms, not ~3.5, for the first hybrid query at 100k documents)."""
        terms = other._bm25.hot_terms()
        if terms:
            with self._conn() as conn, translating_sqlite_errors(self.path):
                self._bm25.warm(conn, terms)
        if len(self._matrix):
            self.query(self._matrix[0], QueryOptions(top_k=1))

    # -- facts ---------------------------------------------------------------

    @property
    def index_name(self) -> str:
        return self.meta.index_name

    @property
    def version(self) -> int:
        return int(self.meta.version)

    @property
    def doc_count(self) -> int:
        return len(self._rowids)

    @property
    def matrix(self) -> np.ndarray:
        """The hydrated, normalised embeddings (read-only), row i = i-th doc by rowid."""
        return self._matrix

    # -- connections ---------------------------------------------------------

    def _conn(self) -> _Lease:
        """``with self._conn() as conn``: a pooled connection for the block."""
        return _Lease(self)

    def _borrow(self) -> apsw.Connection:
        """An idle connection of the pool, or a new one; ClosedError once closed."""
        with self._lock:
            self._check_open()
            if self._idle:
                return self._idle.pop()
        with translating_sqlite_errors(self.path):
            return connect(self.path, immutable=True, mmap=False, tracer=self._tracer)

    def _give_back(self, conn: apsw.Connection) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return
        conn.close()  # closed while this query ran: its last user closes it

    def close(self) -> None:
        """Queries after this raise ClosedError. Idle connections close now, those in
        use when their query ends: apsw refuses to close a connection another thread
        is inside (a delete_index racing a get_docs raised ThreadingViolationError).
        The 8-bit search (onnxruntime's sessions) is let go of now, not whenever the
        reader is collected: a session still alive when the interpreter exits aborted
        the process ("terminate called without an active exception")."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        self._vectors = ExactScan(self._matrix)  # (a query already running keeps its own reference)
        _OPEN_READERS.discard(self)

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
        # A text without a word ("?!") is not embedded: it has nothing to search by, and
        # its answer is no documents rather than arbitrary ones (keyword.has_words).
        vector = (
            self.embedder.query_vector(text, options.vector, kind="index", name=self.index_name)
            if options.alpha > 0.0 and (options.vector is not None or has_words(text))
            else None
        )
        positions, scores = rank(
            options.alpha, options.top_k, vector, self._vectors, lambda want: self._keyword(text, want, mask), mask
        )
        docs = self._result_docs(positions, scores)
        if self._queries_to_prepare:
            self._queries_to_prepare -= 1  # (threads racing here at worst start it a query late)
            if self._queries_to_prepare <= 0:
                self._start_preparing(None)
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
        return result_docs(self._rows(self._rowids[positions].tolist()), scores, self.index_name)

    def _rows(self, rowids: list[int]) -> list[DocRow]:
        """The rows of ``rowids``, in that order, fetched from the file."""
        if not rowids:
            return []
        with self._conn() as conn, translating_sqlite_errors(self.path):
            found = {r[0]: r[1:] for r in conn.execute(with_parameters(ROWS_BY_ROWID_SQL, len(rowids)), rowids)}
        try:
            return [found[rowid] for rowid in rowids]
        except KeyError as exc:
            raise CorruptIndexError(
                f"{self.path} has a vector for rowid {exc} but no document", path=str(self.path)
            ) from exc

    def _metadata_texts(self) -> list[str]:
        """Every document's metadata JSON, in row order (for filters)."""
        with self._conn() as conn, translating_sqlite_errors(self.path):
            rows = conn.execute(METADATA_SQL).fetchall()
        rowids = np.fromiter((rowid for rowid, _ in rows), dtype=np.int64, count=len(rows))
        known = rowids < len(self._positions)
        positions = np.where(known, self._positions[np.where(known, rowids, 0)], -1)
        if len(rows) != len(self._rowids) or (positions < 0).any():
            raise CorruptIndexError(f"{self.path}: docs and the vectors disagree on the documents", path=str(self.path))
        texts: list[str] = [""] * len(rows)
        for position, (_, metadata) in zip(positions.tolist(), rows):
            texts[position] = metadata
        return texts

    def _position(self, rowid: int) -> int:
        position = int(self._positions[rowid]) if rowid < len(self._positions) else -1
        if position < 0:
            raise CorruptIndexError(f"{self.path}: document rowid {rowid} has no vector", path=str(self.path))
        return position

    # -- documents -----------------------------------------------------------

    def get_docs(
        self, ids: Sequence[str] | None = None, filter: dict[str, Any] | None = None, *, include_embedding: bool = True
    ) -> list[DocumentInfo]:
        """Documents by id (in the order asked, missing ids skipped) and/or filter (in index order).
        ``ids`` is a list or tuple of non-empty strings, checked as the service checks them.

        ``include_embedding=False`` leaves ``embedding`` None: for callers that compare
        texts (a folder mirror) or show them, 10k vectors are ~90 MB of JSON over HTTP
        and ~5 s of encoding and decoding; without them, 6 MB."""
        docs, _ = self.page_docs(ids, filter, include_embedding=include_embedding, limit=None)
        return docs

    def page_docs(
        self,
        ids: Sequence[str] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        include_embedding: bool = True,
        after: int = 0,
        limit: int | None = DEFAULT_PAGE_DOCS,
        max_bytes: int = PAGE_BYTES,
    ) -> tuple[list[DocumentInfo], int | None]:
        """One page of ``get_docs``: (documents, ``after`` of the next page, or None at the end).

        A page ends after ``limit`` documents or once it holds about ``max_bytes`` of
        text, payload and vectors (never empty while documents remain), so a caller
        serving pages answers in bounded memory (issue #8). ``after`` counts asked ids
        already examined with ``ids``, else the last rowid returned: rowids only grow,
        so a page never repeats one.

        ``after`` is an int from 0 to 2**63 - 1 (a rowid is an SQLite int64) and
        ``limit`` None or an int of at least 1 (issue #8); else InvalidArgumentError."""
        self._check_open()
        _check_page_args(after, limit)
        compiled = compile_filter(filter)
        mask = self._filter_mask(compiled)
        wanted = None if ids is None else list(dict.fromkeys(check_ids(ids)))
        out: list[DocumentInfo] = []
        size = 0
        with self._conn() as conn, translating_sqlite_errors(self.path):
            end = len(wanted) if wanted is not None else conn.execute(LAST_ROWID_SQL).fetchone()[0]
            for cursor_after, (rowid, *row) in rows_from(conn, wanted, after):
                position = self._position(rowid)
                if mask is not None and not mask[position]:
                    continue
                out.append(stored_doc(tuple(row), self._matrix[position] if include_embedding else None))  # type: ignore[arg-type]
                size += doc_bytes(row, self.meta.dimension if include_embedding else 0)
                if (limit is not None and len(out) >= limit) or size >= max_bytes:
                    return out, (cursor_after if cursor_after < end else None)
        return out, None


class _Lease:
    """A connection of ``reader``'s pool, borrowed for a ``with`` block and given back
    after it. A class, not a ``@contextmanager`` generator: each query takes one or
    two (its rows, its keyword hits), and a generator cost ~3 us of them."""

    __slots__ = ("reader", "conn")

    def __init__(self, reader: IndexReader) -> None:
        self.reader = reader

    def __enter__(self) -> apsw.Connection:
        self.conn = self.reader._borrow()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.reader._give_back(self.conn)
