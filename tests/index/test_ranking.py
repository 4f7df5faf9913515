"""Hybrid ranking returns the top k of the documented score over every document.

``rank`` looks at only ``top_k`` vector candidates; these tests score every row
by the README's formula and check nothing outside that short list was missed.
"""

from __future__ import annotations

import numpy as np
import pytest

from mosslite.index.ranking import CANDIDATES, rank
from mosslite.index.vectors.exact import ExactScan
from mosslite.index.vectors.int8 import Int8Prefilter
from mosslite.index.vectors.rotated import PrincipalScreen

from .vectors.matrices import clustered, queries


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
