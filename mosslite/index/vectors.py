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

From SCREEN_MIN_BYTES the int8 copy is of the rows rotated onto their principal
directions, and most queries read only its first half (principal.py).
"""

from __future__ import annotations

import functools
import os
from typing import Protocol

import numpy as np

from .codes import ZERO_POINT, steps_for
from .topk import top_positions

#: Below this size the float32 matrix stays in the CPU's last-level cache, and a
#: plain product is as fast as the integer one plus its bookkeeping. Measured on
#: 2 cores (32 MB L3), top 5 / top 100, ms: 10k x 384 (15 MB) 0.20 / 0.20 float32
#: against 0.20 / 0.35 int8; 20k 0.56 / 0.60 against 0.33 / 0.54; 50k 2.9 against
#: 0.7 / 1.2; 100k 7.5 against 1.7 (benchmarks/query_latency.py has the 10k/100k rows).
PREFILTER_MIN_BYTES = 30 << 20
#: When the reader's embedder runs a model for every query text, the int8 search
#: takes over from this size: numpy's product over more than ~1.5k rows runs on
#: OpenBLAS's threads, which keep spinning for tens of ms afterwards and took a
#: core from the next query's embedding (measured at 10k x 384: top 5 then the
#: next MiniLM embedding 12.0 ms with numpy, 7.1 with the int8 search, whose
#: onnxruntime threads sleep; 1k rows: 6.2 and 6.0). Alone, the int8 search is the
#: slower one at this size (0.39 against 0.28 ms at 10k), so readers whose
#: vectors come from the caller keep numpy's product up to PREFILTER_MIN_BYTES.
QUIET_MIN_BYTES = 2 << 20
#: From this size (43k x 384) screening on half of each rotated row (principal.py)
#: pays. Top 5 p50, int8 against the screen, benchmark vectors after 64 MB of other
#: work, ms: 20k 0.66 / 0.69, 35k 1.03 / 0.95, 50k 1.29 / 1.12, 70k 1.60 / 1.29; its
#: extra open cost grows with size: +0.03 s at 20k, +0.23 at 70k.
SCREEN_MIN_BYTES = 64 << 20
#: Finding the principal directions costs ~40 ms at 384 dimensions, growing as d^3;
#: with very few dimensions there is little to split.
SCREEN_MAX_DIMENSION = 1024
SCREEN_MIN_DIMENSION = 8
#: Float32 rescoring differs from a whole-matrix product in the last bits;
#: widen the bound by this much (in cosine) so such near-ties are rescored too.
FLOAT_SLACK = 1e-4
#: The k-th best group maximum is nearly the k-th best row when the best rows fall
#: in different groups; 16 groups per wanted row make that likely.
GROUPS_PER_K = 16
MIN_GROUP = 64  # rows; below, a partition of every score costs as little
QUANTISE_BLOCK = 4096
THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class VectorSearch(Protocol):
    def top(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(positions, cosines) of the ``k`` rows most similar to ``q``, best first."""
        ...

    def similarities(self, q: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Float32 cosines of ``q`` with the given rows (hybrid fusion needs them for keyword hits)."""
        ...


class ExactScan:
    """One float32 matrix-vector product over every row."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix

    def top(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        sims = self.matrix @ q
        positions = top_positions(sims, mask, k)
        return positions, sims[positions]

    def similarities(self, q: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return self.matrix[positions] @ q

    def rescored(self, q: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` of ``rows`` by float32 cosine (the searches that bound first end here)."""
        sims = self.matrix[rows] @ q
        best = top_positions(sims, None, k)
        return rows[best], sims[best]


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


def integer_product_session(quantised: np.ndarray):  # -> onnxruntime.InferenceSession
    """An onnxruntime session computing q (1 x d, u8) @ quantised (d x n, u8) in int32,
    both with zero point 128. The matrix is a constant, so onnxruntime packs it once.

    The matrix is handed over as an "external initializer" (an OrtValue over
    our array): serialising 38 MB into the graph and parsing it back cost ~100 ms
    more at 100k rows. The caller keeps ``quantised`` alive as long as the session.
    The one-node graph is written by ``_matmul_integer_model``: the ``onnx``
    package took ~1 s to import, more than opening a 100k-document index.
    """
    import onnxruntime as ort

    dim, rows = quantised.shape
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    # Threads sleep between queries instead of spinning: a spinning pool takes a
    # core from the query embedder and from other indexes' queries.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_external_initializers(["m"], [ort.OrtValue.ortvalue_from_numpy(quantised)])
    return ort.InferenceSession(_matmul_integer_model(dim, rows), options, providers=["CPUExecutionProvider"])


# -- the ONNX graph of one MatMulInteger, as protobuf bytes (field numbers from onnx.proto)

_UINT8, _INT32 = 2, 6  # TensorProto.DataType
_EXTERNAL = 1  # TensorProto.DataLocation


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    """One protobuf field: a varint for an int, length-delimited for bytes or text."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _tensor_type(elem_type: int, dims: tuple[int, ...]) -> bytes:
    shape = b"".join(_field(1, _field(1, d)) for d in dims)  # TensorShapeProto.dim.dim_value
    return _field(1, _field(1, elem_type) + _field(2, shape))  # TypeProto.tensor_type


def _matmul_integer_model(dim: int, rows: int) -> bytes:
    """ModelProto of y = MatMulInteger(q, m, zero, zero): q (1 x dim) u8 an input, m (dim x
    rows) u8 an external initializer named "m", zero a u8 scalar 128, y (1 x rows) int32."""
    matrix = (
        _field(1, dim) + _field(1, rows) + _field(2, _UINT8) + _field(8, "m")
        + _field(13, _field(1, "location") + _field(2, "supplied-by-session-options"))
        + _field(14, _EXTERNAL)
    )  # fmt: skip
    zero = _field(2, _UINT8) + _field(8, "zero") + _field(9, bytes([ZERO_POINT]))
    node = b"".join(_field(1, name) for name in ("q", "m", "zero", "zero")) + _field(2, "y") + _field(4, "MatMulInteger")
    graph = (
        _field(1, node) + _field(2, "int8-product") + _field(5, matrix) + _field(5, zero)
        + _field(11, _field(1, "q") + _field(2, _tensor_type(_UINT8, (1, dim))))
        + _field(12, _field(1, "y") + _field(2, _tensor_type(_INT32, (1, rows))))
    )  # fmt: skip
    opset = _field(1, "") + _field(2, 13)
    return _field(1, 8) + _field(7, graph) + _field(8, opset)  # ir_version 8, opset 13


@functools.cache
def product_is_exact() -> bool:
    """Whether this machine's integer kernel is exact at the extremes the bound relies on."""
    try:
        q = np.array([[255] * 64, [0] * 64, [255] * 32 + [0] * 32], dtype=np.uint8)
        m = np.array([[255] * 64, [0] * 64, [255, 0] * 32], dtype=np.uint8).T.copy()
        session = integer_product_session(m)
    except Exception:  # onnxruntime missing or refusing the graph: scan float32
        return False
    expected = (q.astype(np.int64) - ZERO_POINT) @ (m.astype(np.int64) - ZERO_POINT)
    return all(
        np.array_equal(session.run(None, {"q": row[None, :]})[0][0], want) for row, want in zip(q, expected)
    )


def searches_in_8_bits(nbytes: int, *, quiet: bool = False) -> bool:
    """Whether float32 vectors of ``nbytes`` are searched through 8-bit codes (``quiet``:
    the reader's model embeds every query text)."""
    return nbytes >= (QUIET_MIN_BYTES if quiet else PREFILTER_MIN_BYTES)


def wants_codes(rows: int, dimension: int, *, quiet: bool = False) -> bool:
    """Whether the builder stores the codes (codes.py) of ``rows`` vectors in the file:
    when a reader will search them in 8 bits, and they have enough dimensions to split."""
    return searches_in_8_bits(4 * rows * dimension, quiet=quiet) and (
        SCREEN_MIN_DIMENSION <= dimension <= SCREEN_MAX_DIMENSION
    )
