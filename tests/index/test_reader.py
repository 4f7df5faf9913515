"""Every query path of IndexReader, its errors, and concurrent use."""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import threading
import weakref
from pathlib import Path

import apsw
import numpy as np
import pytest

from mosslite import DocumentInfo, IndexReader, QueryOptions, Version, build_version, get_embedder
from mosslite._db import connect
from mosslite.errors import (
    ClosedError,
    CorruptIndexError,
    DimensionMismatchError,
    InvalidArgumentError,
    InvalidFilterError,
    NotFoundError,
    UnsupportedFormatError,
)
from mosslite.index.keyword import match_expression

from ..conftest import FAQ


@pytest.fixture
def reader(faq_index: Path):
    with IndexReader(faq_index) as r:
        yield r


def ids(result) -> list[str]:
    return [d.id for d in result.docs]


def check_scores(result) -> None:
    scores = [d.score for d in result.docs]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)


def test_hydrates_facts(reader: IndexReader) -> None:
    assert (reader.index_name, reader.version, reader.doc_count) == ("faq", 1, len(FAQ))
    assert reader.matrix.shape == (len(FAQ), 256) and reader.matrix.dtype == np.float32
    assert not reader.matrix.flags.writeable


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.8, 1.0])
def test_every_alpha_ranks_the_obvious_match_first(reader: IndexReader, alpha: float) -> None:
    result = reader.query("bluetooth headphones pairing", QueryOptions(top_k=3, alpha=alpha))
    assert ids(result)[0] == "bt-1"
    check_scores(result)
    assert result.query == "bluetooth headphones pairing" and result.index_name == "faq"
    assert result.time_taken_ms > 0
    top = result.docs[0]
    assert top.text == FAQ[4][1] and top.metadata == FAQ[4][2] and top.payload == "payload:bt-1"


def test_keyword_only_uses_bm25_with_stemming(reader: IndexReader) -> None:
    result = reader.query("refunds", QueryOptions(alpha=0.0))
    assert ids(result) == ["refund-1"]  # porter: refunds -> refund; no other doc has the word
    assert result.docs[0].score == 1.0


def test_keyword_only_with_no_match_is_empty(reader: IndexReader) -> None:
    assert reader.query("xylophone", QueryOptions(alpha=0.0)).docs == []
    assert reader.query("?!", QueryOptions(alpha=0.0)).docs == []


def test_a_pasted_document_as_query_is_not_limited_by_sqlite_parameters(reader: IndexReader) -> None:
    # Each distinct word is a bound parameter when its postings are read; SQLite
    # allows 32766 per statement, so they are read in batches.
    words = " ".join(f"zq{i}x" for i in range(33_000))
    assert ids(reader.query(words + " refunds", QueryOptions(alpha=0.0))) == ["refund-1"]


def test_semantic_only_scores_are_cosines(reader: IndexReader) -> None:
    text = FAQ[2][1]
    result = reader.query(text, QueryOptions(alpha=1.0, top_k=len(FAQ)))
    assert result.docs[0].id == "ship-1" and result.docs[0].score == pytest.approx(1.0, abs=1e-5)
    vector = get_embedder("hashed-ngrams-256").embed([text])[0]
    expected = np.clip(reader.matrix @ vector, 0, 1)
    by_id = {d.id: d.score for d in result.docs}
    for i, (doc_id, _, _) in enumerate(FAQ):
        if doc_id in by_id:
            assert by_id[doc_id] == pytest.approx(float(expected[i]), abs=1e-5)


def test_hybrid_blends_both_parts(reader: IndexReader) -> None:
    # "money back" only matches refund-2 by keyword; hybrid must surface it.
    result = reader.query("money back", QueryOptions(alpha=0.5, top_k=3))
    assert ids(result)[0] == "refund-2"
    check_scores(result)


def test_query_by_embedding_and_with_given_vector(reader: IndexReader) -> None:
    vector = reader.matrix[4].tolist()
    assert ids(reader.query(vector, QueryOptions(top_k=1)))[0] == "bt-1"
    given = reader.query("shipping", QueryOptions(top_k=1, alpha=1.0, embedding=vector))
    assert ids(given) == ["bt-1"]  # the given vector wins over the text for the semantic part
    with pytest.raises(DimensionMismatchError):
        reader.query([0.1, 0.2], QueryOptions())
    with pytest.raises(InvalidArgumentError):
        reader.query(42, QueryOptions())  # type: ignore[arg-type]


