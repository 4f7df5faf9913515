"""Hybrid ranking returns the top k of the documented score over every document.

``rank`` looks at only ``top_k`` vector candidates; these tests score every row
by the README's formula and check nothing outside that short list was missed.
"""

from __future__ import annotations

import numpy as np
import pytest

from mosslite.index.fusion import CANDIDATES, rank
from mosslite.index.topk import FEW, top_positions
from mosslite.index.principal import PrincipalScreen
from mosslite.index.vectors import ExactScan, Int8Prefilter

from .test_vectors import clustered, queries


def keyword_list(rng: np.random.Generator, rows: int, mask: np.ndarray | None, near: np.ndarray):
    """A keyword result: up to CANDIDATES positions, best first, half of them among
    the rows closest to the query (so both lists overlap, as real hits do)."""
    allowed = np.flatnonzero(mask) if mask is not None else np.arange(rows)
    close = [p for p in near if mask is None or mask[p]][: CANDIDATES // 2]
    others = rng.choice(allowed, size=min(len(allowed), CANDIDATES), replace=False)
    positions = np.array(list(dict.fromkeys([*close, *others.tolist()]))[:CANDIDATES], dtype=np.intp)
    scores = np.sort(rng.gamma(2.0, 3.0, len(positions)))[::-1]
    return positions, scores


def reference(matrix, q, alpha, kw_positions, kw_scores, mask, top_k):
    """score(d) = alpha * max(cos, 0) + (1 - alpha) * bm25 / best bm25, over every allowed row."""
    keyword_part = np.zeros(len(matrix))
    if len(kw_scores):
        keyword_part[kw_positions] = kw_scores / kw_scores[0]
    scores = alpha * np.clip(matrix @ q, 0.0, 1.0) + (1.0 - alpha) * keyword_part
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    order = np.argsort(-scores, kind="stable")[: min(top_k, len(matrix) if mask is None else int(mask.sum()))]
    return order, scores[order]


@pytest.mark.parametrize("search", [ExactScan, Int8Prefilter, PrincipalScreen.build])
@pytest.mark.parametrize("top_k", [1, 5, 60, 150])
@pytest.mark.parametrize("share", [None, 0.3, 0.002])
def test_hybrid_top_k_is_the_top_k_over_every_document(search, top_k: int, share: float | None) -> None:
    matrix = clustered(4000, 32, seed=7)
    vectors = search(matrix)
    rng = np.random.default_rng(top_k)
    mask = None if share is None else rng.random(len(matrix)) < share
    for q in queries(matrix, 12, seed=8):
        near = np.argsort(-(matrix @ q))[: CANDIDATES * 2]
        kw = keyword_list(rng, len(matrix), mask, near)
        for alpha in (0.2, 0.5, 0.8, 0.95):
            asked = []

            def keyword(want: int):
                asked.append(want)
                return kw[0][:want], kw[1][:want]

            got_positions, got_scores = rank(alpha, top_k, q, vectors, keyword, mask)
            want_positions, want_scores = reference(matrix, q, alpha, *kw, mask, top_k)
            assert asked == [max(top_k, CANDIDATES)]
            np.testing.assert_allclose(got_scores, want_scores, atol=1e-5)
            # Positions agree except where two scores tie to float precision.
            differ = got_positions != want_positions
            assert np.all(np.abs(got_scores[differ] - want_scores[differ]) < 1e-5)


def test_keyword_and_vector_only_ask_for_top_k() -> None:
    matrix = clustered(500, 16, seed=9)
    q = queries(matrix, 2, seed=9)[0]
    asked = []

    def keyword(want: int):
        asked.append(want)
        return np.arange(want, dtype=np.intp), np.linspace(2.0, 1.0, want)

    positions, scores = rank(0.0, 7, q, ExactScan(matrix), keyword, None)
    assert asked == [7] and positions.tolist() == list(range(7)) and scores[0] == 1.0
    positions, scores = rank(1.0, 7, q, ExactScan(matrix), keyword, None)
    assert asked == [7]  # not called
    np.testing.assert_allclose(scores, np.sort(matrix @ q)[::-1][:7], atol=1e-6)


@pytest.mark.parametrize("k", [1, 3, 7, 8, 20])
@pytest.mark.parametrize("masked", [False, True])
def test_top_positions_are_the_best_scores_best_first(k: int, masked: bool) -> None:
    # Many ties, at the cut too: any of the tied rows may be chosen, but the scores must be the top k.
    scores = np.array([0.5, 0.9, 0.5, -1.0, 0.9, 0.1, 0.5, 0.0], dtype=np.float32)
    mask = np.array([True, True, False, True, True, True, True, False]) if masked else None
    allowed = np.flatnonzero(mask) if masked else np.arange(len(scores))
    positions = top_positions(scores, mask, k)
    assert len(positions) == min(k, len(allowed)) == len(set(positions.tolist()))
    assert set(positions.tolist()) <= set(allowed.tolist())
    assert scores[positions].tolist() == sorted(scores[allowed], reverse=True)[: len(positions)]


def test_ties_go_to_the_earliest_rows_so_a_shorter_top_k_is_a_prefix() -> None:
    scores = np.array([0.2, 0.7, 0.7, 0.7, 0.9, 0.7, 0.1, 0.7, 0.7, 0.7], dtype=np.float32)
    assert top_positions(scores, None, 3).tolist() == [4, 1, 2]
    longest = top_positions(scores, None, len(scores)).tolist()
    assert longest == [4, 1, 2, 3, 5, 7, 8, 9, 0, 6]
    for k in range(1, len(scores) + 1):
        assert top_positions(scores, None, k).tolist() == longest[:k]
    assert top_positions(np.full(1000, 0.5), None, 5).tolist() == [0, 1, 2, 3, 4]


def test_small_and_large_k_agree_with_a_sort_and_leave_the_scores_alone() -> None:
    # Up to FEW results come from repeated argmax, more from a partition: both must be
    # the order of a stable sort, with -inf rows (which argmax cannot tell from the
    # rows it has hidden) and a read-only input that must come back unchanged.
    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(1, 40))
        scores = rng.integers(0, 4, n).astype(np.float32)
        if trial % 3 == 0:
            scores[rng.integers(0, n, size=max(1, n // 2))] = -np.inf
        scores.setflags(write=trial % 2 == 0)
        before = scores.copy()
        for k in range(1, FEW + 3):
            want = sorted(range(n), key=lambda i: (-scores[i], i))[:k]
            assert top_positions(scores, None, k).tolist() == want, (scores, k)
        np.testing.assert_array_equal(scores, before)
