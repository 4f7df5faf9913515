"""The float32 scan over a transposed copy (exact.py's ColumnScan) answers as the plain one."""

from __future__ import annotations

import numpy as np
import pytest

from mosslite.index.vectors.exact import TRANSPOSE_ROWS, ColumnScan, ExactScan, transposed

from .matrices import assert_same, clustered, queries


@pytest.mark.parametrize("rows", [0, 1, TRANSPOSE_ROWS - 1, TRANSPOSE_ROWS, TRANSPOSE_ROWS + 1, 3 * TRANSPOSE_ROWS + 5])
def test_the_transposed_copy_is_the_matrix_turned_and_cannot_be_written(rows: int) -> None:
    matrix = clustered(max(rows, 1), 12, seed=rows)[:rows]
    columns = transposed(matrix)
    assert columns.shape == (12, rows) and columns.dtype == np.float32
    assert columns.flags.c_contiguous and not columns.flags.writeable
    np.testing.assert_array_equal(columns, matrix.T)


@pytest.mark.parametrize("k", [1, 5, 100, 1000])
def test_top_k_equals_the_plain_scan(k: int) -> None:
    matrix = clustered(700, 40, seed=3)
    for q in queries(matrix, 30):
        assert_same(ColumnScan(matrix).top(q, k, None), ExactScan(matrix).top(q, k, None))


@pytest.mark.parametrize("share", [0.5, 0.01, 0.0])
def test_filtered_top_k_keeps_to_the_allowed_rows(share: float) -> None:
    matrix = clustered(700, 40, seed=4)
    mask = np.random.default_rng(5).random(len(matrix)) < share
    for q in queries(matrix, 20):
        got = ColumnScan(matrix).top(q, 5, mask)
        assert_same(got, ExactScan(matrix).top(q, 5, mask))
        assert len(got[0]) == min(5, int(mask.sum())) and mask[got[0]].all()


def test_equal_rows_score_equal_and_the_earlier_comes_first() -> None:
    matrix = clustered(300, 40, seed=6)
    matrix[[40, 90, 250]] = matrix[170]  # four copies of one row
    positions, scores = ColumnScan(matrix).top(matrix[170], 4, None)
    assert positions.tolist() == [40, 90, 170, 250]
    assert len(set(scores.tolist())) == 1


def test_gathered_rows_come_from_the_matrix_itself() -> None:
    matrix = clustered(200, 16, seed=7)
    scan = ColumnScan(matrix)
    q = queries(matrix, 1)[0]
    rows = np.array([5, 150, 7])
    np.testing.assert_array_equal(scan.similarities(q, rows), matrix[rows] @ q)
    assert scan.matrix is matrix
