"""Which exact vector search serves a matrix, chosen by its size: the float32 scan
(exact.py; over a transposed copy on mid-sized matrices), the int8 prefilter
(int8.py) or the screen on rotated rows (rotated.py).

It sits above them all, so that choosing needs none of them to import another
(issue #9). The size thresholds are here, read at call time, with the questions
others ask of them: the reader (``searches_in_8_bits``: make the 8-bit search
ready after opening? ``scans_columns``: make a transposed copy once it has answered
COLUMNS_AFTER_QUERIES queries?) and the builder (``wants_codes``: store the codes?).
"""

from __future__ import annotations

import numpy as np

from .codes import Codes
from .exact import ColumnScan, ExactScan, VectorSearch
from .int8 import Int8Prefilter
from .integer_product import product_is_exact
from .rotated import PrincipalScreen

#: Below this size the float32 matrix stays in the CPU's last-level cache, and a
#: plain product is as fast as the integer one plus its bookkeeping. Measured on
#: 2 cores (32 MB L3), top 5 / top 100, ms: 10k x 384 (15 MB) 0.20 / 0.20 float32
#: against 0.20 / 0.35 int8; 20k 0.56 / 0.60 against 0.33 / 0.54; 50k 2.9 against
#: 0.7 / 1.2; 100k 7.5 against 1.7 (benchmarks/query_latency.py has the 10k/100k rows).
PREFILTER_MIN_BYTES = 30 << 20
#: From this size up to PREFILTER_MIN_BYTES the float32 scan runs over a transposed
#: copy (exact.py's ColumnScan), for a second copy of the vectors. Below it numpy's
#: two threads give the plain product as fast (6k x 384, 8.8 MB: 121 against 126 us;
#: 8k: 164 against 150; 10k: 218 against 168; with one BLAS thread the copy wins from
#: 2k rows, 77 against 60 us).
COLUMNS_MIN_BYTES = 8 << 20
#: A reader makes its transposed copy once it has answered this many queries: a process
#: that asks one question (``mosslite query``) does not pay for it. Made beside the first
#: query, at 10k x 384 (~7-12 ms of CPU), it slowed a fresh process' open + first query
#: from ~23 to ~30 ms on 2 cores; each later vector query saves ~0.05-0.2 ms.
COLUMNS_AFTER_QUERIES = 16
#: When the reader's embedder runs a model for every query text, the int8 search
#: takes over from this size: numpy's product over more than ~1.5k rows runs on
#: OpenBLAS's threads, which keep spinning for tens of ms afterwards and took a
#: core from the next query's embedding (measured at 10k x 384: top 5 then the
#: next MiniLM embedding 12.0 ms with numpy, 7.1 with the int8 search, whose
#: onnxruntime threads sleep; 1k rows: 6.2 and 6.0). Alone, the int8 search is the
#: slower one at this size (0.39 against 0.28 ms at 10k), so readers whose
#: vectors come from the caller keep numpy's product up to PREFILTER_MIN_BYTES.
QUIET_MIN_BYTES = 2 << 20
#: From this size (43k x 384) screening on half of each rotated row (rotated.py)
#: pays. Top 5 p50, int8 against the screen, benchmark vectors after 64 MB of other
#: work, ms: 20k 0.66 / 0.69, 35k 1.03 / 0.95, 50k 1.29 / 1.12, 70k 1.60 / 1.29; its
#: extra open cost grows with size: +0.03 s at 20k, +0.23 at 70k.
SCREEN_MIN_BYTES = 64 << 20
#: Finding the principal directions costs ~40 ms at 384 dimensions, growing as d^3;
#: with very few dimensions there is little to split.
SCREEN_MAX_DIMENSION = 1024
SCREEN_MIN_DIMENSION = 8


def vector_search(
    matrix: np.ndarray, *, codes: Codes | None = None, quiet: bool = False, tails: bool = False
) -> VectorSearch:
    """The fastest exact search for this matrix: the int8 prefilter on large ones (from
    QUIET_MIN_BYTES when ``quiet``: a model shares the cores with every query), and
    the screen on rotated rows on larger ones, or whenever the index file holds the
    rows' ``codes`` (then nothing is computed here; ``tails``: the screen makes its
    tail's search at once); the float32 scan on the others, over a transposed copy
    from COLUMNS_MIN_BYTES."""
    if searches_in_8_bits(matrix.nbytes, quiet=quiet) and product_is_exact():
        if codes is not None:
            return PrincipalScreen(matrix, codes, tails=tails)
        splits = SCREEN_MIN_DIMENSION <= matrix.shape[1] <= SCREEN_MAX_DIMENSION
        if matrix.nbytes >= SCREEN_MIN_BYTES and splits:
            return PrincipalScreen.build(matrix)
        return Int8Prefilter(matrix)
    if _mid_sized(matrix.nbytes):
        return ColumnScan(matrix)
    return ExactScan(matrix)


def searches_in_8_bits(nbytes: int, *, quiet: bool = False) -> bool:
    """Whether float32 vectors of ``nbytes`` are searched through 8-bit codes (``quiet``:
    the reader's model embeds every query text)."""
    return nbytes >= (QUIET_MIN_BYTES if quiet else PREFILTER_MIN_BYTES)


def scans_columns(nbytes: int, *, quiet: bool = False) -> bool:
    """Whether float32 vectors of ``nbytes`` are scanned over a transposed copy."""
    return not searches_in_8_bits(nbytes, quiet=quiet) and _mid_sized(nbytes)


def _mid_sized(nbytes: int) -> bool:
    return COLUMNS_MIN_BYTES <= nbytes < PREFILTER_MIN_BYTES


def wants_codes(rows: int, dimension: int, *, quiet: bool = False) -> bool:
    """Whether the builder stores the codes (codes.py, stored_codes.py) of ``rows`` vectors
    in the file: when a reader will search them in 8 bits, and they have enough dimensions
    to split."""
    return searches_in_8_bits(4 * rows * dimension, quiet=quiet) and (
        SCREEN_MIN_DIMENSION <= dimension <= SCREEN_MAX_DIMENSION
    )
