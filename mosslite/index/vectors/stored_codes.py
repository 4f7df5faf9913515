"""The codes (codes.py) in the index file: written by the builder, read by the reader.

Why stored (issue #7): working these out at open (an eigh, a 100k x 384 x 384
product, the quantisation) cost ~0.3 s of every 100k-document load. The
builder now writes them into the index file (``docs_codebook``, ``docs_codes``
in schemas/index.sql) and the reader copies them into place. The codebook
(rotation and steps) is fitted once and carried into later versions, so a
small change re-encodes only the chunks of slots it touched and a page patch
stays small; it is fitted again when the index has doubled since.

One row of ``docs_codes`` per chunk of vec0 slots. In its ``codes`` blob, slots
go in tiles of TILE_SLOTS, each tile dimension-major (d x 64), so the reader
copies whole tiles into its transposed matrix and a new slot rewrites only its
tile; ``stats`` holds each slot's three bounds (codes.py) as three arrays, then
the chunk's longest length.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from dataclasses import replace

import apsw
import numpy as np

from ...errors import CorruptIndexError
from .. import vec0
from ..vec0 import Layout
from .codes import STORED_STATS, ZERO_POINT, Codebook, Codes, sample_rows

#: Slots per tile of a chunk's codes blob (see the module docstring).
TILE_SLOTS = 64
#: Chunks whose codes the reader reads into one buffer before putting them in place.
READ_CHUNKS = 64
#: Chunks of vectors whose codes the builder works out in one go (~7k rows).
ENCODE_CHUNKS = 16
#: Fit the codebook again once the index holds this many times the rows it was fitted on.
REFIT_GROWTH = 2

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