def test_top_k_bounds_results(reader: IndexReader) -> None:
    assert len(reader.query("the", QueryOptions(top_k=1, alpha=1.0)).docs) == 1
    assert len(reader.query("the", QueryOptions(top_k=1000, alpha=1.0)).docs) == len(FAQ)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_filters_apply_to_every_path(reader: IndexReader, alpha: float) -> None:
    spec = {"field": "category", "condition": {"$eq": "shipping"}}
    result = reader.query("delivery shipping days", QueryOptions(alpha=alpha, filter=spec, top_k=10))
    assert set(ids(result)) <= {"ship-1", "ship-2"} and ids(result)
    near = {"field": "loc", "condition": {"$near": "52.52,13.405,5000"}}
    assert set(ids(reader.query("anything", QueryOptions(alpha=1.0, filter=near, top_k=10)))) == {"refund-1", "bt-2"}


def test_keyword_filter_widens_until_enough_pass(tmp_path: Path) -> None:
    docs = [DocumentInfo(id=f"d{i}", text="common word", metadata={"keep": "yes" if i >= 290 else "no"}) for i in range(300)]
    path = tmp_path / "v1.sqlite"
    build_version(path, embedder=get_embedder("hashed-ngrams-256"), index_name="w", version=Version(1), upserts=docs)
    with IndexReader(path) as reader:
        spec = {"field": "keep", "condition": {"$eq": "yes"}}
        result = reader.query("common", QueryOptions(alpha=0.0, top_k=10, filter=spec))
        assert sorted(ids(result)) == sorted(f"d{i}" for i in range(290, 300))


def test_malformed_filter_in_query(reader: IndexReader) -> None:
    with pytest.raises(InvalidFilterError):
        reader.query("x", QueryOptions(filter={"field": "a", "condition": {"$like": "b"}}))


def test_get_docs_by_ids_and_filter(reader: IndexReader) -> None:
    docs = reader.get_docs(ids=["bt-2", "missing", "refund-1"])
    assert [d.id for d in docs] == ["bt-2", "refund-1"]
    assert docs[0].payload == "payload:bt-2" and len(docs[0].embedding) == 256
    audio = reader.get_docs(filter={"field": "category", "condition": {"$eq": "audio"}})
    assert [d.id for d in audio] == ["bt-1", "bt-2", "battery-1"]
    assert [d.id for d in reader.get_docs(ids=["bt-1", "ship-1"], filter={"field": "category", "condition": {"$eq": "audio"}})] == ["bt-1"]
    assert len(reader.get_docs()) == len(FAQ)
    with pytest.raises(InvalidArgumentError):
        reader.get_docs(ids="bt-1")  # type: ignore[arg-type]


def test_get_docs_returns_the_stored_rows_and_vectors(reader: IndexReader) -> None:
    # Rows from the file, vectors from the matrix read at open: the same as vec0 holds.
    conn = connect(reader.path, vec=True, readonly=True)
    stored = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT id, text, metadata, payload, docs_vec.embedding FROM docs JOIN docs_vec USING (rowid)"
        )
    }
    docs = reader.get_docs()
    assert [d.id for d in docs] == [r[0] for r in conn.execute("SELECT id FROM docs ORDER BY rowid")]
    for doc in docs:
        text, metadata, payload, embedding = stored[doc.id]
        assert (doc.text, doc.metadata, doc.payload) == (text, json.loads(metadata), payload)
        assert list(doc.embedding) == np.frombuffer(embedding, dtype="<f4").tolist()
    assert all(d.embedding is None for d in reader.get_docs(include_embedding=False))
    conn.close()


def test_an_index_without_documents_answers_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    build_version(path, embedder=get_embedder("hashed-ngrams-256"), index_name="empty", version=Version(1), upserts=[])
    with IndexReader(path) as empty:
        assert empty.doc_count == 0
        for alpha in (0.0, 0.5, 1.0):
            assert empty.query("anything", QueryOptions(alpha=alpha)).docs == []
        assert empty.query("x", QueryOptions(filter={"field": "a", "condition": {"$eq": "b"}})).docs == []
        assert empty.get_docs() == [] and empty.get_docs(ids=["x"]) == []


