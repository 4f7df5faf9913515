"""The vectors as sqlite-vec stores them, read in bulk, without loading the extension.

Each vector of an index file is stored once, in the vec0 table ``docs_vec``
(issue #7). vec0 keeps its vectors in plain shadow tables, which any SQLite
connection can read:

- ``docs_vec_chunks(chunk_id, size, validity, rowids)``: per chunk of ``size``
  slots, a bitmap of the slots in use (bit i of byte j is slot 8j + i) and
  each slot's rowid (int64 little-endian);
- ``docs_vec_vector_chunks00(rowid = chunk_id, vectors)``: the chunk's vectors,
  slot after slot, float32 little-endian (``size * dimension * 4`` bytes).

A deleted vector's slot is cleared in the bitmap; sqlite-vec fills free slots
only in its newest chunk. The reader's rows are the slots in use, chunk after
chunk (``Layout``), and the 8-bit codes (vectors/stored_codes.py) are stored per chunk and
slot to match. This is sqlite-vec 0.1's layout (pyproject.toml keeps it below
0.2); tests compare what is read here with vec0's own ``SELECT``.

Reading: each chunk's vectors are copied by incremental blob I/O straight
into the matrix (``Blob.read_into``): one copy, no bytes object per chunk,
and no numpy map of the file, so its pages do not count in the reader's
memory. A large matrix is read by two threads, half of its chunks each.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass

import apsw
import numpy as np

from ..errors import CorruptIndexError

#: From this many bytes of vectors they are read with two threads (``reads_in_two``; the
#: caller gives ``read_matrix`` a second connection): most of a fresh process' read is
#: the kernel mapping the file's pages and the matrix's new ones, and two threads do
#: that on two cores. 100k x 384 (154 MB), fresh processes on a 2-core VM, alternated:
#: the read 31-45 ms against 56-270 with one thread; ``load_index`` 85-169 ms against 125-350.
SPLIT_READ_MIN_BYTES = 16 << 20
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

TABLE = "docs_vec"
CHUNKS_TABLE = f"{TABLE}_chunks"
VECTORS_TABLE = f"{TABLE}_vector_chunks00"

CHUNKS_SQL = f"""
SELECT chunk_id, size, validity, rowids
FROM {CHUNKS_TABLE}
ORDER BY chunk_id
"""

CHUNK_SQL = f"""
SELECT size, validity, rowids
FROM {CHUNKS_TABLE}
WHERE chunk_id = :chunk_id
"""

CHUNKS_OF_ROWIDS_SQL = f"""
SELECT DISTINCT chunk_id
FROM {TABLE}_rowids
WHERE rowid IN (SELECT value FROM json_each(:rowids))
"""

CHUNK_IDS_SQL = f"""
SELECT chunk_id
FROM {CHUNKS_TABLE}
"""


@dataclass(frozen=True)
class Layout:
    """Where the reader's rows live: for each chunk (ascending ``chunk_ids``), the slots
    in use (ascending) and the position of its first row; and each row's rowid."""

    chunk_ids: list[int]
    slots: list[np.ndarray]
    starts: list[int]
    rowids: np.ndarray
    chunk_size: int

    def __len__(self) -> int:
        return len(self.rowids)

    def slots_of(self, chunk_id: int) -> tuple[int, np.ndarray] | None:
        """(position of the chunk's first row, its slots in use), or None if it has none."""
        at = np.searchsorted(self.chunk_ids, chunk_id)
        if at == len(self.chunk_ids) or self.chunk_ids[at] != chunk_id:
            return None
        return self.starts[at], self.slots[at]


