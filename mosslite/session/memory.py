"""The session's in-memory index: a mutable matrix over its store, queried as IndexReader is.

Invariants (issue #5):
- Every document of the store has exactly one live row (``position``) of the
  matrix, with its vector and metadata; a write updates it before it returns,
  so the session answers queries with its own writes at once. A deleted
  document's row stays, dead (``alive`` False), until the next ``load``.
- Queries match IndexReader's: the same filter language (``mosslite/filters.py``)
  as numpy masks, the same ranking (``index.ranking.rank``) over an exact scan
  (``index.vectors.ExactScan``), and keyword hits scored by the store's FTS5
  table (BM25, ``index.keyword.keyword_hits``); results are built by the
  reader's ``result_docs``. Only what differs is here: the matrix grows and
  its rows die.
- ``rowid_lut`` maps the store's rowids (small integers: FTS5 answers in them)
  to positions in one numpy step; a rowid written after the matrix was read
  maps to -1 and is skipped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..embeddings import Embedder
from ..errors import CorruptIndexError, InvalidArgumentError
from ..filters import Filter, compile_filter
from ..metadata_columns import DictColumns
from ..index.keyword import has_words, keyword_hits
from ..index.ranking import rank
from ..index.vectors.exact import ExactScan
from ..rows import result_docs
from ..types import QueryOptions, QueryResultDocumentInfo, SearchResult, options_or_default
from .store import SessionStore


class MemoryIndex:
    """Example::

        memory = MemoryIndex(store)
        memory.load(256, path)                       # every stored document
        memory.remember("n1", rowid, blob, {"k": "v"})
        result = memory.query("refund", QueryOptions(top_k=3), embedder, "call-123")
    """

    def __init__(self, store: SessionStore) -> None:
        self._store = store
        self.reset(0)

    @property
    def doc_count(self) -> int:
        return len(self._pos)

    def position(self, doc_id: str) -> int:
        """The matrix row of a stored document."""
        return self._pos[doc_id]

    def mask(self, compiled: Filter) -> np.ndarray:
        """Which rows match a filter (by position)."""
        return compiled.mask(self._columns())

    # -- keeping it in step with the store ---------------------------------------------

    def reset(self, dimension: int, capacity: int = 64) -> None:
        self._matrix = np.zeros((capacity, max(dimension, 1)), dtype=np.float32)
        self._alive = np.zeros(capacity, dtype=bool)
        self._rowids = np.zeros(capacity, dtype=np.int64)
        self._metadata: list[dict[str, str]] = []
        self._count = 0
        self._pos: dict[str, int] = {}
        # rowid -> position (-1: none), dense: session rowids are small integers, and
        # FTS5 answers in rowids, so the keyword path maps them in one numpy step.
        self._rowid_lut = np.full(capacity, -1, dtype=np.intp)
        self._column_cache: DictColumns | None = None

    def load(self, dimension: int, path: Path) -> None:
        """Read every stored document; ``path`` (the session file) names it in errors."""
        self._store.optimize_fts()  # at open and after a load: start from one FTS5 segment
        rows = self._store.hydrate_rows()
        self.reset(dimension, capacity=max(64, 2 * len(rows)))
        for rowid, doc_id, metadata, embedding in rows:
            if len(embedding) != 4 * dimension:
                raise CorruptIndexError(
                    f"session file {path} holds a {len(embedding) // 4}-dimensional vector for document "
                    f"{doc_id!r}, but the session's vectors have {dimension or 'no'} dimensions",
                    path=str(path),
                    hint=f"it mixes two indexes' vectors (a load before issue #8's fix): delete {path}, "
                    "then open the session again (its unpushed changes are lost)",
                )
            self.remember(doc_id, rowid, embedding, json.loads(metadata))

    def remember(self, doc_id: str, rowid: int, blob: bytes, metadata: Any) -> None:
        position = self._pos.get(doc_id)
        if position is None:
            if self._count == len(self._alive):
                self._grow()
            position = self._count
            self._count += 1
            self._metadata.append({})
            self._pos[doc_id] = position
        self._matrix[position] = np.frombuffer(blob, dtype="<f4")
        self._alive[position] = True
        self._rowids[position] = rowid
        if rowid >= len(self._rowid_lut):
            grown = np.full(max(2 * len(self._rowid_lut), rowid + 1), -1, dtype=np.intp)
            grown[: len(self._rowid_lut)] = self._rowid_lut
            self._rowid_lut = grown
        self._rowid_lut[rowid] = position
        self._metadata[position] = dict(metadata)
        self._column_cache = None

    def forget(self, doc_id: str) -> None:
        position = self._pos.pop(doc_id, None)
        if position is None:
            return
        self._alive[position] = False
        rowid = int(self._rowids[position])
        if rowid < len(self._rowid_lut) and self._rowid_lut[rowid] == position:
            self._rowid_lut[rowid] = -1
        self._metadata[position] = {}
        self._column_cache = None

    def _grow(self) -> None:
        capacity = 2 * len(self._alive)
        matrix = np.zeros((capacity, self._matrix.shape[1]), dtype=np.float32)
        matrix[: self._count] = self._matrix[: self._count]
        self._matrix = matrix
        self._alive = np.concatenate([self._alive, np.zeros(capacity - len(self._alive), dtype=bool)])
        self._rowids = np.concatenate([self._rowids, np.zeros(capacity - len(self._rowids), dtype=np.int64)])

    def _columns(self) -> DictColumns:
        # Rebuilt lazily after a write, for filtered queries only (as IndexReader does).
        if self._column_cache is None:
            self._column_cache = DictColumns(self._metadata)
        return self._column_cache

    # -- queries ----------------------------------------------------------------------

    def query(self, query: str, options: QueryOptions | None, embedder: Embedder | None, name: str) -> SearchResult:
        """Top-k documents for ``query``: as ``IndexReader.query`` (text only); ``embedder``
        None (a custom session with no documents yet) answers by keywords alone."""
        started = time.perf_counter()
        options = options_or_default(options, QueryOptions)
        if not isinstance(query, str):
            raise InvalidArgumentError(f"query must be text, got {type(query).__name__}")
        compiled = compile_filter(options.filter)
        count = self._count
        alive = self._alive[:count]
        mask: np.ndarray | None = None if alive.all() else alive.copy()  # None: every row may match
        if compiled is not None:
            matches = compiled.mask(self._columns())
            mask = matches if mask is None else mask & matches
        vector = (
            embedder.query_vector(query, options.vector, kind="session", name=name)
            if options.alpha > 0.0 and embedder is not None and (options.vector is not None or has_words(query))
            else None
        )
        positions, scores = rank(
            options.alpha,
            options.top_k,
            vector,
            ExactScan(self._matrix[:count]),
            lambda want: self._keyword(query, want, mask),
            mask,
        )
        return SearchResult(
            docs=self._result_docs(positions, scores, name),
            query=query,
            index_name=name,
            time_taken_ms=(time.perf_counter() - started) * 1000.0,
        )

    def _keyword(self, text: str, want: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        return keyword_hits(text, want, mask, self._store.keyword, self._positions_of)

    def _positions_of(self, rowids: np.ndarray) -> np.ndarray:
        """Matrix rows of session rowids; -1 for rows written after the matrix was read."""
        positions = self._rowid_lut[np.minimum(rowids, len(self._rowid_lut) - 1)]
        positions[rowids >= len(self._rowid_lut)] = -1
        return positions

    def _result_docs(self, positions: np.ndarray, scores: np.ndarray, name: str) -> list[QueryResultDocumentInfo]:
        rowids = [int(self._rowids[p]) for p in positions]
        if not rowids:
            return []
        return result_docs(self._store.rows_by_rowid(rowids), scores, name)
