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

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from itertools import groupby

import apsw
import numpy as np

from ..errors import CorruptIndexError
from .topk import top_positions
from .postings import decode, read_terms, tokenizer, tokens

#: FTS5's bm25() defaults.
K1 = 1.2
B = 0.75
#: Postings scored per pass (bounds a long query's memory to ~8 MB beyond the scores).
POSTINGS_PER_PASS = 1 << 18
#: Below doc_count / SPARSE_SHARE postings, scores are summed per posting instead
#: of in an array as long as the index (measured at 100k documents: 4k postings
#: 56 against 77 us, 10k 130 against 195, 25k 498 against 155).
SPARSE_SHARE = 8
#: Scored posting lists a reader keeps, in postings (12 bytes each: 24 MB). Queries
#: share words (their frequencies are Zipfian), and a list read from the file is
#: fetched, decoded and gathered per document before it is scored: at 100k
#: documents ~0.17 ms of a short query's ~0.38 ms, ~0.37 of ~0.7 after other work.
CACHED_POSTINGS = 1 << 21
#: Terms a reader swapped in reads ahead from the one it replaces (IndexReader.warm_from):
#: the hot ones of a Zipfian vocabulary, in a few ms, not a cache's worth of rare words.
WARM_TERMS = 1024

KEYWORD_SQL = """
SELECT rowid, -bm25(docs_fts) AS score
FROM docs_fts
WHERE docs_fts MATCH :match
ORDER BY rank
LIMIT :limit
"""

_WORD_RE = re.compile(r"\w+", re.UNICODE)
# Words so common that OR-ing them in only adds noise and cost to BM25.
STOPWORDS = frozenset(
    "a an and are as at be but by can do does for from has have how i if in is it its me my no not of on or "
    "our so than that the their them then there these they this to was we what when where which who why "
    "will with you your".split()
)

Hits = tuple[np.ndarray, np.ndarray]
#: One term's postings as the scoring needs them: (document positions, BM25 term scores).
Scored = tuple[np.ndarray, np.ndarray]
DOC_FACTS = np.dtype([("position", "<i4"), ("norm", "<f4")])


def query_words(text: str) -> list[str]:
    """The distinct lower-cased words of ``text``, stopwords dropped unless nothing else is left."""
    words = list(dict.fromkeys(w.lower() for w in _WORD_RE.findall(text)))
    return [w for w in words if w not in STOPWORDS] or words


def has_words(text: str) -> bool:
    """Whether ``text`` has a word (a letter or a digit) to search by. A query of
    punctuation alone ("?!") matches no document's words, and its embedding is a
    model's reading of punctuation, whose nearest documents are arbitrary: such a
    query has nothing to search by (issue #12)."""
    return _WORD_RE.search(text) is not None


def _no_hits() -> Hits:
    return np.empty(0, dtype=np.intp), np.empty(0)


# --------------------------------------------------------------------------- postings path


