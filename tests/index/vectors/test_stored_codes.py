"""The 8-bit codes in the index file (stored_codes.py): written by the builder, read back by
the reader into the very arrays a search computed in memory would use, carried into
later versions chunk by chunk, and the reader's answers stay the float32 answers."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mosslite import DocumentInfo, IndexReader, QueryOptions, Version, build_version, get_embedder
from mosslite._background import in_low_priority
from mosslite._db import connect
from mosslite.errors import CorruptIndexError
from mosslite.index import vec0
from mosslite.index.vectors import choice, codes
from mosslite.index.vectors import rotated as rotated_module
from mosslite.index.vectors import stored_codes as codes_file
from mosslite.index.vectors.codes import Codes
from mosslite.index.vectors.exact import ExactScan
from mosslite.index.vectors.rotated import PrincipalScreen
from mosslite.index.vectors.stored_codes import read_codebook, read_codes

from .matrices import assert_same, clustered, queries

DIM = 32
CUSTOM = get_embedder("custom", dimension=DIM)


def docs_of(vectors_: np.ndarray, start: int = 0) -> list[DocumentInfo]:
    return [
        DocumentInfo(id=f"d{start + i}", text=f"note {start + i} alpha", metadata={"g": str(i % 4)}, embedding=v.tolist())
        for i, v in enumerate(vectors_)
    ]


@pytest.fixture
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Indexes of a few thousand 32-d rows count as large: the builder stores their codes
    and the reader searches them in 8 bits."""
    monkeypatch.setattr(choice, "PREFILTER_MIN_BYTES", 1000 * DIM * 4)


def build(path: Path, version: int, **kwargs) -> Path:
    return build_version(path, embedder=CUSTOM, index_name="c", version=Version(version), **kwargs).path


def stored_codes(path: Path) -> Codes:
    conn = connect(path, immutable=True)
    try:
        return read_codes(conn, read_codebook(conn), vec0.read_layout(conn))
    finally:
        conn.close()


def assert_codes_of(stored: Codes, rows: np.ndarray) -> None:
    """``stored`` holds the codes of ``rows`` (in that order) under its own codebook. A
    product computed twice may differ in its last float32 bit, which moves a value
    sitting on a rounding edge by one step: the bounds cover that, and the test
    allows it for a few values."""
    computed = Codes.of_matrix(rows, stored.codebook)
    differ = stored.codes.astype(np.int16) - computed.codes
    assert np.abs(differ).max(initial=0) <= 1 and np.count_nonzero(differ) <= differ.size // 10_000
    for name in ("head_l1", "l1", "tail_norms", "norm_max"):
        np.testing.assert_allclose(getattr(stored, name), getattr(computed, name), rtol=1e-4, atol=2.0, err_msg=name)


def stored_chunks(path: Path) -> dict[int, tuple[bytes, bytes]]:
    conn = connect(path, immutable=True)
    try:
        return {r[0]: (r[1], r[2]) for r in conn.execute("SELECT chunk_id, codes, stats FROM docs_codes")}
    finally:
        conn.close()


def test_stored_codes_are_the_codes_of_the_rows(tmp_path: Path, small_thresholds: None) -> None:
    rows = clustered(3000, DIM, seed=1)
    path = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(rows))
    stored = stored_codes(path)
    assert_codes_of(stored, rows)
    with IndexReader(path) as reader:
        assert reader.wait_ready() and type(reader._vectors) is PrincipalScreen
        exact = ExactScan(rows)
        for q in queries(rows, 20, seed=2):
            assert_same(reader._vectors.top(q, 10, None), exact.top(q, 10, None))


def test_small_indexes_store_no_codes(tmp_path: Path) -> None:
    path = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(clustered(300, DIM)))
    assert stored_chunks(path) == {}
    with IndexReader(path) as reader:
        assert reader.wait_ready() and type(reader._vectors) is ExactScan


