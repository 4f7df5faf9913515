"""Which vector search serves a matrix (choice.py): by size, and for a reader whose model
needs the cores; whichever it picks, a reader answers as with the float32 scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mosslite import DocumentInfo, IndexReader, QueryOptions, Version, build_version, get_embedder
from mosslite.embeddings.custom import CustomEmbedder
from mosslite.index.vectors import choice
from mosslite.index.vectors.choice import vector_search
from mosslite.index.vectors.exact import ColumnScan, ExactScan
from mosslite.index.vectors.int8 import Int8Prefilter
from mosslite.index.vectors.rotated import PrincipalScreen

from .matrices import clustered, queries

#: The searches a reader makes ready after opening, by what makes it choose them.
SEARCHES = {"columns": ColumnScan, "int8": Int8Prefilter, "screen": PrincipalScreen}


def custom_index(tmp_path: Path, vecs: np.ndarray) -> Path:
    """A version file of these vectors, one short note each, for the ``custom`` model."""
    docs = [DocumentInfo(id=f"d{i}", text=f"note {i}", embedding=v.tolist()) for i, v in enumerate(vecs)]
    path = tmp_path / "v.sqlite"
    custom = get_embedder("custom", dimension=vecs.shape[1])
    build_version(path, embedder=custom, index_name="v", version=Version(1), upserts=docs)
    return path

def test_small_matrices_are_scanned_mid_sized_ones_transposed_large_ones_prefiltered_larger_ones_screened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = clustered(100, 8)
    assert type(vector_search(small)) is ExactScan and not choice.scans_columns(small.nbytes)
    monkeypatch.setattr(choice, "COLUMNS_MIN_BYTES", 50 * 8 * 4)  # mid-sized: a transposed copy
    assert type(vector_search(small)) is ColumnScan and choice.scans_columns(small.nbytes)
    assert type(vector_search(small[:49])) is ExactScan
    monkeypatch.setattr(choice, "QUIET_MIN_BYTES", 50 * 8 * 4)
    assert not choice.scans_columns(small.nbytes, quiet=True)  # a reader whose model embeds: 8 bits
    monkeypatch.setattr(choice, "PREFILTER_MIN_BYTES", 50 * 8 * 4)
    assert type(vector_search(small)) is Int8Prefilter
    monkeypatch.setattr(choice, "SCREEN_MIN_BYTES", 80 * 8 * 4)
    assert type(vector_search(small)) is PrincipalScreen
    assert type(vector_search(clustered(100, 4))) is Int8Prefilter  # too few dimensions to split
    monkeypatch.setattr(choice, "SCREEN_MAX_DIMENSION", 7)  # eigh grows as d**3
    assert type(vector_search(small)) is Int8Prefilter


def test_a_reader_whose_model_needs_the_cores_prefilters_from_a_smaller_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its next query's embedding would share the cores with numpy's spinning BLAS threads.
    vecs = clustered(100, 32, seed=6)
    path = custom_index(tmp_path, vecs)
    monkeypatch.setattr(choice, "QUIET_MIN_BYTES", 50 * 32 * 4)
    busy = CustomEmbedder(dimension=32)
    busy.needs_the_cores = True
    with IndexReader(path) as plain, IndexReader(path, embedder=busy) as quiet:
        assert plain.wait_ready() and quiet.wait_ready()
        assert type(plain._vectors) is ExactScan and type(quiet._vectors) is Int8Prefilter
        for q in queries(vecs, 10, seed=7):
            options = QueryOptions(top_k=5, alpha=1.0, embedding=q.tolist())
            assert [d.id for d in quiet.query("", options).docs] == [d.id for d in plain.query("", options).docs]
    assert get_embedder("moss-minilm").needs_the_cores  # a transformer on every core
    assert not get_embedder("hashed-ngrams-256").needs_the_cores


@pytest.mark.parametrize("search", sorted(SEARCHES))
def test_a_reader_answers_the_same_with_and_without_its_faster_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, search: str
) -> None:
    rows = 3000
    vecs = clustered(rows, 32, seed=4)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    docs = [
        DocumentInfo(
            id=f"d{i}",
            text=f"{words[i % 8]} {words[(i * 7) % 8]} note {i}",
            metadata={"group": str(i % 5)},
            embedding=vecs[i].tolist(),
        )
        for i in range(rows)
    ]
    path = tmp_path / "v.sqlite"
    custom = get_embedder("custom", dimension=32)
    build_version(path, embedder=custom, index_name="v", version=Version(1), upserts=docs)
    with IndexReader(path) as scanned:
        assert type(scanned._vectors) is ExactScan
        if search == "columns":
            monkeypatch.setattr(choice, "COLUMNS_MIN_BYTES", 1000 * 32 * 4)
        else:
            monkeypatch.setattr(choice, "PREFILTER_MIN_BYTES", 1000 * 32 * 4)
        if search == "screen":
            monkeypatch.setattr(choice, "SCREEN_MIN_BYTES", 1000 * 32 * 4)
        with IndexReader(path) as prefiltered:
            assert prefiltered.wait_ready()
            assert type(prefiltered._vectors) is SEARCHES[search]
            for q in queries(vecs, 20, seed=5):
                for alpha, flt in [(1.0, None), (0.5, None), (0.8, {"field": "group", "condition": {"$eq": "3"}})]:
                    options = QueryOptions(top_k=10, alpha=alpha, filter=flt, embedding=q.tolist())
                    want = scanned.query("gamma note", options).docs
                    got = prefiltered.query("gamma note", options).docs
                    assert [d.score for d in got] == pytest.approx([d.score for d in want], abs=1e-5)
                    assert [d.id for d in got] == [d.id for d in want]


def test_a_reader_makes_its_transposed_copy_once_it_has_answered_a_few_queries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process that asks one question does not pay for the copy (CPU, and the vectors twice).
    vecs = clustered(200, 16, seed=8)
    path = custom_index(tmp_path, vecs)
    monkeypatch.setattr(choice, "COLUMNS_MIN_BYTES", 100 * 16 * 4)
    monkeypatch.setattr(choice, "COLUMNS_AFTER_QUERIES", 3)
    options = [QueryOptions(top_k=3, alpha=1.0, embedding=q.tolist()) for q in queries(vecs, 3, seed=9)]
    with IndexReader(path) as reader, IndexReader(path, search=False) as documents_only:
        answers = []
        for i, option in enumerate(options):
            assert type(reader._vectors) is ExactScan and not reader._search_ready.is_set(), i
            answers.append(reader.query("", option).docs)
            documents_only.query("", option)
        assert reader._search_ready.wait(10) and type(reader._vectors) is ColumnScan
        for option, answer in zip(options, answers):  # the same, but for the last bits of a score
            got = reader.query("", option).docs
            assert [d.id for d in got] == [d.id for d in answer]
            assert [d.score for d in got] == pytest.approx([d.score for d in answer], abs=1e-6)
        assert documents_only.wait_ready(timeout_s=0) and type(documents_only._vectors) is ExactScan
        with IndexReader(path) as asked:  # wait_ready makes it now
            assert asked.wait_ready() and type(asked._vectors) is ColumnScan
    closed = IndexReader(path)
    closed.close()
    assert closed.wait_ready(timeout_s=10) and type(closed._vectors) is ExactScan