class Bm25:
    """BM25 over an index file's postings, for the documents the reader holds.

    Holds per-document numbers (by rowid: position and length norm) and the
    scored posting lists of recently asked terms (up to CACHED_POSTINGS); other
    lists are read per query, by term, from the file. The file never changes
    under a reader, so nothing cached goes stale. Postings of rowids that are no
    document any more (removed since the lists were written whole, postings.py)
    are skipped, and a term counts only the documents that hold it now, as
    FTS5's own document frequencies do.
    """

    def __init__(self, positions: np.ndarray, lengths: np.ndarray) -> None:
        """``positions``: each rowid's row in the reader (-1: no document); ``lengths``:
        each rowid's tokens (postings.read_lengths)."""
        alive = np.flatnonzero(positions >= 0)
        if len(alive) and alive[-1] >= len(lengths):
            raise CorruptIndexError(f"docs_lengths has no length for document rowid {int(alive[-1])}")
        self.doc_count = len(alive)
        doc_lengths = lengths[alive].astype(np.float64)
        average = doc_lengths.mean() if len(alive) else 1.0
        # By rowid, what a posting needs of its document: its position in the reader, and
        # the per-document half of BM25's denominator, k1 * (1 - b + b * len / avg). Side
        # by side, so a posting costs one cache line, not two: a short query's ~4k
        # postings at 100k documents gathered in ~80 us after other work, not ~110.
        self._by_rowid = np.zeros(len(positions), dtype=DOC_FACTS)
        self._by_rowid["position"] = positions
        self._by_rowid["norm"][alive] = K1 * (1.0 - B + B * doc_lengths / (average or 1.0))
        self._cache: OrderedDict[str, Scored | None] = OrderedDict()  # least recently used first
        self._cached = 0  # postings in the cache
        self._lock = threading.Lock()

    def hits(self, conn: apsw.Connection, text: str, want: int, mask: np.ndarray | None) -> Hits:
        """The ``want`` best (positions, scores > 0), as ``-bm25(docs_fts)`` would score them."""
        words = query_words(text)
        terms = sorted(set(tokens(tokenizer(conn), " ".join(words), query=True))) if words else []
        if not terms or want <= 0:
            return _no_hits()
        batches = _batches(self._scored_lists(conn, terms))
        first = next(batches, None)
        if first is None:
            return _no_hits()
        postings = sum(len(positions) for positions, _ in first)
        if postings < POSTINGS_PER_PASS and postings * SPARSE_SHARE < self.doc_count:
            positions, values = _summed(*_joined(first))  # the one batch
        else:
            scores = self._dense(first)
            for lists in batches:
                np.add(scores, self._dense(lists), out=scores)
            # Through a bool array: numpy's nonzero over float32 took ~0.3 ms at 100k rows, over bools ~0.04.
            positions = np.flatnonzero(scores > 0)
            values = scores[positions]
        if mask is not None:
            keep = mask[positions]
            positions, values = positions[keep], values[keep]
        best = top_positions(values, None, want)
        return positions[best], values[best]

    def hot_terms(self) -> list[str]:
        """The (up to WARM_TERMS) most recently asked terms whose postings are cached,
        least recently asked first."""
        with self._lock:
            return list(self._cache)[-WARM_TERMS:]

    def warm(self, conn: apsw.Connection, terms: list[str]) -> None:
        """Read, score and cache the postings of ``terms`` (least recently asked first)
        ahead of the queries that will ask for them, in that recency order."""
        for _ in self._scored_lists(conn, sorted(set(terms))):
            pass
        with self._lock:
            for term in terms:
                if term in self._cache:
                    self._cache.move_to_end(term)

    def _scored_lists(self, conn: apsw.Connection, terms: list[str]) -> Iterator[Scored]:
        """The scored postings of those sorted ``terms`` that some document holds, in that
        order (so a document's terms add up in one order, whatever was cached): from the
        cache, or read from the file, scored and cached. Read lazily, so a pasted
        document as a query holds one batch of postings at a time, not all of them."""
        with self._lock:
            cached = {term: self._cache[term] for term in terms if term in self._cache}
            for term in cached:
                self._cache.move_to_end(term)
        lists = _joined_rows(read_terms(conn, [term for term in terms if term not in cached]))  # none: no statement
        row = next(lists, None)
        for term in terms:
            if term in cached:
                scored = cached[term]
            elif row is not None and row[0] == term:
                scored = self._score(row[1], row[2])
                self._remember(term, scored)
                row = next(lists, None)
            else:
                continue  # no document holds it
            if scored is not None:
                yield scored

    def _score(self, rowids: np.ndarray, counts: np.ndarray) -> Scored | None:
        """One term's (document positions, BM25 term scores); None if no document holds
        it any more."""
        if rowids[-1] >= len(self._by_rowid):  # rowids of documents removed after the newest one left
            known = int(np.searchsorted(rowids, len(self._by_rowid)))  # (ascending: decode's lists are)
            rowids, counts = rowids[:known], counts[:known]
        facts = self._by_rowid[rowids]
        alive = facts["position"] >= 0
        if not alive.all():
            facts, counts = facts[alive], counts[alive]
        found = len(facts)
        if not found:
            return None
        # FTS5's idf (clamped at 1e-6 as FTS5 does) times k1 + 1.
        weight = np.float32(max(math.log((self.doc_count - found + 0.5) / (found + 0.5)), 1e-6) * (K1 + 1.0))
        tf = counts.astype(np.float32)
        # positions: a view, so the cache holds the norms beside it (8 + 4 bytes a posting)
        return facts["position"], weight * tf / (tf + facts["norm"])

    def _remember(self, term: str, scored: Scored | None) -> None:
        size = len(scored[0]) if scored is not None else 0
        if size > CACHED_POSTINGS // 4:  # one term must not flush the others
            return
        with self._lock:
            if term in self._cache:  # another query scored it meanwhile
                return
            self._cache[term] = scored
            self._cached += size
            while self._cached > CACHED_POSTINGS:
                evicted = self._cache.popitem(last=False)[1]
                self._cached -= len(evicted[0]) if evicted is not None else 0

    def _dense(self, lists: list[Scored]) -> np.ndarray:
        """Every document's BM25 over these terms (0 where none holds them). All terms in
        one bincount, not a scatter-add per term: ~15% faster for a short query at 100k
        documents, ~20% for a 20-word one (fewer numpy calls)."""
        return np.bincount(*_joined(lists), minlength=self.doc_count)


def _joined(lists: list[Scored]) -> tuple[np.ndarray, np.ndarray]:
    """(positions, term scores) of every posting in ``lists``, one array each."""
    return np.concatenate([positions for positions, _ in lists]), np.concatenate([scores for _, scores in lists])


def _summed(positions: np.ndarray, contributions: np.ndarray) -> Hits:
    """(documents, BM25) by sorting the postings and summing each document's run, in
    the order bincount adds them (equal scores, to rounding). Touches only the
    postings, not an array as long as the index: a short query at 100k documents
    has ~4k postings, and hybrid queries there took ~0.09 ms less."""
    order = np.argsort(positions, kind="stable")
    positions = positions[order]
    starts = np.flatnonzero(np.concatenate(([True], positions[1:] != positions[:-1])))
    return positions[starts], np.add.reduceat(contributions[order].astype(np.float64), starts)


def _joined_rows(rows: Iterator[tuple[str, bytes, bytes]]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Each term's whole list, (term, rowids, counts), from read_terms' rows (a term's
    base row, then its recent row: rowids stay ascending when joined)."""
    for term, parts in groupby(rows, key=lambda row: row[0]):
        lists = [decode(rowids, counts) for _, rowids, counts in parts]
        if len(lists) == 1:
            yield term, *lists[0]
        else:
            yield term, np.concatenate([r for r, _ in lists]), np.concatenate([c for _, c in lists])


def _batches(lists: Iterable[Scored]) -> Iterator[list[Scored]]:
    """Scored posting lists in groups of about POSTINGS_PER_PASS postings: a pasted
    document as a query touches millions, and each posting costs ~31 bytes while it is scored."""
    batch: list[Scored] = []
    size = 0
    for scored in lists:
        batch.append(scored)
        size += len(scored[0])
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
