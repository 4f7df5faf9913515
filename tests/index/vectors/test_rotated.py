"""The screen on rotated rows (rotated.py): both of its paths return the float32 answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mosslite.index.vectors import codes, rotated
from mosslite.index.vectors.exact import ExactScan
from mosslite.index.vectors.rotated import PrincipalScreen

from .matrices import assert_same, clustered, queries, unit_rows


def low_rank(rows: int, dim: int, rank: int, seed: int = 0) -> np.ndarray:
    """Rows mostly inside a ``rank``-dimensional subspace, as text embeddings mostly are."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, rank)))[0].T
    return unit_rows(rng.standard_normal((rows, rank)) @ basis + 0.05 * rng.standard_normal((rows, dim)))


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which path each query took: "screened" (the head decided) or "whole" (head + tail)."""
    taken: list[str] = []
    screened = PrincipalScreen._screened

    def spy(self, *args, **kwargs):
        rows = screened(self, *args, **kwargs)
        taken.append("whole" if rows is None else "screened")
        return rows

    monkeypatch.setattr(PrincipalScreen, "_screened", spy)
    return taken


@pytest.mark.parametrize("k", [1, 5, 100, 1000])
def test_screened_and_whole_product_answers_equal_the_float32_scan(paths: list[str], k: int) -> None:
    matrix = low_rank(5000, 64, rank=12, seed=1)
    screen, exact = PrincipalScreen.build(matrix), ExactScan(matrix)
    # Near a row (the head decides) and random (most of a random vector is in the tail).
    for q in queries(matrix, 30, seed=2):
        assert_same(screen.top(q, k, None), exact.top(q, k, None))
    assert paths.count("screened") >= 10 and len(paths) < 30  # random ones skip the screen


def test_the_screen_reads_the_tail_when_too_many_rows_pass(paths: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    matrix = low_rank(3000, 32, rank=6, seed=3)
    screen, exact = PrincipalScreen.build(matrix), ExactScan(matrix)
    monkeypatch.setattr(rotated, "MAX_RESCORED", 3)
    for q in queries(matrix, 10, seed=4)[:5]:
        assert_same(screen.top(q, 5, None), exact.top(q, 5, None))
    assert paths == ["whole"] * 5


@pytest.mark.parametrize("share", [0.3, 0.004, 0.0])
def test_filtered_answers_on_both_paths(paths: list[str], share: float) -> None:
    matrix = low_rank(4000, 48, rank=8, seed=5)
    mask = np.random.default_rng(6).random(len(matrix)) < share
    screen, exact = PrincipalScreen.build(matrix), ExactScan(matrix)
    for q in queries(matrix, 16, seed=7):
        got = screen.top(q, 5, mask)
        assert_same(got, exact.top(q, 5, mask))
        assert len(got[0]) == min(5, int(mask.sum())) and mask[got[0]].all()


def test_values_past_the_sampled_steps_are_clipped_and_still_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Steps from a quarter of the sample's largest values: most rows clip somewhere.
    monkeypatch.setattr(codes, "SCALE_MARGIN", 0.25)
    matrix = clustered(3000, 40, seed=8)
    screen, exact = PrincipalScreen.build(matrix), ExactScan(matrix)
    rotated = matrix @ screen.rotation.T
    assert np.mean(np.abs(rotated / screen.scales).max(axis=1) > 127.5) > 0.5
    for q in queries(matrix, 20, seed=9):
        assert_same(screen.top(q, 10, None), exact.top(q, 10, None))


def test_the_screen_bound_holds_for_every_row() -> None:
    # What the screen rests on: q.x <= (t/2) * (2y + L1_head + c_head) + |q_tail| * |x_tail|.
    matrix = clustered(2000, 32, seed=10)
    screen = PrincipalScreen.build(matrix)
    head = screen.head
    quantised = screen._head.astype(np.int64) - 128
    for q in queries(matrix, 20, seed=11):
        rotated = (screen.rotation @ q).astype(np.float64)
        w = rotated * screen.scales
        t = np.abs(w).max() / 127.0
        y = np.rint(w[:head] / t).astype(np.int64) @ quantised
        head_bound = (t / 2.0) * (2 * y + screen.head_l1 + np.abs(w[:head]).sum() / t)
        tail_bound = math.sqrt(rotated[head:] @ rotated[head:]) * screen.tail_norms
        assert np.all(matrix.astype(np.float64) @ q <= head_bound + tail_bound + 1e-6)


def test_zero_rows_a_zero_query_and_rows_of_other_lengths() -> None:
    matrix = low_rank(1000, 24, rank=5, seed=12)
    matrix[::7] = 0.0  # a document whose embedding is all zeros
    matrix[1::7] *= 3.0  # and rows that are not unit length
    screen, exact = PrincipalScreen.build(matrix), ExactScan(matrix)
    for q in [np.zeros(24, dtype=np.float32), *queries(matrix, 10, seed=13)]:
        assert_same(screen.top(q, 7, None), exact.top(q, 7, None))


def test_threads_share_one_screen() -> None:
    # Queries keep their state in locals; the arrays and onnxruntime sessions are shared.
    from concurrent.futures import ThreadPoolExecutor

    matrix = low_rank(4000, 32, rank=6, seed=14)
    screen = PrincipalScreen.build(matrix)
    qs = queries(matrix, 64, seed=15)
    for q in qs:  # the random ones start the tail's session, made on a thread of its own
        screen.top(q, 5, None)
    assert screen._tail_ready.wait(30)
    alone = [screen.top(q, 5, None) for q in qs]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda q: screen.top(q, 5, None), qs))
    for got, want in zip(together, alone):
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.filterwarnings("error")
def test_rows_of_a_few_words_span_few_directions_and_still_encode_exactly() -> None:
    """Texts of six words only (hashed): most principal directions of the sample hold
    values so small that step = peak / 127 underflowed float32, 1 / step overflowed,
    and the codes came out NaN (a 200k-document `index create` warned of it)."""
    from mosslite.embeddings import get_embedder

    rng = np.random.default_rng(8)
    words = np.array(["alpha", "beta", "gamma", "delta", "refund", "ship"])
    texts = [" ".join(rng.choice(words, 30)) for _ in range(3000)]
    matrix = np.asarray(get_embedder("hashed-ngrams-256").embed(texts), dtype=np.float32)
    screen, exact = PrincipalScreen.build(matrix), ExactScan(matrix)
    for q in queries(matrix, 10, seed=9):
        assert_same(screen.top(q, 5, None), exact.top(q, 5, None))
