"""Which exact vector search serves a matrix: the float32 scan or the int8 prefilter
(vectors.py), or the screen on rotated rows (principal.py), chosen by size.

It sits above both, so that choosing needs neither to import the other (issue #9).
The size thresholds stay in vectors.py (the builder asks ``wants_codes`` there too),
read at call time.
"""

from __future__ import annotations

import numpy as np

from . import vectors
from .codes import Codes
from .principal import PrincipalScreen
from .vectors import ExactScan, Int8Prefilter, VectorSearch, product_is_exact, searches_in_8_bits


def vector_search(matrix: np.ndarray, *, codes: Codes | None = None, quiet: bool = False) -> VectorSearch:
    """The fastest exact search for this matrix: the int8 prefilter on large ones (from
    QUIET_MIN_BYTES when ``quiet``: a model shares the cores with every query), and
    the screen on rotated rows on larger ones, or whenever the index file holds the
    rows' ``codes`` (then nothing is computed here)."""
    if searches_in_8_bits(matrix.nbytes, quiet=quiet) and product_is_exact():
        if codes is not None:
            return PrincipalScreen(matrix, codes)
        splits = vectors.SCREEN_MIN_DIMENSION <= matrix.shape[1] <= vectors.SCREEN_MAX_DIMENSION
        if matrix.nbytes >= vectors.SCREEN_MIN_BYTES and splits:
            return PrincipalScreen.build(matrix)
        return Int8Prefilter(matrix)
    return ExactScan(matrix)