def test_a_small_change_rewrites_only_the_chunks_it_touched(tmp_path: Path, small_thresholds: None) -> None:
    rows = clustered(3000, DIM, seed=3)
    v1 = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(rows))
    v2 = build(
        tmp_path / "v2.sqlite", 2, base=v1, upserts=docs_of(clustered(5, DIM, seed=4), start=9000), deletes=["d7"]
    )
    before, after = stored_chunks(v1), stored_chunks(v2)
    changed = {c for c in after if after[c] != before.get(c)}
    # d7's chunk (a slot freed) and the newest chunk (five slots filled): nothing else.
    assert changed == {1, max(after)}
    kept, fitted = (read_codebook(connect(p, immutable=True)) for p in (v2, v1))
    assert np.array_equal(kept.rotation, fitted.rotation) and np.array_equal(kept.steps, fitted.steps)
    with IndexReader(v2) as reader:
        reader.wait_ready()
        want = ExactScan(reader.matrix)
        for q in queries(reader.matrix, 10, seed=5):
            assert_same(reader._vectors.top(q, 5, None), want.top(q, 5, None))


def test_the_codebook_is_fitted_again_when_the_index_has_doubled(tmp_path: Path, small_thresholds: None) -> None:
    v1 = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(clustered(1500, DIM, seed=6)))
    v2 = build(tmp_path / "v2.sqlite", 2, base=v1, upserts=docs_of(clustered(1600, DIM, seed=7), start=5000))
    first, second = (read_codebook(connect(p, immutable=True)) for p in (v1, v2))
    assert (first.fit_count, second.fit_count) == (1500, 3100)
    assert not np.array_equal(first.rotation, second.rotation)
    with IndexReader(v2) as reader:  # every chunk re-encoded with the new codebook
        assert np.array_equal(stored_codes(v2).codebook.rotation, second.rotation)
        assert_codes_of(stored_codes(v2), reader.matrix)


def test_an_index_grown_large_gets_its_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(clustered(600, DIM, seed=8)))
    assert stored_chunks(v1) == {}
    monkeypatch.setattr(choice, "PREFILTER_MIN_BYTES", 1000 * DIM * 4)
    v2 = build(tmp_path / "v2.sqlite", 2, base=v1, upserts=docs_of(clustered(600, DIM, seed=9), start=5000))
    with IndexReader(v2) as reader:
        assert_codes_of(stored_codes(v2), reader.matrix)


def test_holes_left_by_deletes_are_skipped_in_the_codes(tmp_path: Path, small_thresholds: None) -> None:
    rows = clustered(2000, DIM, seed=10)
    v1 = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(rows))
    v2 = build(tmp_path / "v2.sqlite", 2, base=v1, deletes=[f"d{i}" for i in range(0, 2000, 3)])
    with IndexReader(v2) as reader:
        assert reader.doc_count == 2000 - 667 and reader.wait_ready()
        assert_codes_of(stored_codes(v2), reader.matrix)
        options = QueryOptions(top_k=5, alpha=1.0, embedding=rows[1].tolist())
        assert [d.id for d in reader.query("", options).docs][0] == "d1"


def test_damaged_codes_are_a_corrupt_index_and_queries_stay_exact(tmp_path: Path, small_thresholds: None) -> None:
    rows = clustered(2000, DIM, seed=11)
    path = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(rows))
    conn = connect(path)
    conn.execute("UPDATE docs_codes SET codes = x'00' WHERE chunk_id = 2")
    conn.close()
    with IndexReader(path) as reader:
        with pytest.raises(CorruptIndexError, match="docs_codes chunk 2"):
            reader.wait_ready()
        assert type(reader._vectors) is ExactScan  # the answers are still the float32 ones
        options = QueryOptions(top_k=3, alpha=1.0, embedding=rows[5].tolist())
        assert reader.query("", options).docs[0].id == "d5"


def test_codes_are_encoded_in_groups_as_one_chunk_at_a_time(tmp_path: Path, small_thresholds: None, monkeypatch) -> None:
    rows = clustered(2500, DIM, seed=12)
    grouped = build(tmp_path / "grouped.sqlite", 1, upserts=docs_of(rows))
    monkeypatch.setattr(codes_file, "ENCODE_CHUNKS", 1)
    monkeypatch.setattr(codes_file, "READ_CHUNKS", 1)
    single = build(tmp_path / "single.sqlite", 1, upserts=docs_of(rows))
    assert stored_chunks(grouped).keys() == stored_chunks(single).keys()
    with IndexReader(single) as reader:  # (the same rows in the same slots)
        assert_codes_of(stored_codes(grouped), reader.matrix)
        assert_codes_of(stored_codes(single), reader.matrix)


