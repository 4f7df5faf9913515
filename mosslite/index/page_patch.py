"""An index file page by page: page maps, and patches from one version to the next.

Why: a new version is built as a copy of the previous one with the changes
applied, and SQLite rewrites only the pages it touches, so consecutive versions
share almost every page (adding 10 documents to a 10k-document index changed 43
of 5,810 pages, 0.7%; at 100k, 94 of 53,934). A client that holds version N
fetches only the pages of N+1 that differ instead of the whole file (cf.
Litestream's page-level LTX files). The result is checked against the
manifest's sha256 like any download, so a patch can never install wrong bytes;
at worst it fails and the client downloads the whole version.

Page map (stored by the service beside each version it has patched from or to;
little-endian)::

    b"MLPAGES1" | sha256 of the file (32 bytes) | u32 page size | u32 0 | u64 file size
    | one 16-byte digest (sha256, truncated) per page

Patch (the body of ``GET .../versions/{n}/patch?from={m}``)::

    b"MLPATCH1" | u32 page size | u32 page count | u64 size of version n
    | page count x (u32 page number | that page of version n)

Pages ascend; each is ``page size`` bytes but the file's last, which may be
shorter. Version n = version m's first ``size`` bytes with those pages replaced.
"""

from __future__ import annotations

import hashlib
import os
import queue
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .._fs import CHUNK_BYTES, in_background
from ..errors import ChecksumMismatchError, CorruptIndexError

MAP_MAGIC = b"MLPAGES1"
MAP_HEADER = struct.Struct("<8s32sIIQ")
PATCH_MAGIC = b"MLPATCH1"
PATCH_HEADER = struct.Struct("<8sIIQ")
PAGE_NUMBER = struct.Struct("<I")
DIGEST_BYTES = 16
#: SQLite's page sizes: powers of two from 512 to 65536. Each divides CHUNK_BYTES.
PAGE_SIZES = frozenset(1 << n for n in range(9, 17))
#: Byte 16 of a SQLite file holds its page size (big-endian; 1 means 65536).
SQLITE_PAGE_SIZE_AT = 16
#: Above this share of the file a patch saves too little to be worth fetching.
PATCH_MAX_SHARE = 0.5


