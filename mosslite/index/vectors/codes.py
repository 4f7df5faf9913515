"""The vectors in 8 bits, rotated onto their principal directions: what the int8 search reads.

Why rotated: embeddings are not spread evenly over their dimensions. Rotated
onto the principal directions of the rows, MiniLM's scifact vectors hold 94%
of their energy in the first 192 of 384 (measured), so a query can read the
first half ("head") of every row and bound what the rest ("tail") could add
(rotated.py). A rotation keeps every dot product, and any orthonormal one
keeps the search exact; better directions only prune more.

Per row, the code is ``rint(rotated / step)`` clipped to +-127 and stored with
zero point 128, and three float32 numbers bound its errors: ``head_l1`` and
``l1`` (L1 norms of the code's head and of all of it, widened by 253 per step a
clipped value lost: int8.py's bound in units of t/2) and ``tail_norm`` (the
rotated row's norm outside the head, widened by more than its float32
rounding); the search also needs the longest row's length. ``Codebook`` (the
rotation and the steps) makes codes of rows; ``Codes`` holds every row's, ready
to search. How they are kept in the index file is stored_codes.py.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

ZERO_POINT = 128
#: Rows the principal directions are estimated from (spread evenly over the rows):
#: ~40 ms at 384 dimensions.
SAMPLE_ROWS = 8192
#: Cosine added to every bound for float32 rounding in the rotation and the norms
#: (worst case ~sqrt(d) * d * 2**-24: ~5e-4 at 384 dimensions).
ROTATION_SLACK = 2e-3
#: The sample's largest rotated values, widened by this, set the int8 steps: larger
#: values elsewhere are clipped (and bounded as such), which at 1.3 happened in 3 of
#: 25 blocks of the 100k benchmark rows, against every block at 1.2.
SCALE_MARGIN = 1.3
ENCODE_BLOCK = 4096
#: A coordinate whose largest magnitude in the sample is below this gets step 1.
NEGLIGIBLE = 1e-30
STATS = 4  # per row as encoded: head_l1, l1, tail_norm, norm
STORED_STATS = 3  # per slot as stored: head_l1, l1, tail_norm (norm: the chunk's largest, once)


@dataclass(frozen=True)
class Codebook:
    """How rows become codes: ``rotation`` (d x d float32, orthonormal rows, leading
    direction first), the int8 ``steps`` of the rotated coordinates (float64), the
    ``head`` width, and how many rows the index held when it was fitted."""

    rotation: np.ndarray
    steps: np.ndarray
    head: int
    fit_count: int

    @classmethod
    def fit(cls, sample: np.ndarray, count: int) -> Codebook:
        """Directions and steps from ``sample`` (rows of an index of ``count`` rows)."""
        dim = sample.shape[1]
        # Eigenvectors come out orthonormal to float64 precision whatever the input's.
        _, directions = np.linalg.eigh((sample.T @ sample).astype(np.float64))  # by ascending eigenvalue
        rotation = np.ascontiguousarray(directions[:, ::-1].T, dtype=np.float32)
        steps = steps_for(sample @ rotation.T) * SCALE_MARGIN
        return cls(rotation=rotation, steps=steps, head=(dim + 1) // 2, fit_count=count)

    @property
    def dimension(self) -> int:
        return len(self.steps)

    def encode(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(codes, stats) of ``rows`` (k x d float32): codes k x d u8 with zero point 128,
        stats k x 4 float32 (head_l1, l1, tail_norm, norm; see the module docstring)."""
        head, dim = self.head, self.dimension
        block = rows @ self.rotation.T
        squares = block * block  # summed by matrix products: ~3x faster than einsum here
        head_squared = (squares[:, :head] @ np.ones(head, dtype=np.float32)).astype(np.float64)
        tail_squared = (squares[:, head:] @ np.ones(dim - head, dtype=np.float32)).astype(np.float64)
        block *= (1.0 / self.steps).astype(np.float32)
        np.rint(block, out=block)
        magnitude = np.abs(block)
        largest = float(magnitude.max()) if len(block) else 0.0
        if largest > 127.0:
            # Clipped to 127 steps: |x/s - m| <= 1/2 + the steps cut off, which
            # add 2 * 127 each to the bound in units of t/2.
            magnitude += 253.0 * np.maximum(magnitude - 127.0, 0.0)
            np.clip(block, -127.0, 127.0, out=block)
            largest = float(magnitude.max())
        # Row sums of integers by a float32 product: exact while they stay below 2**24.
        sums = magnitude.astype(np.float32 if largest * dim < 1 << 24 else np.float64, copy=False)
        stats = np.empty((len(rows), STATS), dtype=np.float64)
        stats[:, 0] = sums[:, :head] @ np.ones(head, dtype=sums.dtype)
        stats[:, 1] = stats[:, 0] + sums[:, head:] @ np.ones(dim - head, dtype=sums.dtype)
        squared = head_squared + tail_squared  # the rotation keeps lengths
        stats[:, 2] = np.sqrt(tail_squared + ROTATION_SLACK * squared)
        stats[:, 3] = np.sqrt(squared)
        block += ZERO_POINT
        return block.astype(np.uint8), _rounded_up(stats)


