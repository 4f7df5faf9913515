"""Keyword postings: for each term, the documents holding it and how often.

Why a second keyword structure beside FTS5: FTS5's ``bm25()`` scores every
document that matches any query word before ``ORDER BY rank`` can keep the
best, and an OR of a dozen words matches most of a large corpus (at 100k
docs, 5 ms p50 for a short query, 62 ms for 20 words). The reader instead reads the posting lists of the query's terms
and scores them in numpy. The lists are derived from ``docs.text`` with the
tokenizer ``docs_fts`` declares (FTS5's own code, called through apsw), and the
reader applies FTS5's BM25 formula, so scores equal ``bm25()``'s; the FTS5
table stays for MATCH in the shell and for other tools.

Stored as ``docs_postings(term, rowids, counts)`` (little-endian uint32 rowids,
ascending, and uint16 counts, saturated at 65535, where BM25 is flat anyway),
plus ``docs_postings_recent`` of the same shape for documents added since the
base lists were last written whole, and ``docs_lengths`` (tokens per document,
by rowid block), the document lengths BM25 normalises by.

A version adds the new documents' postings to the recent lists only, and
leaves removed documents' postings where they are: rowids are never reused
(schemas/index.sql), and the reader skips rowids that are no document any
more. So a small change rewrites a small table (issue #7: page patches), and
``fold`` writes the base lists whole again once the recent or the dead
postings have grown (builder.py decides when).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import count, groupby, repeat

import apsw
import numpy as np

from .._db import with_parameters
from ..errors import CorruptIndexError
from .format import WRITE_META_SQL

#: Must match ``tokenize`` of docs_fts in schemas/index.sql (a test checks that
#: postings and FTS5 agree): porter stemming over unicode61 words.
TOKENIZER = "porter"
TOKENIZER_ARGS = ["unicode61", "remove_diacritics", "2"]

ROWID_DTYPE = np.dtype("<u4")
COUNT_DTYPE = np.dtype("<u2")
MAX_ROWID = np.iinfo(ROWID_DTYPE).max
MAX_COUNT = np.iinfo(COUNT_DTYPE).max
#: Well under SQLite's default limit of 32766 bound parameters per statement.
TERMS_PER_STATEMENT = 500

BASE_TABLE = "docs_postings"
RECENT_TABLE = "docs_postings_recent"
#: Rowids per docs_lengths block (its blob holds a uint32 for each).
LENGTHS_BLOCK = 1024
#: Rewrite the base posting lists whole once the recent lists hold this share of
#: the base's postings, or this share of the documents was removed since.
FOLD_SHARE = 1 / 16
#: Documents tokenized per pass (bounds the texts held at once).
TOKENIZE_ROWS = 8192
#: meta keys of the lists' bookkeeping.
STALE_KEY = "postings_stale_docs"
BASE_POSTINGS_KEY = "postings_base"

#: A term's rows from both tables, base first: its list is their concatenation (the
#: recent rowids are all larger). ``{parameters}`` is the terms, given twice.
READ_TERMS_SQL = f"""
SELECT term, 0 AS part, rowids, counts
FROM {BASE_TABLE}
WHERE term IN ({{parameters}})
UNION ALL
SELECT term, 1 AS part, rowids, counts
FROM {RECENT_TABLE}
WHERE term IN ({{parameters}})
ORDER BY term, part
"""

TERM_SQL = """
SELECT rowids, counts
FROM {table}
WHERE term = :term
"""

WRITE_TERM_SQL = """
INSERT INTO {table} (term, rowids, counts)
VALUES (:term, :rowids, :counts)
ON CONFLICT (term) DO UPDATE SET
    rowids = excluded.rowids,
    counts = excluded.counts