@dataclass(frozen=True)
class PageMap:
    """A digest per page of one file, and the sha256 of the whole file."""

    sha256: str
    page_size: int
    size_bytes: int
    digests: np.ndarray  # (pages, DIGEST_BYTES) uint8

    @classmethod
    def of_chunks(cls, chunks: Iterable[bytes], like: Alike | None = None) -> PageMap:
        """Map a file from its bytes in order (chunks of any size), in one pass. The
        whole-file sha256 runs on a second thread beside the page digests (both
        release the GIL): a 440 MB version is mapped in ~0.3 s instead of ~0.6 s.

        ``like``: a file this one was made from, and its map (a version and the one
        before). A page whose bytes are that file's at the same place takes its
        digest from that map instead of being hashed: comparing is ~10x cheaper than
        hashing, and a version changes ~1% of the pages of the one before."""
        whole = hashlib.sha256()
        feed: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        hashed = in_background(_drain_into, feed, whole)
        parts: list[np.ndarray] = []
        pending = b""
        page_size = 0
        size = 0
        pages = 0  # pages digested so far
        try:
            for chunk in chunks:
                feed.put(chunk)
                size += len(chunk)
                pending = pending + chunk if pending else chunk
                if not page_size:
                    if len(pending) < SQLITE_PAGE_SIZE_AT + 2:
                        continue
                    page_size = sqlite_page_size(pending)
                whole_pages = len(pending) - len(pending) % page_size
                if whole_pages:
                    parts.append(_page_digests(memoryview(pending)[:whole_pages], page_size, pages, like))
                    pages += whole_pages // page_size
                pending = pending[whole_pages:]
        finally:
            feed.put(None)
            hashed()
        if not page_size:
            raise CorruptIndexError(f"a file of {size} bytes is not a SQLite database")
        if pending:
            parts.append(_digests([pending]))
        array = np.concatenate(parts) if parts else np.empty((0, DIGEST_BYTES), dtype=np.uint8)
        return cls(sha256=whole.hexdigest(), page_size=page_size, size_bytes=size, digests=array)

    @classmethod
    def of_stream(cls, fh: BinaryIO, like: Alike | None = None) -> PageMap:
        return cls.of_chunks(iter(lambda: fh.read(CHUNK_BYTES), b""), like)

    @classmethod
    def of_file(cls, path: Path) -> PageMap:
        with open(path, "rb") as fh:
            return cls.of_stream(fh)

    def to_bytes(self) -> bytes:
        header = MAP_HEADER.pack(MAP_MAGIC, bytes.fromhex(self.sha256), self.page_size, 0, self.size_bytes)
        return header + self.digests.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> PageMap:
        if len(data) < MAP_HEADER.size:
            raise CorruptIndexError(f"a page map of {len(data)} bytes is shorter than its header")
        magic, sha256, page_size, _, size = MAP_HEADER.unpack_from(data)
        body = data[MAP_HEADER.size :]
        pages = -(-size // page_size) if page_size in PAGE_SIZES else -1
        if magic != MAP_MAGIC or pages < 0 or len(body) != pages * DIGEST_BYTES:
            raise CorruptIndexError("not a mosslite page map, or a damaged one")
        digests = np.frombuffer(body, dtype=np.uint8).reshape(-1, DIGEST_BYTES)
        return cls(sha256=sha256.hex(), page_size=page_size, size_bytes=size, digests=digests)

    @property
    def page_count(self) -> int:
        return len(self.digests)

    def changed_since(self, base: PageMap) -> np.ndarray:
        """Page numbers of this file whose bytes differ from ``base``'s page at the same place."""
        if base.page_size != self.page_size:
            return np.arange(self.page_count)
        shared = min(self.page_count, base.page_count)
        differ = np.any(self.digests[:shared] != base.digests[:shared], axis=1)
        return np.concatenate([np.flatnonzero(differ), np.arange(shared, self.page_count)])

    def worth_patching(self, pages: np.ndarray) -> bool:
        """Whether a patch carrying ``pages`` costs at most PATCH_MAX_SHARE of the file."""
        return self.patch_bytes(pages) <= PATCH_MAX_SHARE * self.size_bytes

    def patch_bytes(self, pages: np.ndarray) -> int:
        """Size of a patch carrying ``pages`` of this file."""
        body = len(pages) * (PAGE_NUMBER.size + self.page_size)
        if len(pages) and pages[-1] == self.page_count - 1:
            body -= self.page_count * self.page_size - self.size_bytes  # a short last page
        return PATCH_HEADER.size + body


@dataclass(frozen=True)
class Alike:
    """A file a new one was made from (``fh``, open for reading) and that file's map:
    for ``PageMap.of_chunks``. The map must be of those bytes; if it is not (a
    damaged stored map), the new map is wrong where they differ, and a client's
    patch then fails its sha256 check and it downloads the whole version."""

    map: PageMap
    fh: BinaryIO

    def same_pages(self, view: memoryview, page_size: int, first: int) -> np.ndarray:
        """Which of the whole pages in ``view`` (pages ``first``, ``first`` + 1, ...)
        hold this file's bytes at the same place."""
        count = len(view) // page_size
        same = np.zeros(count, dtype=bool)
        if self.map.page_size != page_size:
            return same
        known = min(count, max(0, self.map.size_bytes // page_size - first))  # its whole pages there
        if known:
            old = os.pread(self.fh.fileno(), known * page_size, first * page_size)
            if len(old) == known * page_size:  # (shorter: not the mapped file; compare nothing)
                new_words = np.frombuffer(view[: known * page_size], dtype=np.uint64).reshape(known, -1)
                old_words = np.frombuffer(old, dtype=np.uint64).reshape(known, -1)
                same[:known] = (new_words == old_words).all(axis=1)
        return same


def _page_digests(view: memoryview, page_size: int, first: int, like: Alike | None) -> np.ndarray:
    """The digests of the whole pages in ``view``, pages ``first`` onwards."""
    count = len(view) // page_size
    if like is None:
        return _digests(view[start : start + page_size] for start in range(0, count * page_size, page_size))
    same = like.same_pages(view, page_size, first)
    digests = np.empty((count, DIGEST_BYTES), dtype=np.uint8)
    kept = np.flatnonzero(same)
    digests[kept] = like.map.digests[first + kept]
    changed = np.flatnonzero(~same)
    if len(changed):
        digests[changed] = _digests(view[i * page_size : (i + 1) * page_size] for i in changed.tolist())
    return digests


def _digests(pages: Iterable[bytes | memoryview]) -> np.ndarray:
    """One DIGEST_BYTES digest per page, as rows."""
    out = bytearray()
    for page in pages:
        out += hashlib.sha256(page).digest()[:DIGEST_BYTES]
    return np.frombuffer(bytes(out), dtype=np.uint8).reshape(-1, DIGEST_BYTES)


def _drain_into(feed: queue.Queue[bytes | None], digest: hashlib._Hash) -> None:
    while (chunk := feed.get()) is not None:
        digest.update(chunk)


def sqlite_page_size(head: bytes) -> int:
    """The page size a SQLite file's header declares."""
    value = int.from_bytes(head[SQLITE_PAGE_SIZE_AT : SQLITE_PAGE_SIZE_AT + 2], "big")
    page_size = 65536 if value == 1 else value
    if not head.startswith(b"SQLite format 3\x00") or page_size not in PAGE_SIZES:
        raise CorruptIndexError("not a SQLite database (no valid header)")
    return page_size


def patch_chunks(target: PageMap, pages: np.ndarray, read: Callable[[int, int], bytes]) -> Iterator[bytes]:
    """The patch carrying ``pages`` of the file ``target`` maps, in pieces of about
    CHUNK_BYTES. ``read(start, end)`` returns those bytes of the file; it is called
    once per run of consecutive pages (at most CHUNK_BYTES each)."""
    page_size, size = target.page_size, target.size_bytes
    out = [PATCH_HEADER.pack(PATCH_MAGIC, page_size, len(pages), size)]
    pending = 0
    per_read = CHUNK_BYTES // page_size
    for first, last in _runs(pages):
        for start in range(first, last + 1, per_read):
            end = min(start + per_read, last + 1)
            want = min(end * page_size, size) - start * page_size
            data = read(start * page_size, start * page_size + want)
            if len(data) != want:  # the file is not the one that was mapped
                raise CorruptIndexError(f"the mapped file of {size} bytes ends before byte {start * page_size + want}")
            for page in range(start, end):
                offset = (page - start) * page_size
                out += (PAGE_NUMBER.pack(page), data[offset : offset + page_size])
            pending += want
            if pending >= CHUNK_BYTES:
                yield b"".join(out)
                out, pending = [], 0
    if out:
        yield b"".join(out)


def _runs(pages: np.ndarray) -> Iterator[tuple[int, int]]:
    """(first, last) of each run of consecutive page numbers."""
    if not len(pages):
        return
    breaks = np.flatnonzero(np.diff(pages) != 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(pages) - 1]])
    for start, end in zip(starts.tolist(), ends.tolist()):
        yield int(pages[start]), int(pages[end])


def apply_patch(base: Path, patch: Path, out: Path) -> str:
    """Write ``out`` = ``base`` with ``patch`` applied; returns the sha256 of ``out``.

    One pass: ``base`` is read in chunks, patched pages replace their bytes on
    the way, and the result is written and hashed as it goes. A malformed patch
    raises ChecksumMismatchError (the caller then downloads the whole version);
    ``base`` is only read."""
    digest = hashlib.sha256()
    with open(patch, "rb") as source, open(base, "rb") as old, open(out, "wb") as new:
        page_size, count, size = _read_patch_header(source, patch)
        pages = _records(source, count, page_size, size, patch)
        upcoming = next(pages, None)
        for start in range(0, size, CHUNK_BYTES):
            end = min(start + CHUNK_BYTES, size)
            chunk: bytes | bytearray = old.read(end - start)
            if len(chunk) < end - start or (upcoming is not None and upcoming[0] * page_size < end):
                chunk = bytearray(chunk)  # copied only where pages change or version n is longer
                chunk.extend(bytes(end - start - len(chunk)))
                while upcoming is not None and upcoming[0] * page_size < end:
                    offset = upcoming[0] * page_size - start
                    chunk[offset : offset + len(upcoming[1])] = upcoming[1]
                    upcoming = next(pages, None)
            new.write(chunk)
            digest.update(chunk)
        if upcoming is not None or source.read(1):
            raise _bad_patch(patch, "carries bytes after its last page")
    return digest.hexdigest()


def _read_patch_header(source: BinaryIO, patch: Path) -> tuple[int, int, int]:
    head = source.read(PATCH_HEADER.size)
    if len(head) < PATCH_HEADER.size:
        raise _bad_patch(patch, "is shorter than its header")
    magic, page_size, count, size = PATCH_HEADER.unpack(head)
    if magic != PATCH_MAGIC or page_size not in PAGE_SIZES or count > -(-size // page_size):
        raise _bad_patch(patch, "has no valid header")
    return page_size, count, size


def _records(source: BinaryIO, count: int, page_size: int, size: int, patch: Path) -> Iterator[tuple[int, bytes]]:
    previous = -1
    for _ in range(count):
        head = source.read(PAGE_NUMBER.size)
        if len(head) < PAGE_NUMBER.size:
            raise _bad_patch(patch, "ends inside a page")
        (page,) = PAGE_NUMBER.unpack(head)
        length = min(page_size, size - page * page_size)
        if page <= previous or length <= 0:
            raise _bad_patch(patch, f"has page {page} out of order or past the end")
        data = source.read(length)
        if len(data) < length:
            raise _bad_patch(patch, "ends inside a page")
        previous = page
        yield page, data


def _bad_patch(patch: Path, what: str) -> ChecksumMismatchError:
    return ChecksumMismatchError(f"page patch {patch.name} {what}", path=str(patch), hint="download the whole version")
