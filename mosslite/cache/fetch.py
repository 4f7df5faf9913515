"""The one way a version file reaches this device: cache hit, page patch, or resumable download.

Used by ``IndexSync`` (a loaded index) and by sessions (their base version)
alike, so a process that loaded index X and opens session X fetches X once, and
every rule below holds for both. Example::

    manifest = await transport.manifest("faq")
    manifest, fetched = await fetch_newest(transport, "faq", cache_dir / "faq", manifest)
    reader = IndexReader(fetched.path)

Invariants (issue #4):
- Fetching = under the folder's lock (``lock.py``): a file already there that is
  the manifest's version (``verify.file_is_version``) is used as it is; else the
  pages that changed since the newest older cached version are fetched (a page
  patch, ``index/page_patch.py``) and applied to a copy of it; else the file is
  downloaded to ``<version>.sqlite.part``, resuming what an earlier attempt
  left. Patched or downloaded, the result must match the manifest's sha256 and
  size before it is installed under its final name (``verify.finish_download``);
  any failure of the patch path falls back to downloading the whole version.
- A resumed download that proves corrupt is thrown away and downloaded once
  more from the start; a fresh one that is corrupt raises ChecksumMismatchError.
- A version the service deleted meanwhile (it keeps a few) gives way to the
  newest (``fetch_newest``); a cached file found damaged when opened is removed
  and fetched again, once (``fetch_and_use``).
- ``copy_to``: a caller that keeps its own copy (a session) gets it linked (or
  copied) before the lock is let go, so no cleanup removes the cached file
  between the fetch and the copy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .._background import in_low_priority
from .._fs import fsync_file, temp_path_for
from ..errors import ChecksumMismatchError, CorruptIndexError, IndexNotFoundError, IntegrityError, UnavailableError
from ..index.page_patch import apply_patch
from ..transport.base import Transport
from ..types import Manifest
from .layout import cached_versions, clean_leftovers, discard, part_path, version_path
from .lock import index_dir_lock
from .verify import file_is_version, finish_download

log = logging.getLogger("mosslite.cache")

T = TypeVar("T")

#: How often a file being downloaded is flushed to disk behind the writer.
FLUSH_BEHIND_S = 0.02


@dataclass(frozen=True)
class Fetched:
    """A version file in the cache (or the caller's copy of it), and what it took to get it there."""

    path: Path
    downloaded_bytes: int = 0
    patched_from: int | None = None

    @property
    def from_cache(self) -> bool:
        """Found in the cache, so not checked against the manifest's sha256 this time."""
        return self.downloaded_bytes == 0 and self.patched_from is None

    def how(self) -> str:
        if self.patched_from is not None:
            return f"patch from v{self.patched_from}, {self.downloaded_bytes} bytes"
        return f"downloaded {self.downloaded_bytes} bytes" if self.downloaded_bytes else "already cached"


async def fetch_and_use(
    transport: Transport,
    name: str,
    index_dir: Path,
    manifest: Manifest,
    use: Callable[[Manifest, Fetched], Awaitable[T]],
    *,
    copy_to: Path | None = None,
) -> T:
    """Fetch the manifest's version (or a newer one: ``fetch_newest``) and return what
    ``use(manifest, fetched)`` makes of it (opens it). A cached file ``use`` finds
    damaged (CorruptIndexError) was verified when it was installed and damaged since
    (a disk error, a stray write): it is removed and fetched again, once; without
    this, every later load would open it and fail again."""
    manifest, fetched = await fetch_newest(transport, name, index_dir, manifest, copy_to=copy_to)
    try:
        return await use(manifest, fetched)
    except CorruptIndexError as exc:
        if not fetched.from_cache:
            raise
        log.warning("%s: cached v%d is damaged (%s); downloading it again", name, manifest.version, exc)
        await discard(index_dir, version_path(index_dir, manifest))
        return await use(manifest, await fetch_version(transport, name, index_dir, manifest, copy_to=copy_to))


async def fetch_newest(
    transport: Transport, name: str, index_dir: Path, manifest: Manifest, *, copy_to: Path | None = None
) -> tuple[Manifest, Fetched]:
    """``fetch_version``; if the service has deleted that version's file meanwhile
    (it keeps a few, after newer ones were published), the newest version instead."""
    while True:
        try:
            return manifest, await fetch_version(transport, name, index_dir, manifest, copy_to=copy_to)
        except IndexNotFoundError:
            newer = await transport.manifest(name)
            if newer.version <= manifest.version:
                raise
            manifest = newer


async def fetch_version(
    transport: Transport, name: str, index_dir: Path, manifest: Manifest, *, copy_to: Path | None = None
) -> Fetched:
    """The manifest's version in the cache folder ``index_dir``: a cache hit, a page
    patch or a (resumed) download, verified and installed, all under the lock. With
    ``copy_to``, also linked (or copied) there before the lock is let go, and the
    result's ``path`` is ``copy_to``. IndexNotFoundError: the service no longer has it."""
    async with index_dir_lock(index_dir):
        fetched = await _fetch_locked(transport, name, index_dir, manifest)
        if copy_to is None:
            return fetched
        try:
            await asyncio.to_thread(_link_or_copy, fetched.path, copy_to)
        except FileNotFoundError:
            # Removed since it was found: a reader retired by a swap deletes its file
            # without the lock. Now it is not there, so this patches or downloads it.
            fetched = await _fetch_locked(transport, name, index_dir, manifest)
            await asyncio.to_thread(_link_or_copy, fetched.path, copy_to)
        return dataclasses.replace(fetched, path=copy_to)


async def _fetch_locked(transport: Transport, name: str, index_dir: Path, manifest: Manifest) -> Fetched:
    target = version_path(index_dir, manifest)
    part = part_path(target)
    if target.exists():  # another process (or an earlier run) already has it...
        if await asyncio.to_thread(file_is_version, target, manifest):
            return Fetched(target)
        target.unlink()  # ...or a damaged copy
    clean_leftovers(index_dir, keep_part=part)
    if not part.exists():  # (a download cut short is resumed instead)
        patched = await _patch(transport, name, index_dir, manifest, target)
        if patched is not None:
            return patched
    for attempt in range(2):
        offset = part.stat().st_size if part.exists() else 0
        if offset > manifest.size_bytes:
            part.unlink()
            offset = 0
        async with flushed_behind(part):
            sha256 = await transport.download(name, manifest.version, part, offset=offset)
        try:
            await asyncio.to_thread(finish_download, part, target, manifest, sha256)
            return Fetched(target, downloaded_bytes=manifest.size_bytes - offset)
        except ChecksumMismatchError:
            if attempt == 1 or offset == 0:
                raise
            log.warning("%s: resumed download was corrupt; downloading again", name)
    raise AssertionError("unreachable")


async def _patch(transport: Transport, name: str, index_dir: Path, manifest: Manifest, target: Path) -> Fetched | None:
    """The new version built from the newest cached older one plus the pages that
    changed, or None if there is no such version or no patch (then download it all)."""
    base = next((cached for cached in cached_versions(index_dir) if cached.version < manifest.version), None)
    if base is None:
        return None
    patch, out = temp_path_for(target), temp_path_for(target)  # temp names: cleaned after a crash
    try:
        if not await transport.download_patch(name, manifest.version, base.version, patch, base_path=base.path):
            return None
        async with flushed_behind(out):  # (on the background thread: it gives way to queries)
            sha256 = await in_low_priority(apply_patch, base.path, patch, out)
        await in_low_priority(finish_download, out, target, manifest, sha256)
        return Fetched(target, downloaded_bytes=patch.stat().st_size, patched_from=int(base.version))
    except (IntegrityError, UnavailableError) as exc:  # a bad patch, or its stream broke
        log.warning("%s: patch v%d -> v%d failed (%s); downloading it all", name, base.version, manifest.version, exc)
        return None
    finally:
        patch.unlink(missing_ok=True)
        out.unlink(missing_ok=True)


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


def _link_or_copy(source: Path, dest: Path) -> None:
    """``dest`` becomes ``source``'s bytes: a hard link (cached files are never rewritten,
    so sharing the inode is safe), or a copy across filesystems."""
    dest.unlink(missing_ok=True)
    try:
        os.link(source, dest)
    except FileNotFoundError:
        raise
    except OSError:
        shutil.copyfile(source, dest)
