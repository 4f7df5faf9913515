"""The docs row (rows.py): a document stored and read back through SQLite is the same
document, and the rows of an index file come back as documents and ranked results."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import apsw
import numpy as np
import pytest

from mosslite import DocumentInfo, QueryResultDocumentInfo, Version, build_version, get_embedder
from mosslite._db import connect
from mosslite.rows import metadata_json, result_docs, rows_from, same_row, stored_doc, vector_blob, vector_blobs

CREATE_SQL = """
CREATE TABLE docs (id TEXT PRIMARY KEY, text TEXT NOT NULL, metadata TEXT NOT NULL, payload TEXT, embedding BLOB)
"""

# float32 holds these exactly, so a document read back compares equal to the one written.
DOCS = [
    DocumentInfo(id="a", text="héllo", metadata={"b": "2", "a": "ü"}, payload="p", embedding=[0.5, -0.25, 0.75]),
    DocumentInfo(id="b", text="second", embedding=[0.0, 1.0, 0.0]),
    DocumentInfo(id="c", text="third", metadata={"k": "v"}, embedding=[-0.5, 0.5, 0.5]),
]


def row_of(doc: DocumentInfo) -> tuple:
    return (doc.text, metadata_json(doc.metadata), doc.payload, vector_blob(np.array(doc.embedding)))


def as_stored(doc: DocumentInfo, *, embedding: bool = True) -> DocumentInfo:
    """``doc`` as it reads back: no metadata is stored as ``{}``."""
    return dataclasses.replace(doc, metadata=doc.metadata or {}, embedding=doc.embedding if embedding else None)


def test_a_row_round_trips_through_sqlite() -> None:
    conn = apsw.Connection(":memory:")
    conn.execute(CREATE_SQL)
    for doc in DOCS:
        conn.execute("INSERT INTO docs VALUES (?, ?, ?, ?, ?)", (doc.id, *row_of(doc)))
    for doc in DOCS:
        back = conn.execute("SELECT text, metadata, payload, embedding FROM docs WHERE id = ?", (doc.id,)).fetchone()
        assert back == row_of(doc) and same_row(back, row_of(doc))
        text, metadata, payload, blob = back
        assert stored_doc((doc.id, text, metadata, payload), np.frombuffer(blob, dtype="<f4")) == as_stored(doc)
    assert conn.execute("SELECT metadata FROM docs WHERE id = 'a'").fetchone()[0] == '{"a": "ü", "b": "2"}'
    assert conn.execute("SELECT metadata FROM docs WHERE id = 'b'").fetchone()[0] == "{}"


def test_same_row_is_the_same_content() -> None:
    row = row_of(DOCS[0])
    reordered = (row[0], '{"b": "2", "a": "ü"}', row[2], row[3])  # the same JSON object
    nudged = (*row[:3], (np.frombuffer(row[3], dtype="<f4") + np.float32(1e-7)).astype("<f4").tobytes())
    assert same_row(row, reordered) and same_row(row, nudged)  # within float32 rounding
    assert not same_row(row, (*row[:2], None, row[3]))  # payload
    assert not same_row(row, ("other", *row[1:]))
    assert not same_row(row, (*row[:3], vector_blob(np.array([0.5, -0.25]))))  # another length
    assert same_row(None, None) and not same_row(row, None) and not same_row(None, row)


def test_vector_blobs_are_unit_float32_rows() -> None:
    vectors = np.array([[3.0, 4.0], [0.0, 0.0], [1e30, -1e30]])
    blobs = [np.frombuffer(b, dtype="<f4") for b in vector_blobs(vectors)]
    np.testing.assert_allclose(blobs[0], [0.6, 0.8], rtol=1e-6)
    assert blobs[1].tolist() == [0.0, 0.0]  # a zero row stays zero
    np.testing.assert_allclose(blobs[2], [2**-0.5, -(2**-0.5)], rtol=1e-6)  # squared past float32: still normalised


def test_a_stored_vector_stored_again_keeps_its_bytes() -> None:
    """Issue #12: an exported index taken back reproduces its vectors exactly, so storing
    a unit vector must not divide it by its rounded length once more."""
    rng = np.random.default_rng(7)
    first = vector_blobs(rng.normal(size=(64, 384)))
    again = vector_blobs(np.array([np.frombuffer(b, dtype="<f4").tolist() for b in first]))
    assert again == first


@pytest.fixture
def index_file(tmp_path: Path) -> Path:
    path = tmp_path / "v.sqlite"
    custom = get_embedder("custom", dimension=3)
    return build_version(path, embedder=custom, index_name="faq", version=Version(1), upserts=DOCS).path


def test_the_rows_of_an_index_file_come_back_as_its_documents(index_file: Path) -> None:
    conn = connect(index_file, readonly=True)
    try:
        every = list(rows_from(conn, None, 0))
        asked = list(rows_from(conn, ["c", "missing", "a"], 0))
        rest = list(rows_from(conn, ["c", "missing", "a"], 1))
    finally:
        conn.close()
    assert [cursor for cursor, _ in every] == [row[0] for _, row in every]  # the rowid: the next page's after
    assert [stored_doc(row[1:], None) for _, row in every] == [as_stored(d, embedding=False) for d in DOCS]
    assert [(cursor, row[1]) for cursor, row in asked] == [(1, "c"), (3, "a")]  # ids asked: their place in the list
    assert [row[1] for _, row in rest] == ["a"]


def test_rows_in_rank_order_become_ranked_results() -> None:
    rows = [("c", "third", '{"k": "v"}', None), ("a", "héllo", "{}", "p")]
    results = result_docs(rows, np.array([0.9, 0.25], dtype=np.float32), "faq")
    assert results == [
        QueryResultDocumentInfo(id="c", text="third", metadata={"k": "v"}, score=0.8999999761581421, index_name="faq"),
        QueryResultDocumentInfo(id="a", text="héllo", metadata={}, score=0.25, payload="p", index_name="faq"),
    ]
