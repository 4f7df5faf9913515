"""The exact vector search: one float32 matrix-vector product over every row.

``VectorSearch`` is what every vector search offers the reader and the ranking
(ranking.py); ``ExactScan`` is the plain one, and the base of the int8 searches
(int8.py, rotated.py), which bound scores in 8 bits and end by rescoring a few
rows here, in float32. So every search answers what this one answers.
``ColumnScan`` is the same product over a transposed copy, which numpy's BLAS
runs faster on mid-sized matrices.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..topk import top_positions


class VectorSearch(Protocol):
    def top(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(positions, cosines) of the ``k`` rows most similar to ``q``, best first."""
        ...

    def similarities(self, q: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Float32 cosines of ``q`` with the given rows (hybrid fusion needs them for keyword hits)."""
        ...

    @property
    def reads_tails(self) -> bool:
        """Whether its queries needed the rows' tails (rotated.py), so that the next
        version's reader makes that part of its search at once."""
        ...


class ExactScan:
    """One float32 matrix-vector product over every row."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix

    def top(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        sims = self.all_similarities(q)
        positions = top_positions(sims, mask, k)
        return positions, sims[positions]

    def all_similarities(self, q: np.ndarray) -> np.ndarray:
        """Float32 cosines of ``q`` with every row, in row order."""
        return self.matrix @ q

    def similarities(self, q: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return self.matrix[positions] @ q

    def rescored(self, q: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` of ``rows`` by float32 cosine (the searches that bound first end here)."""
        sims = self.matrix[rows] @ q
        best = top_positions(sims, None, k)
        return rows[best], sims[best]

    @property
    def reads_tails(self) -> bool:
        return False


#: Rows moved per step when transposing: a block is read and written while it is in
#: the cache (10k x 384: ~7 ms in blocks of 64 rows, ~11 ms in one ``ascontiguousarray``).
TRANSPOSE_ROWS = 64


class ColumnScan(ExactScan):
    """The float32 product over a transposed copy of the matrix, one row per dimension.

    numpy's OpenBLAS multiplies ``q`` by a (d, n) matrix with a kernel that streams
    the columns into a result held in cache, and ``M @ q`` with one dot product per
    row, which is slower: q @ M.T at 384 dimensions, two threads, against M @ q,
    us: 10k rows 168 / 218, 15k 278 / 1,079, 20k 700-1,600 / 2,100-3,700; with one
    BLAS thread 352 / 1,383 at 10k. It costs a second copy of the vectors, so
    choice.py uses it only on mid-sized matrices; the rows that ``similarities`` and
    ``rescored`` gather still come from the (n, d) matrix, where each is contiguous.
    Each score is the same sum in another order, so it can differ from ``M @ q`` in
    its last bits; equal rows still score equal, and ties still go to the earlier row.
    """

    def __init__(self, matrix: np.ndarray) -> None:
        super().__init__(matrix)
        self.columns = transposed(matrix)

    def all_similarities(self, q: np.ndarray) -> np.ndarray:
        return q @ self.columns


def transposed(matrix: np.ndarray) -> np.ndarray:
    """A C-contiguous, read-only copy of ``matrix.T``, made block by block."""
    rows = matrix.shape[0]
    out = np.empty((matrix.shape[1], rows), dtype=matrix.dtype)
    for start in range(0, rows, TRANSPOSE_ROWS):
        out[:, start : start + TRANSPOSE_ROWS] = matrix[start : start + TRANSPOSE_ROWS].T
    out.setflags(write=False)
    return out
