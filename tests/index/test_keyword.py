"""Keyword search from postings: equal to FTS5's bm25(), kept in step by every build."""

from __future__ import annotations

import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apsw
import numpy as np
import pytest

from mosslite import DocumentInfo, IndexReader, QueryOptions, Version, build_version, get_embedder
from mosslite._db import connect
from mosslite.errors import CorruptIndexError, UnsupportedFormatError
from mosslite.index import keyword
from mosslite.index.keyword import KEYWORD_SQL, match_expression
from mosslite.index.postings import MAX_COUNT, decode

EMBEDDER = get_embedder("hashed-ngrams-256")
WORDS = (
    "battery charger cable pairing bluetooth refund shipping delivery courier warranty screen crack "
    "running runs runner café naïve résumé übermäßig color colour organise organize 3.5mm usb-c e-mail "
    "the a of and to in is it"
).split()
QUERIES = [
    "battery charger",
    "running café",
    "refunds for cracked screens",
    "naive resume",
    "the",  # only stopwords: kept, as nothing else is left
    "usb-c e-mail",
    "xylophone",
]


def random_docs(rng: random.Random, start: int, n: int) -> list[DocumentInfo]:
    docs = []
    for i in range(start, start + n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
        docs.append(DocumentInfo(id=f"d{i}", text=text, metadata={"group": str(i % 3)}))
    return docs


def build(path: Path, version: int, base: Path | None = None, **kwargs) -> Path:
    return build_version(
        path, embedder=EMBEDDER, index_name="kw", version=Version(version), base=base, **kwargs
    ).path


def fts5_scores(path: Path, text: str) -> dict[str, float]:
    """What FTS5 itself says: -bm25() of every matching document, by id."""
    match = match_expression(text)
    if match is None:
        return {}
    conn = connect(path, immutable=True)
    rows = conn.execute(KEYWORD_SQL, {"match": match, "limit": 1_000_000}).fetchall()
    ids = dict(conn.execute("SELECT rowid, id FROM docs").fetchall())
    conn.close()
    return {ids[rowid]: score for rowid, score in rows}


def postings_scores(reader: IndexReader, text: str) -> dict[str, float]:
    with reader._conn() as conn:
        positions, scores = reader._bm25.hits(conn, text, reader.doc_count, None)
    ids = [row[0] for row in reader._rows(reader._rowids[positions].tolist())]
    return {doc_id: float(s) for doc_id, s in zip(ids, scores)}


def assert_same_scores(path: Path) -> None:
    """Every query, twice: its terms read from the file, then (mostly) from the reader's cache."""
    with IndexReader(path) as reader:
        for text in QUERIES * 2:
            expected, got = fts5_scores(path, text), postings_scores(reader, text)
            assert set(got) == set(expected), text
            for doc_id, score in expected.items():
                assert got[doc_id] == pytest.approx(score, rel=1e-5), (text, doc_id)


def stored_postings(path: Path) -> dict[str, dict[int, int]]:
    """Each term's postings of documents the file holds: its base list and its recent
    one joined, without rowids of documents removed since (format 3)."""
    conn = connect(path, immutable=True)
    alive = {r[0] for r in conn.execute("SELECT rowid FROM docs")}
    out: dict[str, dict[int, int]] = {}
    for table in ("docs_postings", "docs_postings_recent"):
        for term, rowids, counts in conn.execute(f"SELECT term, rowids, counts FROM {table}"):
            r, c = decode(rowids, counts)
            assert list(r) == sorted(set(r.tolist())), term  # ascending, no duplicates
            assert not set(r.tolist()) & set(out.get(term, {})), term  # recent rowids are new ones
            live = {rowid: count for rowid, count in zip(r.tolist(), c.tolist()) if rowid in alive}
            if live:
                out.setdefault(term, {}).update(live)
    conn.close()
    return out


@pytest.fixture(params=["summed per document", "in an array per index"])
def scoring(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of adding up a query's postings: the reader picks by how many there are."""
    monkeypatch.setattr(keyword, "SPARSE_SHARE", 0 if request.param.startswith("summed") else 10**9)
    return request.param


def test_postings_scores_equal_fts5_bm25(tmp_path: Path, scoring: str) -> None:
    rng = random.Random(1)
    path = build(tmp_path / "v1.sqlite", 1, upserts=random_docs(rng, 0, 200))
    assert_same_scores(path)


def test_a_query_scored_in_several_passes_scores_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A long query's posting lists are scored POSTINGS_PER_PASS at a time, to bound memory.
    path = build(tmp_path / "v1.sqlite", 1, upserts=random_docs(random.Random(1), 0, 200))
    monkeypatch.setattr(keyword, "POSTINGS_PER_PASS", 7)
    assert_same_scores(path)


def test_a_term_asked_again_is_scored_from_memory(tmp_path: Path, scoring: str) -> None:
    path = build(tmp_path / "v1.sqlite", 1, upserts=random_docs(random.Random(1), 0, 200))
    reads: list[list[str]] = []
    tracer = lambda sql, bindings: reads.append(list(bindings)) if "docs_postings" in sql else None  # noqa: E731
    with IndexReader(path, tracer=tracer) as reader, IndexReader(path) as cold:
        for text in ["battery charger", "chargers for a battery", "battery cables", "xylophone battery"]:
            options = QueryOptions(alpha=0.0, top_k=50)
            assert reader.query(text, options).docs == cold.query(text, options).docs, text
            cold._bm25._cache.clear()
    # Stemmed terms; "xylophone" is in no document, so there is nothing to keep of it.
    # (Each read names its terms twice: once per table, base and recent.)
    assert reads == [["batteri", "charger"] * 2, ["cabl"] * 2, ["xylophon"] * 2]


def test_a_reader_swapped_in_reads_the_old_one_s_hot_terms_before_its_first_query(tmp_path: Path) -> None:
    # A refresh warms the next version from the serving one (IndexReader.warm_from), so
    # the first queries after a swap are not the ones that read the postings (issue #7).
    rng = random.Random(1)
    v1 = build(tmp_path / "v1.sqlite", 1, upserts=random_docs(rng, 0, 200))
    v2 = build(tmp_path / "v2.sqlite", 2, base=v1, upserts=random_docs(rng, 150, 100))  # changed and new documents
    reads: list[list[str]] = []
    tracer = lambda sql, bindings: reads.append(list(bindings)) if "docs_postings" in sql else None  # noqa: E731
    options = QueryOptions(alpha=0.0, top_k=50)
    with IndexReader(v1) as old, IndexReader(v2, tracer=tracer) as new, IndexReader(v2) as cold:
        for text in ["battery cables", "usb-c charger", "battery"]:
            old.query(text, options)
        new.warm_from(old)
        assert new._bm25.hot_terms() == old._bm25.hot_terms()  # the same terms, in the same recency order
        reads.clear()
        for text in ["battery charger", "usb-c cables xylophone"]:
            assert new.query(text, options).docs == cold.query(text, options).docs, text  # scored by v2's numbers
        assert reads == [["xylophon"] * 2]  # only the word the old reader was never asked


def test_the_posting_cache_keeps_to_its_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build(tmp_path / "v1.sqlite", 1, upserts=random_docs(random.Random(1), 0, 200))
    monkeypatch.setattr(keyword, "CACHED_POSTINGS", 400)
    with IndexReader(path) as reader:
        for text in QUERIES * 3:
            expected, got = fts5_scores(path, text), postings_scores(reader, text)
            assert got == pytest.approx(expected, rel=1e-5), text
            cache = reader._bm25._cache
            assert reader._bm25._cached == sum(len(positions) for positions, _ in cache.values()) <= 400
        assert "usb" in cache and "batteri" not in cache  # the least recently asked went first


def test_threads_sharing_a_small_posting_cache_get_exact_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build(tmp_path / "v1.sqlite", 1, upserts=random_docs(random.Random(1), 0, 200))
    monkeypatch.setattr(keyword, "CACHED_POSTINGS", 400)  # every thread evicts what others read
    expected = {text: fts5_scores(path, text) for text in QUERIES}
    with IndexReader(path) as reader:

        def worker(seed: int) -> None:
            for i in range(40):
                text = QUERIES[(seed + i) % len(QUERIES)]
                assert postings_scores(reader, text) == pytest.approx(expected[text], rel=1e-5), text

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(worker, range(8)))
        cache = reader._bm25._cache
        assert reader._bm25._cached == sum(len(positions) for positions, _ in cache.values()) <= 400


def test_every_incremental_build_keeps_postings_equal_to_a_fresh_build(tmp_path: Path) -> None:
    rng = random.Random(2)
    docs = {d.id: d for d in random_docs(rng, 0, 120)}
    path = build(tmp_path / "v1.sqlite", 1, upserts=list(docs.values()))
    for version in range(2, 7):
        ids = list(docs)
        deletes = rng.sample(ids, 10)
        changed = [DocumentInfo(id=i, text=docs[i].text + " warranty warranty") for i in rng.sample(ids, 10)]
        same = [docs[i] for i in rng.sample(ids, 5)]  # same text: postings untouched
        readded = [DocumentInfo(id=deletes[0], text="courier courier courier")]  # deleted and re-added in one batch
        new = random_docs(rng, 1000 * version, 8)
        upserts = list({d.id: d for d in [*changed, *same, *readded, *new]}.values())
        path = build(tmp_path / f"v{version}.sqlite", version, base=path, upserts=upserts, deletes=deletes)
        for doc_id in deletes:
            docs.pop(doc_id, None)
        docs.update({d.id: d for d in upserts})

        fresh = build(tmp_path / f"fresh{version}.sqlite", 1, upserts=list(docs.values()))
        by_id = lambda p: dict(connect(p, immutable=True).execute("SELECT rowid, id FROM docs").fetchall())  # noqa: E731
        ids_now, ids_fresh = by_id(path), by_id(fresh)
        as_ids = lambda postings, ids: {t: {ids[r]: c for r, c in p.items()} for t, p in postings.items()}  # noqa: E731
        assert as_ids(stored_postings(path), ids_now) == as_ids(stored_postings(fresh), ids_fresh)
        assert_same_scores(path)


def test_filtered_keyword_search_is_exact(tmp_path: Path, scoring: str) -> None:
    rng = random.Random(3)
    path = build(tmp_path / "v1.sqlite", 1, upserts=random_docs(rng, 0, 300))
    spec = {"field": "group", "condition": {"$eq": "1"}}
    with IndexReader(path) as reader:
        for text in QUERIES[:4]:
            got = reader.query(text, QueryOptions(alpha=0.0, top_k=20, filter=spec)).docs
            allowed = sorted((s for i, s in fts5_scores(path, text).items() if int(i[1:]) % 3 == 1), reverse=True)
            assert all(int(d.id[1:]) % 3 == 1 for d in got)
            # The best 20 of the allowed documents, by FTS5's own scores (ties make ids ambiguous, not scores).
            expected = np.array(allowed[:20]) / allowed[0]
            assert [d.score for d in got] == pytest.approx(expected.tolist(), rel=1e-5)


def test_term_counts_saturate_instead_of_overflowing(tmp_path: Path) -> None:
    text = "z " * (MAX_COUNT + 10)  # the most repeats a 256 KB text allows is ~2x the cap
    path = build(tmp_path / "v1.sqlite", 1, upserts=[DocumentInfo(id="z", text=text), DocumentInfo(id="y", text="y")])
    assert stored_postings(path)["z"] == {1: MAX_COUNT}
    with IndexReader(path) as reader:
        assert [d.id for d in reader.query("z", QueryOptions(alpha=0.0)).docs] == ["z"]


def test_format_1_file_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = build(tmp_path / "v1.sqlite", 1, upserts=random_docs(random.Random(4), 0, 5))
    old = tmp_path / "old.sqlite"
    shutil.copy(path, old)
    conn = apsw.Connection(str(old))
    conn.execute("DROP TABLE docs_postings; DROP TABLE docs_lengths; PRAGMA user_version = 1")
    conn.close()
    with pytest.raises(UnsupportedFormatError, match="format 1") as info:
        IndexReader(old)
    assert "rebuild" in str(info.value)


def test_a_document_without_a_length_is_a_corrupt_index(tmp_path: Path) -> None:
    path = build(tmp_path / "v1.sqlite", 1, upserts=random_docs(random.Random(5), 0, 5))
    conn = apsw.Connection(str(path))
    conn.execute("DELETE FROM docs_lengths")
    conn.close()
    with pytest.raises(CorruptIndexError, match="docs_lengths"):
        IndexReader(path)


@pytest.mark.parametrize("stray_rowid", [2, 10_000])
def test_postings_of_rowids_that_are_no_document_are_skipped(tmp_path: Path, stray_rowid: int, scoring: str) -> None:
    # A removed document's postings stay in the lists until they are written whole
    # again (postings.py); a rowid is never reused, so they must count for nothing,
    # in the document frequency too: the scores are those of the live list alone.
    built = build(tmp_path / "v1.sqlite", 1, upserts=random_docs(random.Random(5), 0, 20))

    def scores_with(listed: list[int]) -> dict[str, float]:
        path = tmp_path / f"{len(listed)}.sqlite"
        shutil.copy(built, path)
        conn = connect(path, vec=True)
        conn.execute("DELETE FROM docs WHERE rowid = 2")  # leaves a gap below the last rowid
        conn.execute("DELETE FROM docs_vec WHERE rowid = 2")
        conn.execute("UPDATE meta SET value = '19' WHERE key = 'doc_count'")
        rowids, counts = np.array(listed, dtype="<u4").tobytes(), np.ones(len(listed), dtype="<u2").tobytes()
        conn.execute("UPDATE docs_postings SET rowids = ?, counts = ? WHERE term = 'batteri'", (rowids, counts))
        conn.close()
        with IndexReader(path) as reader:
            return postings_scores(reader, "battery")

    live = scores_with([1, 3])
    assert sorted(live) == ["d0", "d2"]
    assert scores_with(sorted({1, 2, 3, stray_rowid})) == live


@pytest.mark.parametrize(
    "rowids, counts",
    [
        (np.array([1, 2], dtype="<u4").tobytes(), np.array([1], dtype="<u2").tobytes()),  # unpaired
        (np.array([1, 2], dtype="<u4").tobytes()[:-2], np.array([1], dtype="<u2").tobytes()[:-1]),  # cut short
        (b"", b""),  # an empty list is deleted, never stored
        ("1,2", "1,1"),  # text, not blobs
    ],
)
def test_damaged_posting_lists_are_a_corrupt_index(tmp_path: Path, rowids: object, counts: object, scoring: str) -> None:
    path = build(tmp_path / "v1.sqlite", 1, upserts=random_docs(random.Random(5), 0, 20))
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA ignore_check_constraints = ON")  # damage the schema's CHECK would refuse
    conn.execute("UPDATE docs_postings SET rowids = ?, counts = ? WHERE term = 'batteri'", (rowids, counts))
    conn.close()
    with IndexReader(path) as reader, pytest.raises(CorruptIndexError, match="docs_postings"):
        reader.query("battery", QueryOptions(alpha=0.0))
