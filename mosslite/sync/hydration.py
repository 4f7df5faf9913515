"""Getting a version file into the local cache, verified, without ever exposing a torn one.

Layout: ``<cache>/<project>/<index>/<version>.sqlite``, plus while downloading a
``<version>.sqlite.part`` (kept across crashes so the next attempt resumes it
with an HTTP Range request) and ``.lock``. A file only gets its final name
after its sha256 matched the manifest and it was fsynced, and then loses its
write bits, so whatever sits under a final name is complete and stays so. Two
processes sharing a cache serialise their downloads of one index on the lock
file and reuse each other's results.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from .._fs import TEMP_MARKER, fsync_file, install, make_read_only, sha256_file
from ..errors import ChecksumMismatchError
from ..types import Manifest, Version

PART_SUFFIX = ".part"
LOCK_NAME = ".lock"
#: How often a file being downloaded is flushed to disk behind the writer.
FLUSH_BEHIND_S = 0.02


def version_path(index_dir: Path, version: int) -> Path:
    return index_dir / Version(version).filename()


def cached_versions(index_dir: Path) -> list[Version]:
    """Complete version files in the cache, newest first."""
    if not index_dir.is_dir():
        return []
    found = []
    for entry in index_dir.iterdir():
        try:
            found.append(Version.parse_filename(entry.name))
        except Exception:  # .part, .lock, temp files: not versions
            continue
    return sorted(found, reverse=True)


def clean_leftovers(index_dir: Path, keep_part: Path | None = None) -> list[Path]:
    """Remove temp files and stale partial downloads (not the one being resumed)."""
    removed = []
    if not index_dir.is_dir():
        return removed
    for entry in index_dir.iterdir():
        stale_part = entry.name.endswith(PART_SUFFIX) and entry != keep_part
        if entry.is_file() and (TEMP_MARKER in entry.name or stale_part):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _lock_blocking(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@asynccontextmanager
async def index_dir_lock(index_dir: Path) -> AsyncIterator[None]:
    """Exclusive across processes and threads; waits in a worker thread, not on the loop."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = await asyncio.to_thread(_lock_blocking, index_dir / LOCK_NAME)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@asynccontextmanager
async def flushed_behind(path: Path) -> AsyncIterator[None]:
    """While the body runs (a download writing ``path``), fsync the file over and
    over on a worker thread: the disk writes while the network reads, and the
    fsync that must follow the last byte has only the tail left to flush."""

    async def flush_forever() -> None:
        while True:
            await asyncio.sleep(FLUSH_BEHIND_S)
            await asyncio.to_thread(_fsync_if_there, path)

    task = asyncio.create_task(flush_forever())
    try:
        yield
    finally:
        task.cancel()


def _fsync_if_there(path: Path) -> None:
    try:
        fsync_file(path)
    except FileNotFoundError:  # not created yet, or already renamed
        pass


def finish_download(part: Path, target: Path, manifest: Manifest, sha256: str | None = None) -> None:
    """Verify then install: sha256 and size must match, or the partial file is discarded.
    ``sha256`` is the digest the transport computed while writing ``part``, if it did;
    otherwise the file is read again to hash it."""
    size = part.stat().st_size
    digest = sha256 or sha256_file(part)
    if size != manifest.size_bytes or digest != manifest.sha256:
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"download of {manifest.index_name} v{manifest.version} is corrupt: "
            f"sha256 {digest[:12]}.. size {size}, expected {manifest.sha256[:12]}.. size {manifest.size_bytes}",
            index=manifest.index_name,
            version=manifest.version,
            hint="the previous version keeps serving; the download is retried",
        )
    install(part, target)
    # After the rename: a crash before it leaves the .part writable, to be resumed.
    make_read_only(target)
