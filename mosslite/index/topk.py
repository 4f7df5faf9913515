"""Top-k selection: the positions of the k best scores, best first, ties to the earlier row.

Shared by the vector searches (vectors/exact.py, int8.py, rotated.py) and the
keyword search (keyword.py), below all of them and the ranking (ranking.py).
"""

from __future__ import annotations

import numpy as np

#: Up to this many results, the top is found by repeated argmax instead of a partition.
FEW = 8


def top_positions(scores: np.ndarray, mask: np.ndarray | None, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores (best first), among rows allowed by ``mask``.
    Ties go to the earlier rows, so an answer repeats and a top 3 is the start of the top 10."""
    if mask is not None:
        # Only the allowed rows are partitioned: filling the others with -inf made
        # introselect crawl through the ties (~0.4 ms at 10k rows with 10% allowed).
        allowed = np.flatnonzero(mask)
        return allowed[top_positions(scores[allowed], None, k)]
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    if k <= FEW and k < n and scores.dtype.kind == "f":
        few = _top_few(scores, k)
        if few is not None:
            return few
    if k < n:
        # Partitioning ``scores`` itself, not ``-scores``: the negated copy cost half
        # of the ~34 us this took at 10k rows.
        part = np.argpartition(scores, n - k)[n - k :]
        cut = scores[part].min()
        at_cut = scores == cut
        if np.count_nonzero(at_cut) > 1:
            # Which tied rows the partition kept is arbitrary: keep the earliest.
            above = part[scores[part] > cut]
            part = np.concatenate([above, np.flatnonzero(at_cut)[: k - len(above)]])
        part.sort()
    else:
        part = np.arange(n)
    return part[np.argsort(-scores[part], kind="stable")]  # ties: earlier rows first


def _top_few(scores: np.ndarray, k: int) -> np.ndarray | None:
    """``k`` passes of argmax over a copy (SIMD; the first of equals wins, so ties go
    to earlier rows), each best hidden as -inf before the next. A top 5 over 10k rows:
    ~12 us, against ~24 for argpartition and ~10 for its tie check; at 100k, ~65
    against ~140. None when a best was itself -inf: hidden rows look the same."""
    work = scores.copy()
    best = np.empty(k, dtype=np.intp)
    for i in range(k):
        best[i] = position = work.argmax()
        if work[position] == -np.inf:
            return None
        work[position] = -np.inf
    return best
