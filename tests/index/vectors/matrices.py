"""Matrices shaped like embeddings, and the check that a search answers as the float32 scan."""

from __future__ import annotations

import numpy as np


def unit_rows(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def clustered(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    """Rows near a few centres, as embeddings of related documents are: many close scores."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, dim))
    return unit_rows(centres[rng.integers(0, 8, rows)] + 0.6 * rng.standard_normal((rows, dim)))


def queries(matrix: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    """Half near a stored row (a clear winner), half random (flat scores: the hard case for a bound)."""
    rng = np.random.default_rng(seed)
    near = matrix[rng.integers(0, len(matrix), count // 2)] + 0.05 * rng.standard_normal((count // 2, matrix.shape[1]))
    return unit_rows(np.vstack([near, rng.standard_normal((count - count // 2, matrix.shape[1]))]))


def assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_allclose(got[1], want[1], atol=1e-5)
    # Positions agree except where two scores tie to float precision.
    differ = got[0] != want[0]
    assert np.all(np.abs(got[1][differ] - want[1][differ]) < 1e-5)
