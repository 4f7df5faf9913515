"""The vectors in 8 bits, rotated onto their principal directions: what the int8 search reads.

Why rotated: embeddings are not spread evenly over their dimensions. Rotated
onto the principal directions of the rows, MiniLM's scifact vectors hold 94%
of their energy in the first 192 of 384 (measured), so a query can read the
first half ("head") of every row and bound what the rest ("tail") could add
(principal.py). A rotation keeps every dot product, and any orthonormal one
keeps the search exact; better directions only prune more.

Why stored (issue #7): working these out at open (an eigh, a 100k x 384 x 384
product, the quantisation) cost ~0.3 s of every 100k-document load. The
builder now writes them into the index file (``docs_codebook``, ``docs_codes``
in schemas/index.sql) and the reader copies them into place. The codebook
(rotation and steps) is fitted once and carried into later versions, so a
small change re-encodes only the chunks of slots it touched and a page patch
stays small; it is fitted again when the index has doubled since.

Per slot of a chunk, the code is ``rint(rotated / step)`` clipped to +-127 and
stored with zero point 128, and three float32 numbers bound its errors:
``head_l1`` and ``l1`` (L1 norms of the code's head and of all of it, widened
by 253 per step a clipped value lost: vectors.py's bound in units of t/2) and
``tail_norm`` (the rotated row's norm outside the head, widened by more than
its float32 rounding); the search also needs the longest row's length, kept
once per chunk. In a chunk's ``codes`` blob, slots go in tiles of TILE_SLOTS,
each tile dimension-major (d x 64), so the reader copies whole tiles into its
transposed matrix and a new slot rewrites only its tile; ``stats`` holds the
three numbers as three arrays, then the chunk's longest length.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import apsw
import numpy as np

from ..errors import CorruptIndexError
from . import vec0
from .vec0 import Layout

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
#: Slots per tile of a chunk's codes blob (see the module docstring).
TILE_SLOTS = 64
ENCODE_BLOCK = 4096
#: Chunks whose codes the reader reads into one buffer before putting them in place.
READ_CHUNKS = 64
#: Chunks of vectors whose codes the builder works out in one go (~7k rows).
ENCODE_CHUNKS = 16
#: Fit the codebook again once the index holds this many times the rows it was fitted on.
REFIT_GROWTH = 2
STATS = 4  # per row as encoded: head_l1, l1, tail_norm, norm
STORED_STATS = 3  # per slot as stored: head_l1, l1, tail_norm (norm: the chunk's largest, once)

READ_CODEBOOK_SQL = """
SELECT rotation, steps, head, fit_count
FROM docs_codebook
"""

WRITE_CODEBOOK_SQL = """
INSERT INTO docs_codebook (rotation, steps, head, fit_count)
VALUES (:rotation, :steps, :head, :fit_count)
"""

CLEAR_CODEBOOK_SQL = """
DELETE FROM docs_codebook
"""

CHUNK_STATS_SQL = """
SELECT chunk_id, stats
FROM docs_codes
"""

CHUNK_CODES_BY_ID_SQL = """
SELECT codes, stats
FROM docs_codes
WHERE chunk_id = :chunk_id
"""

CODED_CHUNKS_SQL = """
SELECT chunk_id
FROM docs_codes
"""

WRITE_CHUNK_CODES_SQL = """
INSERT OR REPLACE INTO docs_codes (chunk_id, codes, stats)
VALUES (:chunk_id, :codes, :stats)
"""

DELETE_CHUNK_CODES_SQL = """
DELETE FROM docs_codes
WHERE chunk_id = :chunk_id
"""


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
    peak = np.abs(rotated).max(axis=0) if len(rotated) else np.zeros(rotated.shape[1], dtype=np.float32)
    # A coordinate that is 0 in every row contributes nothing; any step does.
    return np.where(peak > 0, peak / 127.0, 1.0).astype(np.float64)


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
        until ``restore``). For when onnxruntime has packed copies of its own."""
        if self.pages is None or not len(self):
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


# --------------------------------------------------------------------------- stored form