def test_codes_read_from_a_file_are_given_back_once_packed(tmp_path: Path, small_thresholds: None) -> None:
    # onnxruntime keeps packed copies; the reader's own 8-bit copy is released, checked
    # by probing the products before and after, and the answers stay exact.
    rows = clustered(3000, DIM, seed=13)
    path = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(rows))
    with IndexReader(path) as reader:
        reader.wait_ready()
        screen = reader._vectors
        assert type(screen) is PrincipalScreen and screen.codes_released
        assert not screen._head.any()  # (zeros: the pages were given back)
        exact = ExactScan(rows)
        for q in queries(rows, 20, seed=14):
            assert_same(screen.top(q, 10, None), exact.top(q, 10, None))
    kept = stored_codes(path)  # read with no way to read them again: never given back
    assert not kept.release() and kept.codes.any()


def test_the_tail_is_made_by_the_first_query_that_needs_it_from_codes_read_back(
    tmp_path: Path, small_thresholds: None
) -> None:
    # onnxruntime's packed tail is half of the codes' memory, and the head decides most
    # queries near the rows: the tail's session waits for a query the head cannot decide,
    # is made on a thread of its own, and queries scan float32 meanwhile.
    rows = clustered(3000, DIM, seed=21)
    path = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(rows))
    exact = ExactScan(rows)
    near, far = np.split(queries(rows, 20, seed=22), 2)
    with IndexReader(path) as reader:
        reader.wait_ready()
        screen = reader._vectors
        for q in near:
            assert_same(screen.top(q, 5, None), exact.top(q, 5, None))
        assert screen._tail_session is None and not screen._tail_ready.is_set() and screen.codes_released
        for q in far:  # random: most of each is in the tail
            assert_same(screen.top(q, 5, None), exact.top(q, 5, None))
        assert screen._tail_ready.wait(30) and screen._tail_session is not None
        assert screen.codes_released and not screen._tail.any()  # read back for it, given back again
        for q in far:
            assert_same(screen.top(q, 5, None), exact.top(q, 5, None))


def test_a_version_opened_like_one_that_reads_its_tail_makes_its_own_at_once(
    tmp_path: Path, small_thresholds: None
) -> None:
    # A refresh opens the next version like the serving one: if that one's queries
    # needed the tail, the new one makes it with its head, from the same read of the codes.
    rows = clustered(3000, DIM, seed=23)
    v1 = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(rows))
    v2 = build(tmp_path / "v2.sqlite", 2, base=v1, upserts=docs_of(clustered(5, DIM, seed=24), start=9000))
    with IndexReader(v1) as old:
        old.wait_ready()
        with IndexReader(v2, like=old) as successor:
            successor.wait_ready()
            assert not successor._vectors.reads_tails  # old's queries never needed it
        old.query(queries(rows, 2, seed=25)[1], QueryOptions(top_k=5))  # a random vector
        assert old._vectors._tail_ready.wait(30) and old._vectors.reads_tails
        with IndexReader(v2, like=old) as successor:
            successor.wait_ready()
            screen = successor._vectors
            assert screen.reads_tails and screen.codes_released and not screen._tail.any()
            exact = ExactScan(successor.matrix)
            for q in queries(successor.matrix, 10, seed=26):
                assert_same(screen.top(q, 5, None), exact.top(q, 5, None))