"""

ALL_TERMS_SQL = f"""
SELECT term, 0 AS part, rowids, counts
FROM {BASE_TABLE}
UNION ALL
SELECT term, 1 AS part, rowids, counts
FROM {RECENT_TABLE}
ORDER BY term, part
"""

CLEAR_TABLE_SQL = """
DELETE FROM {table}
"""

RECENT_POSTINGS_SQL = f"""
SELECT coalesce(sum(length(rowids)), 0) / 4
FROM {RECENT_TABLE}
"""

NEW_TEXTS_SQL = """
SELECT rowid, text
FROM docs
WHERE rowid > :after
ORDER BY rowid
LIMIT :limit
"""
DOC_ROWIDS_SQL = """
SELECT rowid
FROM docs
"""
READ_BOOKKEEPING_SQL = """
SELECT key, value
FROM meta
WHERE key IN ('postings_stale_docs', 'postings_base')
"""
LENGTH_BLOCKS_SQL = """
SELECT block, tokens
FROM docs_lengths
ORDER BY block
"""

LENGTH_BLOCK_SQL = """
SELECT tokens
FROM docs_lengths
WHERE block = :block
"""

WRITE_LENGTH_BLOCK_SQL = """
INSERT OR REPLACE INTO docs_lengths (block, tokens)
VALUES (:block, :tokens)
"""


def tokenizer(conn: apsw.Connection) -> apsw.FTS5Tokenizer:
    return conn.fts5_tokenizer(TOKENIZER, TOKENIZER_ARGS)


def tokens(tok: apsw.FTS5Tokenizer, text: str, *, query: bool = False) -> list[str]:
    """The terms FTS5 would index for ``text`` (or look up, for a query), in order."""
    flags = apsw.FTS5_TOKENIZE_QUERY if query else apsw.FTS5_TOKENIZE_DOCUMENT
    return tok(text.encode("utf-8"), flags, None, include_offsets=False, include_colocated=False)


def read_terms(conn: apsw.Connection, terms: Sequence[str]) -> Iterator[tuple[str, bytes, bytes]]:
    """(term, rowids, counts) of those ``terms`` that occur, ``TERMS_PER_STATEMENT`` at a
    time (a pasted document as a query must not exceed SQLite's parameter limit),
    one row per table that holds the term, base first. Sorted ``terms`` come back
    in their order (SQLite's BINARY order of UTF-8 is Python's order of str)."""
    for start in range(0, len(terms), TERMS_PER_STATEMENT):
        batch = terms[start : start + TERMS_PER_STATEMENT]
        for term, _, rowids, counts in conn.execute(with_parameters(READ_TERMS_SQL, len(batch)), [*batch, *batch]):
            yield term, rowids, counts


def decode(rowids: bytes, counts: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One term's (rowids, counts), checked to be whole, paired and not empty: scoring
    trusts that (the builder deletes a term whose list empties)."""
    if not isinstance(rowids, bytes) or not isinstance(counts, bytes):
        raise CorruptIndexError("docs_postings holds a posting list that is not a pair of blobs")
    n = len(rowids) // ROWID_DTYPE.itemsize
    if not n or len(rowids) != n * ROWID_DTYPE.itemsize or len(counts) != n * COUNT_DTYPE.itemsize:
        raise CorruptIndexError(
            f"docs_postings holds a damaged posting list ({len(rowids)} bytes of rowids, {len(counts)} of counts)"
        )
    return np.frombuffer(rowids, dtype=ROWID_DTYPE), np.frombuffer(counts, dtype=COUNT_DTYPE)


#: Per term, the postings of documents being added: (rowids uint32, counts uint16).
Gained = dict[str, tuple[np.ndarray, np.ndarray]]


class Gatherer:
    """Collects the postings of documents being added, in passes of (rowid, text),
    rowids ascending across passes. Each token costs a dict lookup and two array
    appends, all in C (``map``): grouping per term and per document happens once,
    at the end, in numpy (at 100k documents ~4x faster than a Counter per document)."""

    def __init__(self, conn: apsw.Connection) -> None:
        self._tokenizer = tokenizer(conn)
        self._vocabulary: dict[str, int] = {}  # term -> id (ids are unique, not dense)
        self._next_id = count()
        self._term_ids = array("I")
        self._rowids = array("I")

    def add(self, docs: Iterable[tuple[int, str]]) -> dict[int, int]:
        """Tokenize ``docs``; returns each one's length in tokens."""
        lengths: dict[int, int] = {}
        for rowid, text in docs:
            if rowid > MAX_ROWID:
                raise OverflowError(f"rowid {rowid} does not fit the postings' uint32")
            words = tokens(self._tokenizer, text)
            lengths[rowid] = len(words)
            self._term_ids.extend(map(self._vocabulary.setdefault, words, self._next_id))
            self._rowids.extend(repeat(rowid, len(words)))
        return lengths

    def postings(self) -> Gained:
        if not self._term_ids:
            return {}
        keys = np.frombuffer(self._term_ids, dtype=np.uint32).astype(np.uint64) << np.uint64(32)
        keys |= np.frombuffer(self._rowids, dtype=np.uint32)
        keys, counts = np.unique(keys, return_counts=True)  # by term id, then rowid
        term_ids = (keys >> np.uint64(32)).astype(np.uint32)
        rowids = (keys & np.uint64(0xFFFFFFFF)).astype(ROWID_DTYPE)
        counts = np.minimum(counts, MAX_COUNT).astype(COUNT_DTYPE)
        starts = np.flatnonzero(np.concatenate(([True], term_ids[1:] != term_ids[:-1])))
        ends = np.append(starts[1:], len(keys))
        terms = {term_id: term for term, term_id in self._vocabulary.items()}
        return {terms[int(term_ids[a])]: (rowids[a:b], counts[a:b]) for a, b in zip(starts.tolist(), ends.tolist())}


def add_postings(conn: apsw.Connection, gained: Gained, *, recent: bool) -> int:
    """Append ``gained`` (rowids above every stored one) to the base lists or to the
    recent ones; returns how many postings were added. Runs inside the builder's
    transaction, so the postings commit with the rows they describe."""
    table = RECENT_TABLE if recent else BASE_TABLE
    read, write = TERM_SQL.format(table=table), WRITE_TERM_SQL.format(table=table)
    added = 0
    for term in sorted(gained):
        rowids, counts = gained[term]
        stored = conn.execute(read, {"term": term}).fetchone()
        new_rowids, new_counts = rowids.tobytes(), counts.tobytes()
        if stored is not None:
            new_rowids, new_counts = stored[0] + new_rowids, stored[1] + new_counts
        conn.execute(write, {"term": term, "rowids": new_rowids, "counts": new_counts})
        added += len(rowids)
    return added


def recent_postings(conn: apsw.Connection) -> int:
    return conn.execute(RECENT_POSTINGS_SQL).fetchone()[0]


def fold(conn: apsw.Connection, alive: np.ndarray) -> int:
    """Write the base lists whole again: base and recent joined, without the rowids
    that are no document any more (``alive``: a bool per rowid); the recent table is
    emptied. Returns the postings kept."""
    merged: list[dict[str, object]] = []
    for term, rows in groupby(conn.execute(ALL_TERMS_SQL).fetchall(), key=lambda row: row[0]):
        lists = [decode(rowids, counts) for _, _, rowids, counts in rows]
        rowids = np.concatenate([rowids for rowids, _ in lists])
        live = rowids < len(alive)
        live[live] = alive[rowids[live]]
        if live.any():
            counts = np.concatenate([counts for _, counts in lists])
            merged.append({"term": term, "rowids": rowids[live].tobytes(), "counts": counts[live].tobytes()})
    conn.execute(CLEAR_TABLE_SQL.format(table=BASE_TABLE))
    conn.execute(CLEAR_TABLE_SQL.format(table=RECENT_TABLE))
    conn.executemany(WRITE_TERM_SQL.format(table=BASE_TABLE), merged)
    return sum(len(row["rowids"]) for row in merged) // ROWID_DTYPE.itemsize  # type: ignore[arg-type]


def write_lengths(conn: apsw.Connection, lengths: dict[int, int]) -> None:
    """Store documents' lengths (rowid -> tokens) in their docs_lengths blocks."""
    by_block: dict[int, list[int]] = {}
    for rowid in lengths:
        by_block.setdefault(rowid // LENGTHS_BLOCK, []).append(rowid)
    for block, rowids in sorted(by_block.items()):
        stored = conn.execute(LENGTH_BLOCK_SQL, {"block": block}).fetchone()
        tokens = np.frombuffer(stored[0], dtype="<u4").copy() if stored else np.zeros(LENGTHS_BLOCK, dtype="<u4")
        for rowid in rowids:
            tokens[rowid % LENGTHS_BLOCK] = lengths[rowid]
        conn.execute(WRITE_LENGTH_BLOCK_SQL, {"block": block, "tokens": tokens.tobytes()})


def read_lengths(conn: apsw.Connection) -> np.ndarray:
    """Tokens per rowid (uint32; 0 past the last block and for rowids of no document)."""
    blocks = conn.execute(LENGTH_BLOCKS_SQL).fetchall()
    size = (blocks[-1][0] + 1) * LENGTHS_BLOCK if blocks else 0
    out = np.zeros(size, dtype="<u4")
    for block, tokens in blocks:
        if not isinstance(tokens, bytes) or len(tokens) != 4 * LENGTHS_BLOCK:
            raise CorruptIndexError(f"docs_lengths block {block} is damaged")
        out[block * LENGTHS_BLOCK : (block + 1) * LENGTHS_BLOCK] = np.frombuffer(tokens, dtype="<u4")
    return out


def update(conn: apsw.Connection, after: int, *, fresh: bool, removed: int, doc_count: int) -> None:
    """Postings and lengths of the documents added (rowids above ``after``); the base
    lists are written whole on a fresh build and when the recent or dead ones have
    grown past FOLD_SHARE (see the module docstring). Texts are read TOKENIZE_ROWS at a time; the
    postings are gathered whole and written once (a list rewritten per pass would
    leave its old pages free in the file)."""
    bookkeeping = {k: int(v) for k, v in conn.execute(READ_BOOKKEEPING_SQL)}
    stale = bookkeeping.get(STALE_KEY, 0) + removed
    base_postings = bookkeeping.get(BASE_POSTINGS_KEY, 0)
    gatherer = Gatherer(conn)
    last = after
    while rows := conn.execute(NEW_TEXTS_SQL, {"after": last, "limit": TOKENIZE_ROWS}).fetchall():
        last = rows[-1][0]
        write_lengths(conn, gatherer.add(rows))
    added = add_postings(conn, gatherer.postings(), recent=not fresh)
    if fresh:
        base_postings += added
    elif recent_postings(conn) > FOLD_SHARE * base_postings or stale > FOLD_SHARE * max(doc_count, 1):
        rowids = np.fromiter((r[0] for r in conn.execute(DOC_ROWIDS_SQL)), dtype=np.int64)
        alive = np.zeros(int(rowids.max()) + 1 if len(rowids) else 0, dtype=bool)
        alive[rowids] = True
        base_postings, stale = fold(conn, alive), 0
    conn.executemany(
        WRITE_META_SQL,
        [{"key": STALE_KEY, "value": str(stale)}, {"key": BASE_POSTINGS_KEY, "value": str(base_postings)}],
    )