def used_slots(validity: bytes, size: int) -> np.ndarray:
    return np.flatnonzero(np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")[:size])


def read_layout(conn: apsw.Connection) -> Layout:
    chunk_ids: list[int] = []
    slots: list[np.ndarray] = []
    starts: list[int] = []
    rowids: list[np.ndarray] = []
    at = 0
    size = 0
    for chunk_id, size, validity, rowid_blob in conn.execute(CHUNKS_SQL):
        if len(validity) * 8 < size or len(rowid_blob) != 8 * size:
            raise CorruptIndexError(f"{CHUNKS_TABLE} chunk {chunk_id} is damaged")
        used = used_slots(validity, size)
        if not len(used):
            continue
        chunk_ids.append(chunk_id)
        slots.append(used)
        starts.append(at)
        rowids.append(np.frombuffer(rowid_blob, dtype="<i8")[used])
        at += len(used)
    joined = np.concatenate(rowids) if rowids else np.empty(0, dtype=np.int64)
    return Layout(chunk_ids=chunk_ids, slots=slots, starts=starts, rowids=joined, chunk_size=size)


def read_matrix(
    conn: apsw.Connection, layout: Layout, dimension: int, *, helper: apsw.Connection | None = None
) -> np.ndarray:
    """The vectors of ``layout``'s rows, in its order (n x dimension float32).

    Given ``helper`` (another connection to the same file: callers give one when
    ``reads_in_two``), the second half of the chunks is read on a thread of its own
    through it."""
    matrix = np.empty((len(layout), dimension), dtype="<f4")
    chunks = list(zip(layout.chunk_ids, layout.starts, layout.slots))
    if helper is None or len(chunks) < 2:
        _read_chunks(conn, chunks, matrix)
        return matrix
    half = len(chunks) // 2
    failed: list[BaseException] = []

    def read_second_half() -> None:
        try:
            _read_chunks(helper, chunks[half:], matrix)
        except BaseException as exc:  # raised in the caller's thread, below
            failed.append(exc)

    thread = threading.Thread(target=read_second_half, name="mosslite-read", daemon=True)
    thread.start()
    try:
        _read_chunks(conn, chunks[:half], matrix)
    finally:
        thread.join()
    if failed:
        raise failed[0]
    return matrix


def reads_in_two(nbytes: int) -> bool:
    """Whether float32 vectors of ``nbytes`` are worth reading with a ``helper`` connection."""
    return nbytes >= SPLIT_READ_MIN_BYTES and _CPUS >= 2


def _read_chunks(conn: apsw.Connection, chunks: list[tuple[int, int, np.ndarray]], matrix: np.ndarray) -> None:
    """Copy the vectors of ``chunks`` (chunk id, first position, slots in use) into ``matrix``."""
    dimension = matrix.shape[1]
    width = 4 * dimension
    flat = memoryview(matrix).cast("B") if len(matrix) else None
    for chunk_id, start, used in chunks:
        blob = _open_vectors(conn, chunk_id)
        try:
            if blob.length() < width * (int(used[-1]) + 1):
                raise CorruptIndexError(f"{VECTORS_TABLE} chunk {chunk_id} is damaged: shorter than its slots")
            k = len(used)
            if used[-1] == k - 1:  # the first k slots: straight into place
                blob.read_into(flat, start * width, k * width)
            else:
                whole = np.empty((int(used[-1]) + 1, dimension), dtype="<f4")
                blob.read_into(memoryview(whole).cast("B"))
                matrix[start : start + k] = whole[used]
        finally:
            blob.close()


def _open_vectors(conn: apsw.Connection, chunk_id: int) -> apsw.Blob:
    try:
        return conn.blob_open("main", VECTORS_TABLE, "vectors", chunk_id, False)
    except apsw.SQLError as exc:  # no such row, or a value that is no blob (NULL)
        raise CorruptIndexError(f"{VECTORS_TABLE} chunk {chunk_id} is damaged: {exc}") from exc


def read_chunk(conn: apsw.Connection, chunk_id: int, dimension: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(slots in use, their vectors, the chunk's size) of one chunk (the builder re-encodes it)."""
    row = conn.execute(CHUNK_SQL, {"chunk_id": chunk_id}).fetchone()
    if row is None:
        return np.empty(0, dtype=np.intp), np.empty((0, dimension), dtype=np.float32), 0
    size, validity, _ = row
    used = used_slots(validity, size)
    vectors = np.empty((size, dimension), dtype="<f4")
    blob = _open_vectors(conn, chunk_id)
    try:
        blob.read_into(memoryview(vectors).cast("B"), 0, min(blob.length(), vectors.nbytes))
    finally:
        blob.close()
    return used, vectors[used], size


def chunks_holding(conn: apsw.Connection, rowids: list[int]) -> set[int]:
    """The chunks that hold these rowids' vectors (none for rowids without one)."""
    if not rowids:
        return set()
    return {r[0] for r in conn.execute(CHUNKS_OF_ROWIDS_SQL, {"rowids": json.dumps(rowids)})}


def chunk_ids(conn: apsw.Connection) -> list[int]:
    return sorted(r[0] for r in conn.execute(CHUNK_IDS_SQL))