def test_codes_are_read_back_if_the_products_still_read_them(
    tmp_path: Path, small_thresholds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were onnxruntime's kernel to read the arrays it was given at every run (it does
    # not, today), releasing them would change the products: the probe sees it and
    # the codes are read back from the file.
    class ReadsItsInput:
        def __init__(self, matrix: np.ndarray) -> None:
            self.matrix = matrix

        def run(self, _names, feeds):
            q = feeds["q"].astype(np.int64) - codes.ZERO_POINT
            return [(q @ (self.matrix.astype(np.int64) - codes.ZERO_POINT)).astype(np.int32)]

    monkeypatch.setattr(rotated_module, "integer_product_session", ReadsItsInput)
    rows = clustered(3000, DIM, seed=15)
    path = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(rows))
    with IndexReader(path) as reader:
        reader.wait_ready()
        screen = reader._vectors
        assert not screen.codes_released and screen._head.any()
        assert_codes_of(stored_codes(path), rows)
        exact = ExactScan(rows)
        for q in queries(rows, 10, seed=16):
            assert_same(screen.top(q, 5, None), exact.top(q, 5, None))


def test_a_reader_for_documents_only_makes_no_8_bit_search(tmp_path: Path, small_thresholds: None) -> None:
    rows = clustered(2000, DIM, seed=17)
    path = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(rows))
    with IndexReader(path, search=False) as reader:  # (the service's readers: get_docs)
        assert reader.wait_ready(timeout_s=0) and type(reader._vectors) is ExactScan
        assert [d.id for d in reader.get_docs(ids=["d3"])] == ["d3"]


def test_the_search_thread_is_not_a_daemon_even_when_a_daemon_opens_the_reader(
    tmp_path: Path, small_thresholds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A daemon thread inside onnxruntime when the interpreter exits is ended from under
    # it, which aborts the process (seen at 1M documents: the blocking client's workers
    # are daemons, and a thread inherits that by default). Exit must wait for it.
    import threading

    from mosslite.index import reader as reader_module

    path = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(clustered(2000, DIM, seed=18)))
    looked = threading.Event()
    making = reader_module.vector_search

    def held(*args, **kwargs):  # the search thread waits until the test has looked at it
        looked.wait(30)
        return making(*args, **kwargs)

    monkeypatch.setattr(reader_module, "vector_search", held)
    seen: list[bool] = []

    def open_in_a_daemon() -> None:
        with IndexReader(path) as reader:
            seen.extend(t.daemon for t in threading.enumerate() if t.name == "mosslite-search")
            looked.set()
            reader.wait_ready()

    opener = threading.Thread(target=open_in_a_daemon, daemon=True)
    opener.start()
    opener.join(30)
    assert seen == [False]


def native_threads() -> dict[int, int]:
    """This process's threads: native id -> nice value (Linux's /proc)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                out[int(tid)] = int(fh.read().rsplit(")", 1)[1].split()[16])
        except (FileNotFoundError, ProcessLookupError):  # it exited after the listing
            continue
    return out


def threads_made_since(before: dict[int, int]) -> dict[int, int]:
    """Native threads not in ``before`` and not Python's (others' workers, not the pools)."""
    python = {thread.native_id for thread in threading.enumerate()}
    return {tid: nice for tid, nice in native_threads().items() if tid not in before and tid not in python}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux gives a thread its own nice value")
def test_a_reader_opened_at_low_priority_makes_its_search_threads_at_the_normal_one(
    tmp_path: Path, small_thresholds: None
) -> None:
    """A refresh opens the next version at a low priority (sync/index_sync.py); the threads
    of its 8-bit search's onnxruntime sessions are the ones every query waits on, so they
    must not inherit that priority."""
    import onnxruntime  # noqa: F401  (its import starts a thread of its own: made here, before counting)

    path = build(tmp_path / "v1.sqlite", 1, upserts=docs_of(clustered(2000, DIM, seed=11)))
    asyncio.run(in_low_priority(lambda: None))  # the low-priority thread, and its normal one, exist
    before = native_threads()

    def open_ready() -> IndexReader:
        reader = IndexReader(path)
        assert reader.wait_ready() and isinstance(reader._vectors, PrincipalScreen)
        return reader

    reader = asyncio.run(in_low_priority(open_ready))
    normal = before[threading.get_native_id()]
    try:
        deadline = time.monotonic() + 5
        # (A thread that just ended, such as the reader's low-priority search thread, is
        # listed until it has exited; the sessions' pool threads stay as long as the reader.)
        while set((made := threads_made_since(before)).values()) != {normal} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert made  # the sessions' pool threads
        assert set(made.values()) == {normal}
    finally:
        reader.close()
