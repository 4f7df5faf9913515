"""Ranking: one index's hybrid score (``rank``), and reciprocal rank fusion across indexes.

Top-k selection itself is topk.py. The hybrid score:

    score(d) = alpha * max(cos(q, d), 0) + (1 - alpha) * bm25(d) / max(bm25 over the keyword candidates)

Both parts lie in [0, 1], so the score does too. The semantic part is the
absolute cosine similarity (embeddings are unit length), so a score threshold
keeps its meaning across queries; BM25 has no absolute scale, so the keyword
part is relative to the best keyword hit of this query. With 0 < alpha < 1 the
keyword candidates are the best ``CANDIDATES`` hits; a document missing from that
list scores 0 there. Its vector candidates are only the best ``top_k`` by cosine,
and every keyword candidate's cosine is computed exactly (vectors/): a document
in neither list scores ``alpha * cos``, no more than each of the ``top_k`` vector
candidates scores, so a longer vector list could never change the top k. (Asking
the int8 prefilter for 100 rows instead of 5 cost ~1 ms more at 100k documents.)

A query with nothing to search by (no keyword hit, and no vector or a zero one,
e.g. the text "?!") gets no documents: arbitrary ones at score 0 looked like an
answer (issue #12).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..types import QueryResultDocumentInfo

if TYPE_CHECKING:
    from .vectors.exact import VectorSearch

CANDIDATES = 100
# The usual RRF constant: damps the weight of the very first ranks.
RRF_K = 60


def rank(
    alpha: float,
    top_k: int,
    vector: np.ndarray | None,
    vectors: VectorSearch,
    keyword: Callable[[int], tuple[np.ndarray, np.ndarray]],
    mask: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Final (positions, scores), best first, at most ``top_k``: the vector and keyword
    candidates (``keyword(n)`` gives the best n keyword hits), fused."""
    # A zero vector (a query the model found no signal in) is similar to nothing: it
    # offers no candidates, rather than every document at cosine 0 in arbitrary order.
    has_vector = vector is not None and bool(vector.any())
    none = (np.empty(0, dtype=np.intp), np.empty(0))
    if alpha >= 1.0 and vector is not None:  # vector only (a given embedding, usually): nothing to fuse
        if not has_vector:
            return none
        positions, cosines = vectors.top(vector, top_k, mask)
        return positions, cosines.clip(0.0, 1.0)
    keyword_want = max(top_k, CANDIDATES) if 0.0 < alpha < 1.0 else top_k
    vec_positions, vec_scores = vectors.top(vector, top_k, mask) if has_vector else none
    kw_positions, kw_scores = keyword(keyword_want) if alpha < 1.0 else none
    kw_norm = kw_scores / kw_scores[0] if len(kw_scores) and kw_scores[0] > 0 else np.zeros(len(kw_scores))
    if alpha <= 0.0 or vector is None:
        return kw_positions[:top_k], kw_norm[:top_k].clip(0.0, 1.0)
    # At most top_k + CANDIDATES positions: a set is cheaper than np.union1d (whose first
    # call also pays a lazy numpy import of ~90 ms, a cold-start cost users would see).
    union = np.fromiter(sorted(set(vec_positions.tolist()) | set(kw_positions.tolist())), dtype=np.intp)
    if not len(union):
        return none
    keyword_part = np.zeros(len(union))
    keyword_part[np.searchsorted(union, kw_positions)] = kw_norm
    combined = alpha * vectors.similarities(vector, union).clip(0.0, 1.0) + (1.0 - alpha) * keyword_part
    order = np.argsort(-combined, kind="stable")[:top_k]
    return union[order], combined[order].clip(0.0, 1.0)


def reciprocal_rank_fusion(
    lists: list[list[QueryResultDocumentInfo]], top_k: int
) -> list[QueryResultDocumentInfo]:
    """Merge ranked lists from different indexes: score = (RRF_K + 1) / (RRF_K + rank),
    so a first place scores 1.0; ties go to the higher original score. Documents
    keep their ``index_name``, as ids may repeat across indexes."""
    scored = []
    for docs in lists:
        for rank, doc in enumerate(docs, start=1):
            scored.append(((RRF_K + 1) / (RRF_K + rank), doc.score, doc))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [dataclasses.replace(doc, score=rrf) for rrf, _, doc in scored[:top_k]]
