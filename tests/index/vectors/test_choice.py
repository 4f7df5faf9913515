"""Which vector search serves a matrix (choice.py): by size, and for a reader whose model
needs the cores; whichever it picks, a reader answers as with the float32 scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from mosslite import DocumentInfo, IndexReader, QueryOptions, Version, build_version, get_embedder
from mosslite.embeddings.custom import CustomEmbedder
from mosslite.index.vectors import choice
from mosslite.index.vectors.choice import vector_search
from mosslite.index.vectors.exact import ExactScan
from mosslite.index.vectors.int8 import Int8Prefilter
from mosslite.index.vectors.rotated import PrincipalScreen

from .matrices import clustered, queries

SEARCHES = {"int8": Int8Prefilter, "screen": PrincipalScreen.build}


def test_small_matrices_are_scanned_large_ones_prefiltered_and_larger_ones_screened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = clustered(100, 8)
    assert type(vector_search(small)) is ExactScan
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
    docs = [DocumentInfo(id=f"d{i}", text=f"note {i}", embedding=v.tolist()) for i, v in enumerate(vecs)]
    path = tmp_path / "v.sqlite"
    build_version(path, embedder=get_embedder("custom", dimension=32), index_name="v", version=Version(1), upserts=docs)
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
def test_a_reader_answers_the_same_with_and_without_the_prefilter(
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
        monkeypatch.setattr(choice, "PREFILTER_MIN_BYTES", 1000 * 32 * 4)
        if search == "screen":
            monkeypatch.setattr(choice, "SCREEN_MIN_BYTES", 1000 * 32 * 4)
        with IndexReader(path) as prefiltered:
            assert prefiltered.wait_ready()
            assert type(prefiltered._vectors) is {"int8": Int8Prefilter, "screen": PrincipalScreen}[search]
            for q in queries(vecs, 20, seed=5):
                for alpha, flt in [(1.0, None), (0.5, None), (0.8, {"field": "group", "condition": {"$eq": "3"}})]:
                    options = QueryOptions(top_k=10, alpha=alpha, filter=flt, embedding=q.tolist())
                    want = scanned.query("gamma note", options).docs
                    got = prefiltered.query("gamma note", options).docs
                    assert [d.score for d in got] == pytest.approx([d.score for d in want], abs=1e-5)
                    assert [d.id for d in got] == [d.id for d in want]