def steps_for(rotated: np.ndarray) -> np.ndarray:
    """Per coordinate, the step that maps its largest magnitude to 127 (float64)."""
    peak = np.abs(rotated).max(axis=0).astype(np.float64) if len(rotated) else np.zeros(rotated.shape[1])
    # A coordinate that is (next to) 0 in every row contributes nothing; any step does.
    # Below NEGLIGIBLE, peak / 127 could underflow float32 and 1 / step overflow it: a
    # few hashed words give directions of rank-deficient samples that small (#12).
    return np.where(peak > NEGLIGIBLE, peak / 127.0, 1.0)


def _rounded_up(stats: np.ndarray) -> np.ndarray:
    """float32, never below the float64 values: they are upper bounds (L1 sums are
    integers below 2**24 and exact; the norms may round)."""
    narrow = stats.astype(np.float32)
    return np.where(narrow < stats, np.nextafter(narrow, np.float32(np.inf)), narrow)


def sample_rows(count: int) -> np.ndarray:
    """Which of ``count`` rows a codebook is fitted on: SAMPLE_ROWS spread evenly."""
    return np.arange(0, count, max(1, count // SAMPLE_ROWS))


@dataclass(frozen=True)
class Codes:
    """Every row's code, ready to search: ``codes`` is d x n (transposed: the integer
    product wants the constant on the right), the stats are float64 arrays of n, and
    ``norm_max`` bounds every row's length."""

    codebook: Codebook
    codes: np.ndarray
    head_l1: np.ndarray
    l1: np.ndarray
    tail_norms: np.ndarray
    norm_max: float
    #: For codes read from a file: the memory ``codes`` lives in (a mapping of its
    #: own, whose pages can be given back), and how to read them again.
    pages: mmap.mmap | None = field(default=None, compare=False)
    reread: Callable[[], None] | None = field(default=None, compare=False)

    def release(self) -> bool:
        """Give the pages of ``codes`` back to the system (the array reads as zeros
        until ``restore``). For when onnxruntime has packed copies of its own; only
        codes that can be read again are given back."""
        if self.pages is None or self.reread is None or not len(self):
            return False
        self.pages.madvise(mmap.MADV_DONTNEED)
        return True

    def restore(self) -> None:
        assert self.reread is not None
        self.reread()

    @classmethod
    def of_matrix(cls, matrix: np.ndarray, codebook: Codebook | None = None) -> Codes:
        """Codes computed in memory (an index file without stored codes, or a test's
        matrix), with a codebook fitted on a sample of ``matrix`` unless given."""
        if codebook is None:
            codebook = Codebook.fit(matrix[sample_rows(len(matrix))], len(matrix))
        rows, dim = matrix.shape
        codes = np.empty((dim, rows), dtype=np.uint8)
        stats = np.empty((rows, STATS), dtype=np.float32)
        for start in range(0, rows, ENCODE_BLOCK):  # each block rotated and quantised in cache
            block_codes, stats[start : start + ENCODE_BLOCK] = codebook.encode(matrix[start : start + ENCODE_BLOCK])
            codes[:, start : start + len(block_codes)] = block_codes.T
        return cls.of_parts(codebook, codes, stats[:, :STORED_STATS], float(stats[:, 3].max(initial=0.0)))

    @classmethod
    def of_parts(cls, codebook: Codebook, codes: np.ndarray, stats: np.ndarray, norm_max: float) -> Codes:
        wide = stats.astype(np.float64)
        return cls(codebook, codes, wide[:, 0], wide[:, 1], wide[:, 2], norm_max)

    def __len__(self) -> int:
        return self.codes.shape[1]
