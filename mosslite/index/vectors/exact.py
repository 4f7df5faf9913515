"""The exact vector search: one float32 matrix-vector product over every row.

``VectorSearch`` is what every vector search offers the reader and the ranking
(ranking.py); ``ExactScan`` is the plain one, and the base of the int8 searches
(int8.py, rotated.py), which bound scores in 8 bits and end by rescoring a few
rows here, in float32. So every search answers what this one answers.
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
