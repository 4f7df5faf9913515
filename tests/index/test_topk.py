"""Top-k selection (topk.py): the best scores, best first, ties to the earlier row."""

from __future__ import annotations

import numpy as np
import pytest

from mosslite.index.topk import FEW, top_positions


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
