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
ascending, and uint16 counts, saturated at 65535, where BM25 is flat anyway)
and ``docs_tokens(rowid, tokens)``, the document lengths BM25 normalises by.
The builder rewrites only the terms of documents that changed.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence

import apsw
import numpy as np

from .._db import with_parameters
from ..errors import CorruptIndexError

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

READ_TERMS_SQL = """
SELECT term, rowids, counts
FROM docs_postings
WHERE term IN ({parameters})
ORDER BY term
"""

WRITE_TERM_SQL = """
INSERT INTO docs_postings (term, rowids, counts)
VALUES (:term, :rowids, :counts)
ON CONFLICT (term) DO UPDATE SET
    rowids = excluded.rowids,
    counts = excluded.counts
"""

DELETE_TERM_SQL = """
DELETE FROM docs_postings
WHERE term = :term
"""

WRITE_TOKENS_SQL = """
INSERT OR REPLACE INTO docs_tokens (rowid, tokens)
VALUES (:rowid, :tokens)
"""

DELETE_TOKENS_SQL = """
DELETE FROM docs_tokens
WHERE rowid = :rowid
"""


def tokenizer(conn: apsw.Connection) -> apsw.FTS5Tokenizer:
    return conn.fts5_tokenizer(TOKENIZER, TOKENIZER_ARGS)


def tokens(tok: apsw.FTS5Tokenizer, text: str, *, query: bool = False) -> list[str]:
    """The terms FTS5 would index for ``text`` (or look up, for a query), in order."""
    flags = apsw.FTS5_TOKENIZE_QUERY if query else apsw.FTS5_TOKENIZE_DOCUMENT
    return tok(text.encode("utf-8"), flags, None, include_offsets=False, include_colocated=False)


def read_terms(conn: apsw.Connection, terms: Sequence[str]) -> Iterator[tuple[str, bytes, bytes]]:
    """(term, rowids, counts) of those ``terms`` that occur, ``TERMS_PER_STATEMENT`` at a
    time: a pasted document as a query must not exceed SQLite's parameter limit.
    Sorted ``terms`` come back in their order (SQLite's BINARY order of UTF-8 is
    Python's order of str)."""
    for start in range(0, len(terms), TERMS_PER_STATEMENT):
        batch = terms[start : start + TERMS_PER_STATEMENT]
        yield from conn.execute(with_parameters(READ_TERMS_SQL, len(batch)), batch)


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


def update_postings(conn: apsw.Connection, removed: Mapping[int, str], added: Mapping[int, str]) -> None:
    """Take the documents ``removed`` (rowid -> old text) out of the postings and
    put ``added`` (rowid -> new text) in. Must run inside the builder's transaction,
    after docs changed, so the postings commit with the rows they describe."""
    tok = tokenizer(conn)
    dropped: dict[str, list[int]] = {}
    for rowid, text in removed.items():
        for term in set(tokens(tok, text)):
            dropped.setdefault(term, []).append(rowid)
        conn.execute(DELETE_TOKENS_SQL, {"rowid": rowid})

    # Compact arrays, not lists: a fresh build of 100k documents gathers ~10M postings.
    gained: dict[str, tuple[array, array]] = {}
    for rowid, text in added.items():
        if rowid > MAX_ROWID:
            raise OverflowError(f"rowid {rowid} does not fit the postings' uint32 (VACUUM the index to renumber)")
        words = tokens(tok, text)
        conn.execute(WRITE_TOKENS_SQL, {"rowid": rowid, "tokens": len(words)})
        for term, count in Counter(words).items():
            rowids, counts = gained.setdefault(term, (array("I"), array("H")))
            rowids.append(rowid)
            counts.append(min(count, MAX_COUNT))

    for term, (rowids, counts) in _merged(conn, dropped, gained):
        if len(rowids):
            conn.execute(
                WRITE_TERM_SQL, {"term": term, "rowids": rowids.tobytes(), "counts": counts.tobytes()}
            )
        else:
            conn.execute(DELETE_TERM_SQL, {"term": term})


def _merged(
    conn: apsw.Connection, dropped: Mapping[str, list[int]], gained: Mapping[str, tuple[array, array]]
) -> Iterable[tuple[str, tuple[np.ndarray, np.ndarray]]]:
    """(term, new posting list) for every term whose list changes."""
    touched = sorted(set(dropped) | set(gained))
    stored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for term, rowids, counts in read_terms(conn, touched):
        stored[term] = decode(rowids, counts)
    empty = (np.empty(0, ROWID_DTYPE), np.empty(0, COUNT_DTYPE))
    for term in touched:
        rowids, counts = stored.get(term, empty)
        if term in dropped:
            keep = ~np.isin(rowids, np.asarray(dropped[term], dtype=ROWID_DTYPE))
            rowids, counts = rowids[keep], counts[keep]
        if term in gained:
            new_rowids, new_counts = gained[term]
            rowids = np.concatenate([rowids, np.asarray(new_rowids, dtype=ROWID_DTYPE)])
            counts = np.concatenate([counts, np.asarray(new_counts, dtype=COUNT_DTYPE)])
            order = np.argsort(rowids, kind="stable")
            rowids, counts = rowids[order], counts[order]
        yield term, (rowids, counts)
