"""Keyword search: the words a query asks for, and BM25 over them two ways.

- ``Bm25``: the reader's path. Scores FTS5's ``bm25()`` formula in numpy over
  the posting lists of the query's terms only (``docs_postings``, see
  postings.py), so its cost follows the query's terms, not the number of
  matching documents, and a metadata filter is exact (a mask on the scores).
- ``keyword_hits``: FTS5 ``MATCH ... ORDER BY rank`` on any database with a
  ``docs_fts`` table. Sessions use it: their small local databases change on
  every write, where keeping postings in step would cost more than it saves.

Both treat free text the same way: distinct words, minus a few stopwords,
OR-ed together; user text is never parsed as FTS5 query syntax.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

import apsw
import numpy as np

from ..errors import CorruptIndexError
from .fusion import top_positions
from .postings import decode, read_terms, tokenizer, tokens

#: FTS5's bm25() defaults.
K1 = 1.2
B = 0.75
#: Postings scored per pass (bounds a long query's memory to ~8 MB beyond the scores).
POSTINGS_PER_PASS = 1 << 18

KEYWORD_SQL = """
SELECT rowid, -bm25(docs_fts) AS score
FROM docs_fts
WHERE docs_fts MATCH :match
ORDER BY rank
LIMIT :limit
"""

DOC_TOKENS_SQL = """
SELECT rowid, tokens
FROM docs_tokens
ORDER BY rowid
"""

_WORD_RE = re.compile(r"\w+", re.UNICODE)
# Words so common that OR-ing them in only adds noise and cost to BM25.
STOPWORDS = frozenset(
    "a an and are as at be but by can do does for from has have how i if in is it its me my no not of on or "
    "our so than that the their them then there these they this to was we what when where which who why "
    "will with you your".split()
)

Hits = tuple[np.ndarray, np.ndarray]


def query_words(text: str) -> list[str]:
    """The distinct lower-cased words of ``text``, stopwords dropped unless nothing else is left."""
    words = list(dict.fromkeys(w.lower() for w in _WORD_RE.findall(text)))
    return [w for w in words if w not in STOPWORDS] or words


def _no_hits() -> Hits:
    return np.empty(0, dtype=np.intp), np.empty(0)


# --------------------------------------------------------------------------- postings path


class Bm25:
    """BM25 over an index file's postings, for the documents the reader hydrated.

    Holds only per-document numbers (a rowid -> position table and each
    document's length norm); posting lists are read per query, by term, from
    the file the reader has mapped into memory.
    """

    def __init__(self, conn: apsw.Connection, rowids: np.ndarray) -> None:
        rows = conn.execute(DOC_TOKENS_SQL).fetchall()
        lengths = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
        if not np.array_equal(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)), rowids):
            raise CorruptIndexError(f"docs_tokens has {len(rows)} rows that do not match the {len(rowids)} documents")
        self.doc_count = len(rowids)
        self._position = np.full(int(rowids[-1]) + 1 if len(rowids) else 1, -1, dtype=np.int64)
        self._position[rowids] = np.arange(len(rowids))
        average = lengths.mean() if len(lengths) else 1.0
        # The per-document half of BM25's denominator, computed once: k1 * (1 - b + b * len / avg).
        self._norm = (K1 * (1.0 - B + B * lengths / (average or 1.0))).astype(np.float32)

    def hits(self, conn: apsw.Connection, text: str, want: int, mask: np.ndarray | None) -> Hits:
        """The ``want`` best (positions, scores > 0), as ``-bm25(docs_fts)`` would score them."""
        words = query_words(text)
        terms = list(dict.fromkeys(tokens(tokenizer(conn), " ".join(words), query=True))) if words else []
        if not terms or want <= 0:
            return _no_hits()
        scores: np.ndarray | None = None
        for lists in _batches(decode(rowids, counts) for _, rowids, counts in read_terms(conn, terms)):
            part = self._scores(lists)
            scores = part if scores is None else np.add(scores, part, out=scores)
        if scores is None:
            return _no_hits()
        # Through a bool array: numpy's nonzero over float32 took ~0.3 ms at 100k rows, over bools ~0.04.
        positions = np.flatnonzero(scores > 0)
        if mask is not None:
            positions = positions[mask[positions]]
        values = scores[positions]
        best = top_positions(values, None, want)
        return positions[best], values[best]

    def _scores(self, lists: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Every document's BM25 over these terms' posting lists (0 where none holds them).
        All terms in one bincount, not a scatter-add per term: ~15% faster for a short
        query at 100k documents, ~20% for a 20-word one (fewer numpy calls)."""
        found = np.array([len(rowids) for rowids, _ in lists])
        # FTS5's idf (clamped at 1e-6 as FTS5 does) times k1 + 1: one weight per term.
        weight = np.maximum(np.log((self.doc_count - found + 0.5) / (found + 0.5)), 1e-6) * (K1 + 1.0)
        try:
            positions = self._position[np.concatenate([rowids for rowids, _ in lists])]
            tf = np.concatenate([counts for _, counts in lists]).astype(np.float32)
            contributions = np.repeat(weight.astype(np.float32), found) * tf / (tf + self._norm[positions])
            return np.bincount(positions, weights=contributions, minlength=self.doc_count)
        except (IndexError, ValueError) as exc:  # a rowid past the table, or -1: not one of the docs
            raise CorruptIndexError(f"docs_postings names documents that docs does not hold: {exc}") from exc


def _batches(lists: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[list[tuple[np.ndarray, np.ndarray]]]:
    """Posting lists in groups of about POSTINGS_PER_PASS postings: a pasted document as
    a query touches millions, and each posting costs ~31 bytes while it is scored."""
    batch: list[tuple[np.ndarray, np.ndarray]] = []
    size = 0
    for rowids, counts in lists:
        batch.append((rowids, counts))
        size += len(rowids)
        if size >= POSTINGS_PER_PASS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


# --------------------------------------------------------------------------- FTS5 path


def match_expression(text: str) -> str | None:
    """FTS5 MATCH for free text: the OR of its query words, each quoted so
    user input can never be parsed as FTS5 syntax. None if nothing is left."""
    words = query_words(text)
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def keyword_hits(
    text: str,
    want: int,
    mask: np.ndarray | None,
    fetch: Callable[[str, int], list[tuple[int, float]]],
    positions_of: Callable[[np.ndarray], np.ndarray],
) -> Hits:
    """BM25 hits as (positions, scores >= 0), best first, restricted to ``mask``.

    ``fetch(match, limit)`` runs KEYWORD_SQL on the caller's database;
    ``positions_of`` maps rowids to matrix rows (-1: unknown). A filter may reject
    most hits, so the net starts as wide as the filter's selectivity suggests and
    widens until enough pass or none remain.
    """
    match = match_expression(text)
    if match is None:
        return _no_hits()
    limit = want
    if mask is not None:
        allowed = max(int(np.count_nonzero(mask)), 1)
        limit = min(max(want, int(want * len(mask) / allowed * 1.5)), max(len(mask), want))
    while True:
        rows = fetch(match, limit)
        if not rows:
            return _no_hits()
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        scores = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
        positions = positions_of(rowids)
        known = positions >= 0
        positions, scores = positions[known], scores[known]
        if mask is not None:
            keep = mask[positions]
            positions, scores = positions[keep], scores[keep]
        if mask is None or len(positions) >= want or len(rows) < limit:
            return positions[:want], scores[:want]
        limit *= 8
