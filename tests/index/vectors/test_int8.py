"""The int8 searches return exactly what a float32 scan returns, on the real onnxruntime kernel:
the int8 prefilter over whole rows (int8.py), and the screen on rotated rows (rotated.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mosslite.index.vectors.codes import ZERO_POINT
from mosslite.index.vectors.exact import ExactScan
from mosslite.index.vectors.int8 import Int8Prefilter, quantise
from mosslite.index.vectors.integer_product import product_is_exact
from mosslite.index.vectors.rotated import PrincipalScreen

from .matrices import assert_same, clustered, queries, unit_rows

SEARCHES = {"int8": Int8Prefilter, "screen": PrincipalScreen.build}


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
    assert product_is_exact()


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
    quantised = int8._quantised.astype(np.int64) - ZERO_POINT
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