def chunk_blobs(used: np.ndarray, codes: np.ndarray, stats: np.ndarray, slots: int) -> tuple[bytes, bytes]:
    """A chunk's ``codes`` and ``stats`` blobs from the codes (k x d u8) and stats (k x 4,
    as encoded) of its ``used`` slots; the other slots hold the code of a zero row."""
    dim = codes.shape[1]
    padded = np.full((slots, dim), ZERO_POINT, dtype=np.uint8)
    padded[used] = codes
    tiles = padded.reshape(slots // TILE_SLOTS, TILE_SLOTS, dim).transpose(0, 2, 1)
    columns = np.zeros(STORED_STATS * slots + 1, dtype="<f4")
    columns[:-1].reshape(STORED_STATS, slots)[:, used] = stats[:, :STORED_STATS].T
    columns[-1] = stats[:, 3].max(initial=0.0)
    return np.ascontiguousarray(tiles).tobytes(), columns.tobytes()


def read_codebook(conn: apsw.Connection) -> Codebook | None:
    rows = conn.execute(READ_CODEBOOK_SQL).fetchall()
    if not rows:
        return None
    rotation, steps, head, fit_count = rows[0]
    steps = np.frombuffer(steps, dtype="<f8")
    dim = len(steps)
    if len(rotation) != 4 * dim * dim or not 0 < head < dim:
        raise CorruptIndexError(f"docs_codebook does not describe {dim}-dimensional codes")
    rotation = np.frombuffer(rotation, dtype="<f4").reshape(dim, dim)
    return Codebook(rotation=rotation, steps=steps, head=int(head), fit_count=int(fit_count))


def write_codebook(conn: apsw.Connection, codebook: Codebook) -> None:
    conn.execute(CLEAR_CODEBOOK_SQL)
    conn.execute(
        WRITE_CODEBOOK_SQL,
        {
            "rotation": codebook.rotation.astype("<f4").tobytes(),
            "steps": codebook.steps.astype("<f8").tobytes(),
            "head": codebook.head,
            "fit_count": codebook.fit_count,
        },
    )


def read_codes(
    conn: apsw.Connection, codebook: Codebook, layout: Layout, reconnect: Callable[[], apsw.Connection] | None = None
) -> Codes:
    """The stored codes of ``layout``'s rows, in its order (as vec0.read_matrix reads
    their vectors), in memory that ``Codes.release`` can give back; ``reconnect``
    gives a connection to read them again with after that (``Codes.restore``)."""
    pages = mmap.mmap(-1, max(1, codebook.dimension * len(layout)), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    codes = np.frombuffer(pages, dtype=np.uint8, count=codebook.dimension * len(layout))
    codes = codes.reshape(codebook.dimension, len(layout))
    stats, norm_max = _read_codes_into(conn, codebook, layout, codes)

    def reread() -> None:
        assert reconnect is not None
        again = reconnect()
        try:
            _read_codes_into(again, codebook, layout, codes)
        finally:
            again.close()

    found = Codes.of_parts(codebook, codes, stats, norm_max)
    return replace(found, pages=pages, reread=reread if reconnect is not None else None)


def _read_codes_into(
    conn: apsw.Connection, codebook: Codebook, layout: Layout, codes: np.ndarray
) -> tuple[np.ndarray, float]:
    """Fill ``codes`` (d x n); returns the stats and the longest row length. Chunks are
    read READ_CHUNKS at a time by blob I/O into one buffer, and the tiles of chunks
    whose rows are their first slots go into place in one numpy copy: chunk by chunk,
    the copies took ~3x as long at 100k rows."""
    dim, slots, count = codebook.dimension, layout.chunk_size, len(layout)
    stats = np.empty((count, STORED_STATS), dtype=np.float32)
    norm_max = 0.0
    tiles_per_chunk = slots // TILE_SLOTS if slots else 0
    stored = {chunk_id: stat_blob for chunk_id, stat_blob in conn.execute(CHUNK_STATS_SQL)}
    buffer = np.empty((READ_CHUNKS * tiles_per_chunk, dim, TILE_SLOTS), dtype=np.uint8)
    for group in range(0, len(layout.chunk_ids), READ_CHUNKS):
        ids = layout.chunk_ids[group : group + READ_CHUNKS]
        for i, chunk_id in enumerate(ids):
            stat_blob = stored.get(chunk_id)
            if not isinstance(stat_blob, bytes) or len(stat_blob) != 4 * (STORED_STATS * slots + 1):
                raise CorruptIndexError(f"docs_codes has no codes of {slots} slots for chunk {chunk_id}")
            _read_blob(conn, chunk_id, buffer[i * tiles_per_chunk : (i + 1) * tiles_per_chunk])
            at, used = layout.starts[group + i], layout.slots[group + i]
            columns = np.frombuffer(stat_blob, dtype="<f4")
            stats[at : at + len(used)] = columns[:-1].reshape(STORED_STATS, slots)[:, used].T
            norm_max = max(norm_max, float(columns[-1]))
        # Chunks full to the brim, then maybe one filled from its first slot: their rows
        # are one run of positions, and their tiles one run of the buffer.
        full = 0
        while full < len(ids) and len(layout.slots[group + full]) == slots:
            full += 1
        start = layout.starts[group]
        if full:
            target = codes[:, start : start + full * slots].reshape(dim, full * tiles_per_chunk, TILE_SLOTS)
            target[...] = buffer[: full * tiles_per_chunk].transpose(1, 0, 2)
        for i in range(full, len(ids)):
            at, used = layout.starts[group + i], layout.slots[group + i]
            chunk = buffer[i * tiles_per_chunk : (i + 1) * tiles_per_chunk].transpose(1, 0, 2).reshape(dim, slots)
            codes[:, at : at + len(used)] = chunk[:, used]
    return stats, norm_max


def _read_blob(conn: apsw.Connection, chunk_id: int, into: np.ndarray) -> None:
    try:
        blob = conn.blob_open("main", "docs_codes", "codes", chunk_id, False)
    except apsw.SQLError as exc:  # no such row, or no blob in it
        raise CorruptIndexError(f"docs_codes has no codes for chunk {chunk_id}: {exc}") from exc
    try:
        if blob.length() != into.nbytes:
            raise CorruptIndexError(f"docs_codes chunk {chunk_id} is not {into.nbytes} bytes")
        blob.read_into(memoryview(into).cast("B"))
    finally:
        blob.close()


# --------------------------------------------------------------------------- the builder's side


def update(conn: apsw.Connection, touched: set[int], doc_count: int, dimension: int, *, wanted: bool) -> None:
    """Keep docs_codes in step with docs_vec: the ``touched`` chunks re-encoded with the
    stored codebook, or every chunk with a new one when there is none yet (the index
    has just grown large enough to be searched in 8 bits) or the index has grown
    REFIT_GROWTH times since it was fitted."""
    codebook = read_codebook(conn)
    if codebook is None and not wanted:
        return
    if codebook is None or doc_count >= REFIT_GROWTH * codebook.fit_count:
        layout = vec0.read_layout(conn)
        codebook = Codebook.fit(_sample(conn, layout, dimension), len(layout))
        write_codebook(conn, codebook)
        touched = set(layout.chunk_ids) | {r[0] for r in conn.execute(CODED_CHUNKS_SQL)}
    chunk_ids = sorted(touched)
    for start in range(0, len(chunk_ids), ENCODE_CHUNKS):  # encoded together: numpy's calls are per block
        group = chunk_ids[start : start + ENCODE_CHUNKS]
        chunks = [(chunk_id, *vec0.read_chunk(conn, chunk_id, dimension)) for chunk_id in group]
        encoded, stats = codebook.encode(np.concatenate([vectors for _, _, vectors, _ in chunks]))
        at = 0
        for chunk_id, used, _, size in chunks:
            _write_chunk_codes(conn, chunk_id, used, encoded[at : at + len(used)], stats[at : at + len(used)], size)
            at += len(used)


def _sample(conn: apsw.Connection, layout: vec0.Layout, dimension: int) -> np.ndarray:
    """The rows a codebook is fitted on (sample_rows), read chunk by chunk."""
    wanted = sample_rows(len(layout))
    out = np.empty((len(wanted), dimension), dtype=np.float32)
    at = 0
    for chunk_id, start, used in zip(layout.chunk_ids, layout.starts, layout.slots):
        here = wanted[(wanted >= start) & (wanted < start + len(used))]
        if len(here):
            _, vectors, _ = vec0.read_chunk(conn, chunk_id, dimension)
            out[at : at + len(here)] = vectors[here - start]
            at += len(here)
    return out


def _write_chunk_codes(
    conn: apsw.Connection, chunk_id: int, used: np.ndarray, encoded: np.ndarray, stats: np.ndarray, size: int
) -> None:
    """Write one chunk's codes, rewriting only the bytes that changed (incremental blob
    I/O), so the pages of unchanged tiles stay as they were."""
    if not size:  # (sqlite-vec removed the chunk)
        conn.execute(DELETE_CHUNK_CODES_SQL, {"chunk_id": chunk_id})
        return
    blobs = chunk_blobs(used, encoded, stats, size)
    stored = conn.execute(CHUNK_CODES_BY_ID_SQL, {"chunk_id": chunk_id}).fetchone()
    if stored is None or [len(b) for b in stored] != [len(b) for b in blobs]:
        conn.execute(WRITE_CHUNK_CODES_SQL, {"chunk_id": chunk_id, "codes": blobs[0], "stats": blobs[1]})
        return
    for column, old, new in zip(("codes", "stats"), stored, blobs):
        _write_changed(conn, column, chunk_id, old, new)


def _write_changed(conn: apsw.Connection, column: str, chunk_id: int, old: bytes, new: bytes) -> None:
    if old == new:
        return
    differ = np.flatnonzero(np.frombuffer(old, dtype=np.uint8) != np.frombuffer(new, dtype=np.uint8))
    start, end = int(differ[0]), int(differ[-1]) + 1
    blob = conn.blob_open("main", "docs_codes", column, chunk_id, True)
    try:
        blob.seek(start)
        blob.write(new[start:end])
    finally:
        blob.close()
