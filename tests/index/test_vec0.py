"""vec0.py: the vectors read from sqlite-vec's shadow tables, with one thread or two,
are the vectors vec0 itself returns, in the layout's order."""

from __future__ import annotations

import shutil
from pathlib import Path

import apsw
import numpy as np
import pytest

from mosslite import DocumentInfo, IndexReader, Version, build_version, get_embedder
from mosslite._db import connect
from mosslite.errors import CorruptIndexError
from mosslite.index import vec0
from mosslite.index.format import CHUNK_SLOTS

DIM = 8
CUSTOM = get_embedder("custom", dimension=DIM)


def docs(count: int, start: int = 0) -> list[DocumentInfo]:
    vectors = np.random.default_rng(start).standard_normal((count, DIM))
    return [
        DocumentInfo(id=f"d{start + i}", text=f"note {start + i}", embedding=v.tolist()) for i, v in enumerate(vectors)
    ]


@pytest.fixture
def holed(tmp_path: Path) -> Path:
    """Five chunks of vectors, some with slots freed by deletes (rows not the first slots)."""
    v1 = build_version(tmp_path / "1.sqlite", embedder=CUSTOM, index_name="v", version=Version(1),
                       upserts=docs(4 * CHUNK_SLOTS + 100)).path
    deletes = [f"d{i}" for i in range(0, 4 * CHUNK_SLOTS, 7)] + [f"d{i}" for i in range(CHUNK_SLOTS, 2 * CHUNK_SLOTS)]
    return build_version(tmp_path / "2.sqlite", embedder=CUSTOM, index_name="v", version=Version(2),
                         base=v1, deletes=deletes).path


def vec0_vectors(path: Path, rowids: np.ndarray) -> np.ndarray:
    conn = connect(path, vec=True, readonly=True)
    try:
        stored = dict(conn.execute("SELECT rowid, embedding FROM docs_vec"))
    finally:
        conn.close()
    return np.stack([np.frombuffer(stored[rowid], dtype="<f4") for rowid in rowids.tolist()])


@pytest.mark.parametrize("threads", [1, 2])
def test_the_matrix_is_what_vec0_holds_in_the_layouts_order(holed: Path, threads: int) -> None:
    conn, helper = connect(holed, immutable=True), connect(holed, immutable=True)
    try:
        layout = vec0.read_layout(conn)
        assert len(layout.chunk_ids) >= 4 and any(used[-1] != len(used) - 1 for used in layout.slots)
        matrix = vec0.read_matrix(conn, layout, DIM, helper=helper if threads == 2 else None)
        assert matrix.shape == (conn.execute("SELECT count(*) FROM docs").fetchone()[0], DIM)
    finally:
        conn.close(), helper.close()
    np.testing.assert_array_equal(matrix, vec0_vectors(holed, layout.rowids))


def test_a_reader_reads_a_large_matrix_with_two_connections(holed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vec0, "SPLIT_READ_MIN_BYTES", 0)
    monkeypatch.setattr(vec0, "_CPUS", 2)
    reader = IndexReader(holed)
    try:
        np.testing.assert_array_equal(reader.matrix, vec0_vectors(holed, reader._rowids))
        assert len(reader._idle) == 2  # the helper's connection stays for later queries
    finally:
        reader.close()


def test_a_damaged_chunk_read_by_the_second_thread_is_a_corrupt_index(
    tmp_path: Path, holed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vec0, "SPLIT_READ_MIN_BYTES", 0)
    monkeypatch.setattr(vec0, "_CPUS", 2)
    damaged = tmp_path / "damaged.sqlite"
    shutil.copy(holed, damaged)
    conn = apsw.Connection(str(damaged))
    last = conn.execute("SELECT max(rowid) FROM docs_vec_vector_chunks00").fetchone()[0]
    conn.execute("UPDATE docs_vec_vector_chunks00 SET vectors = zeroblob(12) WHERE rowid = ?", (last,))
    conn.close()
    with pytest.raises(CorruptIndexError, match=f"docs_vec_vector_chunks00 chunk {last} is damaged"):
        IndexReader(damaged)
