"""Exact cosine top-k over the hydrated matrix, read through an 8-bit copy.

Why not just ``M @ q``: that product reads the whole float32 matrix for every
query and is bound by memory bandwidth (154 MB at 100k x 384: ~6 ms on 2
cores). An 8-bit copy is a quarter of the bytes, and onnxruntime's integer
matmul (MLAS) reads it in ~1.4 ms. Rounding to 8 bits moves each score by at
most a bound we can compute per row and query, so the prefilter keeps every row
whose best case can still reach the k-th best worst case, and rescores those
few (tens to a few thousand) in float32. At 100k x 384 that is 1.7 ms against
7.5 ms for the float32 product, measured on 2 cores. The answer is the float32 answer,
not an approximation: no recall to tune, nothing for a user to decide.

The bound. Scales ``s_j`` per dimension map the matrix to integers
``m_ij = s_j * (M_ij + d_ij)`` with ``|d_ij| <= 1/2``; the query's
``w_j = q_j * s_j`` maps likewise to ``t * (W_j + g_j)``, ``|g_j| <= 1/2``. Then

    q . m_i = t * (W . M_i) + t * (g . M_i) + (w . d_i)
    |q . m_i - t * y_i| <= (t / 2) * L1(M_i) + (1 / 2) * sum |w_j|

with ``y_i = W . M_i`` computed exactly in int32 (so scores in units of t/2 are
``2 y_i +- (L1_i + c)``, integers plus one constant per query).

Exactness of the integer product is checked, not assumed: on AVX2 without
VNNI, MLAS's u8 x s8 kernel saturates 16-bit pair sums, so the matrix is
stored as u8 (zero point 128) and the u8 x u8 kernel is used; ``product_is_exact``
runs both extremes once per process and the reader scans float32 if it fails.

From SCREEN_MIN_BYTES (choice.py) the int8 copy is of the rows rotated onto their
principal directions, and most queries read only its first half (rotated.py). The
product itself is integer_product.py.
"""

from __future__ import annotations

import numpy as np

from .codes import ZERO_POINT, steps_for
from .exact import ExactScan
from .integer_product import integer_product_session

#: Float32 rescoring differs from a whole-matrix product in the last bits;
#: widen the bound by this much (in cosine) so such near-ties are rescored too.
FLOAT_SLACK = 1e-4
#: The k-th best group maximum is nearly the k-th best row when the best rows fall
#: in different groups; 16 groups per wanted row make that likely.
GROUPS_PER_K = 16
MIN_GROUP = 64  # rows; below, a partition of every score costs as little
QUANTISE_BLOCK = 4096


class Int8Prefilter(ExactScan):
    """Integer scores for every row, float32 rescoring of the rows that may be in the top k."""

    def __init__(self, matrix: np.ndarray) -> None:
        super().__init__(matrix)
        self.scales = steps_for(matrix)
        self._quantised, self.l1 = quantise(matrix, self.scales)
        self.l1_max = int(self.l1.max()) if len(self.l1) else 0
        self._session = integer_product_session(self._quantised)

    def top(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        a, t, shares = quantised_query(q, self.scales)
        if a is None:
            return super().top(q, k, mask)
        y = self._session.run(None, {"q": a})[0][0]
        l1 = self.l1
        allowed = None
        if mask is not None:
            allowed = np.flatnonzero(mask)
            y, l1 = y[allowed], l1[allowed]
        k = min(k, len(y))
        if k <= 0:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float32)
        rows = rows_in_reach(y, l1, self.l1_max, float(shares.sum()) + 2.0 * FLOAT_SLACK / t, k)
        return self.rescored(q, rows if allowed is None else allowed[rows], k)


def rows_in_reach(y: np.ndarray, l1: np.ndarray, l1_max: float, c: float, k: int) -> np.ndarray:
    """Positions in ``y`` whose upper bound reaches the k-th best lower bound, where
    ``2y - L1 - c <= 2 q.m / t <= 2y + L1 + c`` (units of t/2; 0 < k <= len(y)).

    If k rows have y >= v, their lower bounds are >= 2v - L1max - c, and so is the
    k-th best row's; a row reaches that only if 2y + L1 + c >= 2v - L1max - c,
    which needs y >= v - L1max - c. Only these "near" rows can, and the k-th best
    lower bound among them is the one over all rows: the same rows are rescored
    as with bounds computed for every row, after two passes over y, not five.
    """
    v = reached_by_k(y, k)
    near = np.flatnonzero(y >= v - l1_max - c)
    twice, l1_near = 2 * y[near].astype(np.int64), l1[near]
    low = twice - l1_near
    kth_low = float(np.partition(low, len(low) - k)[len(low) - k])
    return near[twice + l1_near >= kth_low - 2.0 * c]


def reached_by_k(y: np.ndarray, k: int) -> int:
    """A value that at least ``k`` entries of ``y`` reach, close to the k-th largest: the
    smallest of ``leaders(y, k)``."""
    return int(y[leaders(y, k)].min())


def leaders(y: np.ndarray, m: int) -> np.ndarray:
    """``m`` positions with high ``y`` (0 < m <= len(y)): the best row of each of
    GROUPS_PER_K * m groups of rows, then the m best of those. One pass, no copy: at
    100k rows ~0.1 ms less than np.partition's copy and select after other work had
    evicted y from the caches."""
    groups = GROUPS_PER_K * m
    size = len(y) // groups
    if size < MIN_GROUP:
        return np.argpartition(y, len(y) - m)[len(y) - m :]
    best = y[: groups * size].reshape(groups, size).argmax(axis=1)
    best += np.arange(0, groups * size, size)
    return best[np.argpartition(y[best], groups - m)[groups - m :]]


def quantised_query(v: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray | None, float, np.ndarray]:
    """(u8 row for the product, t, |w| / t) for a query against rows quantised with
    ``scales``: ``w = v * scales`` maps to ``t * (W + g)`` with ``|g| <= 1/2``, and the
    sum of ``|w| / t`` is the query's share ``c`` of the bound. The row is None for a
    query that is 0 there."""
    w = v * scales  # float64, as the scales are
    magnitude = np.abs(w)
    peak = float(magnitude.max())
    if peak == 0.0:
        return None, 0.0, magnitude
    t = peak / 127.0
    return (np.rint(w / t) + ZERO_POINT).astype(np.uint8)[None, :], t, magnitude / t


def quantise(matrix: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dimension x rows u8 with zero point 128, each row's L1 norm in those units).

    Transposed because the matmul wants the constant on the right. In blocks of
    rows so each step works in cache: ~3x faster than whole-matrix passes at 100k.
    """
    rows, dim = matrix.shape
    inverse = (1.0 / scales).astype(np.float32)
    quantised = np.empty((dim, rows), dtype=np.uint8)
    l1 = np.empty(rows, dtype=np.int32)
    ones = np.ones(dim, dtype=np.float32)
    for start in range(0, rows, QUANTISE_BLOCK):
        block = matrix[start : start + QUANTISE_BLOCK] * inverse
        np.rint(block, out=block)
        quantised[:, start : start + QUANTISE_BLOCK] = (block + ZERO_POINT).astype(np.uint8).T
        np.abs(block, out=block)
        l1[start : start + QUANTISE_BLOCK] = block @ ones  # integers < 2**24: exact in float32
    return quantised, l1
