"""The int8 searches return exactly what a float32 scan returns, on the real onnxruntime kernel:
the int8 prefilter over whole rows, and the screen on rotated rows (principal.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mosslite import DocumentInfo, IndexReader, QueryOptions, Version, build_version, get_embedder
from mosslite.embeddings.custom import CustomEmbedder
from mosslite.index import vectors
from mosslite.index.principal import PrincipalScreen
from mosslite.index.searches import vector_search
from mosslite.index.vectors import ExactScan, Int8Prefilter, quantise

SEARCHES = {"int8": Int8Prefilter, "screen": PrincipalScreen.build}


def unit_rows(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def clustered(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    """Rows near a few centres, as embeddings of related documents are: many close scores."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, dim))
    return unit_rows(centres[rng.integers(0, 8, rows)] + 0.6 * rng.standard_normal((rows, dim)))


def queries(matrix: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    """Half near a stored row (a clear winner), half random (flat scores: the hard case for a bound)."""
    rng = np.random.default_rng(seed)
    near = matrix[rng.integers(0, len(matrix), count // 2)] + 0.05 * rng.standard_normal((count // 2, matrix.shape[1]))
    return unit_rows(np.vstack([near, rng.standard_normal((count - count // 2, matrix.shape[1]))]))


def assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_allclose(got[1], want[1], atol=1e-5)
    # Positions agree except where two scores tie to float precision.
    differ = got[0] != want[0]
    assert np.all(np.abs(got[1][differ] - want[1][differ]) < 1e-5)


@pytest.fixture(scope="module")
def matrix() -> np.ndarray:
    return clustered(6000, 48)


@pytest.fixture(scope="module", params=sorted(SEARCHES))
def prefilter(matrix: np.ndarray, request: pytest.FixtureRequest) -> ExactScan:
    return SEARCHES[request.param](matrix)


@pytest.fixture(scope="module")
def int8(matrix: np.ndarray) -> Int8Prefilter:
    return Int8Prefilter(matrix)


def test_this_machines_integer_kernel_is_exact() -> None:
    assert vectors.product_is_exact()


@pytest.mark.parametrize("k", [1, 5, 100, 1000])
def test_top_k_equals_the_float32_scan(matrix: np.ndarray, prefilter: ExactScan, k: int) -> None:
    exact = ExactScan(matrix)
    for q in queries(matrix, 40):
        assert_same(prefilter.top(q, k, None), exact.top(q, k, None))


@pytest.mark.parametrize("share", [0.5, 0.01, 0.0005, 0.0])
def test_filtered_top_k_equals_the_float32_scan(matrix: np.ndarray, prefilter: ExactScan, share: float) -> None:
    rng = np.random.default_rng(2)
    mask = rng.random(len(matrix)) < share
    exact = ExactScan(matrix)
    for q in queries(matrix, 20):
        got = prefilter.top(q, 5, mask)
        assert_same(got, exact.top(q, 5, mask))
        assert len(got[0]) == min(5, int(mask.sum())) and mask[got[0]].all()


def test_k_larger_than_the_index_returns_every_row(matrix: np.ndarray, prefilter: ExactScan) -> None:
    q = queries(matrix, 2)[0]
    positions, scores = prefilter.top(q, len(matrix) + 10, None)
    assert sorted(positions.tolist()) == list(range(len(matrix)))
    assert np.all(np.diff(scores) <= 0)


def test_the_error_bound_holds_for_every_row(matrix: np.ndarray, int8: Int8Prefilter) -> None:
    # The guarantee rests on |q.m - t*y| <= (t/2) * (L1 + sum|w|/t); check it directly.
    quantised = int8._quantised.astype(np.int64) - vectors.ZERO_POINT
    for q in queries(matrix, 20):
        w = q.astype(np.float64) * int8.scales
        t = np.abs(w).max() / 127.0
        y = (np.rint(w / t).astype(np.int64)) @ quantised
        bound = (t / 2.0) * (int8.l1 + np.abs(w).sum() / t)
        assert np.all(np.abs(matrix.astype(np.float64) @ q - t * y) <= bound)


def test_rows_at_the_extremes_and_empty_dimensions() -> None:
    # Values at the scale's limits round to +-127, and a dimension that is 0 everywhere
    # must not divide by zero; near-duplicate rows make near-ties.
    rng = np.random.default_rng(3)
    m = clustered(500, 16, seed=3)
    m[:, 5] = 0.0
    m[:50] = m[0] + 1e-6 * rng.standard_normal((50, 16))
    m = unit_rows(m)
    exact, prefilter, screen = ExactScan(m), Int8Prefilter(m), PrincipalScreen.build(m)
    for q in [m[0], -m[0], *queries(m, 10)]:
        assert_same(prefilter.top(q, 10, None), exact.top(q, 10, None))
        assert_same(screen.top(q, 10, None), exact.top(q, 10, None))
    quantised, l1 = quantise(m, prefilter.scales)
    assert quantised.shape == (16, 500) and quantised.dtype == np.uint8
    assert np.array_equal(l1, np.abs(quantised.astype(np.int32) - 128).sum(axis=0))


def test_rounding_at_its_worst_still_finds_the_true_top_k() -> None:
    # Built so rounding errs by nearly half a step in every coordinate, in opposite
    # directions for two kinds of rows: "a" (50.49 everywhere, true score higher)
    # rounds down to 50, the "b" rows (51.0 and 49.9 alternating) round up to an
    # average of 50.5. Integer scores put "a" below every "b"; only keeping every
    # row within the full bound of the k-th finds it. (Random data errs by ~15% of
    # the bound, so it cannot tell a sound bound from one that is much too tight.)
    dim = 32
    peak = np.full(dim, 127.0)  # sets every scale to exactly 1
    a = np.full(dim, 50.49)
    bs = [np.where(np.arange(dim) % 2 == 0, 51.0 - 0.001 * i, 49.9) for i in range(30)]
    m = np.vstack([peak, bs, a]).astype(np.float32)
    q = np.full(dim, 1 / np.sqrt(dim), dtype=np.float32)  # quantises without error
    exact = ExactScan(m)
    want = exact.top(q, 3, None)
    assert len(m) - 1 in want[0].tolist()  # "a" is in the true top 3
    for search in SEARCHES.values():
        assert_same(search(m).top(q, 3, None), want)


def test_similarities_are_float32_cosines(matrix: np.ndarray, prefilter: ExactScan) -> None:
    q = queries(matrix, 2)[1]
    positions = np.array([7, 3, 4000])
    np.testing.assert_allclose(prefilter.similarities(q, positions), matrix[positions] @ q, rtol=1e-6)


def test_small_matrices_are_scanned_large_ones_prefiltered_and_larger_ones_screened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = clustered(100, 8)
    assert type(vector_search(small)) is ExactScan
    monkeypatch.setattr(vectors, "PREFILTER_MIN_BYTES", 50 * 8 * 4)
    assert type(vector_search(small)) is Int8Prefilter
    monkeypatch.setattr(vectors, "SCREEN_MIN_BYTES", 80 * 8 * 4)
    assert type(vector_search(small)) is PrincipalScreen
    assert type(vector_search(clustered(100, 4))) is Int8Prefilter  # too few dimensions to split
    monkeypatch.setattr(vectors, "SCREEN_MAX_DIMENSION", 7)  # eigh grows as d**3
    assert type(vector_search(small)) is Int8Prefilter


def test_a_reader_whose_model_needs_the_cores_prefilters_from_a_smaller_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its next query's embedding would share the cores with numpy's spinning BLAS threads.
    vecs = clustered(100, 32, seed=6)
    docs = [DocumentInfo(id=f"d{i}", text=f"note {i}", embedding=v.tolist()) for i, v in enumerate(vecs)]
    path = tmp_path / "v.sqlite"
    build_version(path, embedder=get_embedder("custom", dimension=32), index_name="v", version=Version(1), upserts=docs)
    monkeypatch.setattr(vectors, "QUIET_MIN_BYTES", 50 * 32 * 4)
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
        monkeypatch.setattr(vectors, "PREFILTER_MIN_BYTES", 1000 * 32 * 4)
        if search == "screen":
            monkeypatch.setattr(vectors, "SCREEN_MIN_BYTES", 1000 * 32 * 4)
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


def test_best_rows_side_by_side_are_found_as_exactly() -> None:
    # The cut starts from the best row of each group of rows; when the best rows
    # are neighbours (documents added together), most groups' best are far worse.
    rng = np.random.default_rng(4)
    matrix = clustered(20_000, 32, seed=4)
    target = unit_rows(rng.standard_normal((1, 32)))[0]
    matrix[7000:7040] = unit_rows(target + 0.05 * rng.standard_normal((40, 32)))
    exact = ExactScan(matrix)
    for search in SEARCHES.values():
        prefilter = search(matrix)
        for k in (1, 5, 30, 64):
            assert_same(prefilter.top(target, k, None), exact.top(target, k, None))