def test_custom_index_queries_need_vectors(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    custom = get_embedder("custom", dimension=2)
    docs = [DocumentInfo(id="x", text="east", embedding=[1, 0]), DocumentInfo(id="y", text="north", embedding=[0, 1])]
    build_version(path, embedder=custom, index_name="c", version=Version(1), upserts=docs)
    with IndexReader(path) as reader:
        assert ids(reader.query("", QueryOptions(embedding=[0.1, 0.9], top_k=1))) == ["y"]
        assert ids(reader.query("east", QueryOptions(alpha=0.0))) == ["x"]  # keyword needs no vector
        with pytest.raises(InvalidArgumentError, match="index 'c' uses the custom model"):
            reader.query("north", QueryOptions(alpha=0.5))


def test_not_an_index(tmp_path: Path) -> None:
    text = tmp_path / "notes.sqlite"
    text.write_text("hello, not a database " * 100)
    with pytest.raises(CorruptIndexError):
        IndexReader(text)
    plain = tmp_path / "plain.sqlite"
    conn = apsw.Connection(str(plain))
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(CorruptIndexError, match="not a mosslite index"):
        IndexReader(plain)
    with pytest.raises(NotFoundError, match="no index file"):
        IndexReader(tmp_path / "missing.sqlite")
    with pytest.raises(CorruptIndexError, match="not a file"):
        IndexReader(tmp_path)


def test_truncated_index_is_rejected(tmp_path: Path, faq_index: Path) -> None:
    cut = tmp_path / "cut.sqlite"
    cut.write_bytes(faq_index.read_bytes()[: 3 * 4096])
    with pytest.raises(CorruptIndexError):
        IndexReader(cut)


def test_damaged_metadata_is_a_corrupt_index_when_it_is_read(tmp_path: Path, faq_index: Path) -> None:
    damaged = tmp_path / "damaged.sqlite"
    shutil.copy(faq_index, damaged)
    conn = apsw.Connection(str(damaged))
    conn.execute("PRAGMA ignore_check_constraints = ON")  # damage the schema's CHECK would refuse
    conn.execute("UPDATE docs SET metadata = '[\"not\", \"an object\"]' WHERE rowid = 2")
    conn.close()
    with IndexReader(damaged) as reader:
        assert reader.query("battery", QueryOptions(alpha=0.0)).docs  # the damaged document is not a hit
        for damaged_read in [
            lambda: reader.query("battery", QueryOptions(alpha=0.0, filter={"field": "topic", "condition": {"$eq": "x"}})),
            lambda: reader.query("money back", QueryOptions(alpha=0.0)),  # refund-2 is a hit
            lambda: reader.get_docs(ids=["refund-2"]),
        ]:
            with pytest.raises(CorruptIndexError, match="metadata is not a JSON object"):
                damaged_read()


@pytest.mark.parametrize("vectors", [b"\0" * 12, "text", None])
def test_a_damaged_vector_chunk_is_a_corrupt_index(tmp_path: Path, faq_index: Path, vectors: object) -> None:
    damaged = tmp_path / "damaged.sqlite"
    shutil.copy(faq_index, damaged)
    conn = apsw.Connection(str(damaged))
    # Damage that sqlite-vec's schema would refuse (NOT NULL), without its CHECKs.
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_schema SET sql = replace(sql, 'BLOB NOT NULL', 'BLOB') WHERE name = 'docs_vec_vector_chunks00'"
    )
    conn.close()
    conn = apsw.Connection(str(damaged))
    conn.execute("UPDATE docs_vec_vector_chunks00 SET vectors = ?", (vectors,))
    conn.close()
    with pytest.raises(CorruptIndexError, match="docs_vec_vector_chunks00 chunk 1 is damaged"):
        IndexReader(damaged)


def test_newer_format_is_refused(tmp_path: Path, faq_index: Path) -> None:
    future = tmp_path / "future.sqlite"
    shutil.copy(faq_index, future)
    conn = apsw.Connection(str(future))
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(UnsupportedFormatError, match="upgrade"):
        IndexReader(future)


def test_closed_reader_refuses_queries(faq_index: Path) -> None:
    reader = IndexReader(faq_index)
    reader.close()
    # Keyword search reads SQLite; vector search and get_docs are served from memory
    # and must refuse alike.
    with pytest.raises(ClosedError):
        reader.query("refund", QueryOptions(alpha=0.0))
    with pytest.raises(ClosedError):
        reader.query([1.0] * reader.meta.dimension)
    with pytest.raises(ClosedError):
        reader.get_docs(ids=["bt-1"])


def test_closing_waits_for_the_connections_queries_are_using(faq_index: Path) -> None:
    # The service closes a cached reader when its index is deleted, while another
    # thread may be mid-query: that query finishes, and its connection closes after.
    reader = IndexReader(faq_index)
    reader.query("refund", QueryOptions(alpha=0.0))  # one idle connection in the pool
    holding, closed = threading.Event(), threading.Event()
    seen: list[int] = []

    def query() -> None:
        with reader._conn() as conn:
            holding.set()
            closed.wait(5)
            seen.append(conn.execute("SELECT count(*) FROM docs").fetchone()[0])
        try:
            conn.execute("SELECT 1")
        except apsw.ConnectionClosedError:
            seen.append(-1)  # closed as the query gave it back

    thread = threading.Thread(target=query)
    thread.start()
    assert holding.wait(5)
    reader.close()
    closed.set()
    thread.join(5)
    assert seen == [len(FAQ), -1]
    with pytest.raises(ClosedError):
        reader.get_docs()


def test_concurrent_threads_get_consistent_answers(reader: IndexReader) -> None:
    queries = [t for _, t, _ in FAQ]
    expected = {q: ids(reader.query(q, QueryOptions(alpha=0.5))) for q in queries}
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            for i in range(60):
                q = queries[(seed + i) % len(queries)]
                assert ids(reader.query(q, QueryOptions(alpha=0.5))) == expected[q]
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_concurrent_asyncio_tasks(reader: IndexReader) -> None:
    async def main() -> list[list[str]]:
        tasks = [asyncio.to_thread(reader.query, "battery charge", QueryOptions(alpha=0.5)) for _ in range(50)]
        return [ids(r) for r in await asyncio.gather(*tasks)]

    results = asyncio.run(main())
    assert all(r == results[0] for r in results) and results[0][0] == "battery-1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("refund policy", '"refund" OR "policy"'),
        ("the the", '"the"'),  # only stopwords: keep them rather than match nothing
        ('drop" OR 1=1 NEAR(', '"drop" OR "1" OR "near"'),
        ("", None),
        ("?!", None),
    ],
)
def test_match_expression_quotes_user_text(text: str, expected: str | None) -> None:
    assert match_expression(text) == expected


# -- argument checks (issue #8) -----------------------------------------------------


@pytest.mark.parametrize("path", [5, None, b"faq.sqlite", 1.5])
def test_a_reader_path_that_is_no_path_is_a_typed_error(path: object) -> None:
    with pytest.raises(InvalidArgumentError, match="must be a path"):
        IndexReader(path)  # type: ignore[arg-type]


def test_a_reader_path_with_a_nul_is_a_typed_error(faq_index: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="NUL"):
        IndexReader(str(faq_index) + "\x00")


def test_a_reader_embedder_that_is_no_embedder_is_a_typed_error(faq_index: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="must be an Embedder"):
        IndexReader(faq_index, embedder="hashed-ngrams-256")  # type: ignore[arg-type]


@pytest.mark.parametrize("after", [2**63, 2**70, -1, True, 1.0, "3", None])
def test_page_docs_refuses_an_after_no_rowid_can_be(reader: IndexReader, after: object) -> None:
    with pytest.raises(InvalidArgumentError, match="after must be"):
        reader.page_docs(after=after)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="after must be"):
        reader.page_docs(["bt-1"], after=after)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [0, -1, False, 2.0, "5"])
def test_page_docs_refuses_a_limit_below_one(reader: IndexReader, limit: object) -> None:
    with pytest.raises(InvalidArgumentError, match="limit must be"):
        reader.page_docs(limit=limit)  # type: ignore[arg-type]


def test_page_docs_edges_that_are_fine(reader: IndexReader) -> None:
    assert reader.page_docs(after=2**63 - 1) == ([], None)
    docs, after = reader.page_docs(limit=1)
    assert len(docs) == 1 and after == 1
    assert [d.id for d in reader.page_docs(limit=None)[0]] == [i for i, _, _ in FAQ]


@pytest.mark.parametrize("doc_id", ["\ud800", "x" * 600, " "])
def test_get_docs_refuses_ids_no_document_can_have(reader: IndexReader, doc_id: str) -> None:
    # A lone surrogate answered "nothing" while a delete of it was refused (issue #8).
    with pytest.raises(InvalidArgumentError):
        reader.get_docs(ids=[doc_id])


def test_a_closed_reader_is_freed_at_once_not_by_the_cycle_collector(faq_index: Path) -> None:
    # A filter made reader -> its metadata columns -> a bound method -> reader a cycle:
    # an unloaded or swapped-out reader, matrix and all (~150 MB at 100k), lived until a
    # gen-2 collection, and RSS grew by one matrix per load/unload (found in #9's benchmarks).
    gc.disable()
    try:
        reader = IndexReader(faq_index)
        options = QueryOptions(filter={"field": "category", "condition": {"$eq": "returns"}})
        assert reader.query("refund", options).docs
        reader.wait_ready()
        freed = weakref.ref(reader)
        reader.close()
        del reader
        assert freed() is None
    finally:
        gc.enable()

