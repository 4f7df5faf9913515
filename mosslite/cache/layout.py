"""Where version files live on this device, and which of them may go.

Layout: ``<home>/cache/<source>/<project>/<index>/<version>.sqlite`` (``MossClient.cache_dir``
is ``<home>/cache/<source>/<project>``), plus while downloading a ``<version>.sqlite.part``
(kept across crashes so the next attempt resumes it, with an HTTP Range request)
and ``.lock`` (``lock.py``). Temp files (``_fs.TEMP_MARKER``) are patches being
applied or files being installed.

Invariants (issue #4):
- Only complete, verified files carry a version's name (``verify.py``); ``.part``
  and temp files are never read as versions.
- Cleanups run under the folder's lock (``prune``, ``forget``, ``discard``).
- A cleanup in this process never removes a version file this process serves:
  ``IndexSync`` marks the file of every reader it installs with ``hold`` and
  ``release``\\ s it when the reader is retired. (Another process's cleanup may;
  its own refresh then replaces it.) Without this, a session fetching a newer
  version removed the file a loaded index still opens connections on.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from .._fs import TEMP_MARKER
from ..index.format import IndexMeta
from ..types import Version
from .lock import index_dir_lock
from .verify import meta_of

PART_SUFFIX = ".part"

#: Version files readers of this process serve, and by whom (two clients may share a file).
_held: dict[Path, set[object]] = {}
_held_lock = threading.Lock()


def index_dir(cache_dir: Path, name: str) -> Path:
    """The folder of index ``name`` in a project's cache (``MossClient.cache_dir``)."""
    return cache_dir / name


def version_path(index_dir: Path, version: int) -> Path:
    return index_dir / Version(version).filename()


def part_path(target: Path) -> Path:
    """Where the download of ``target`` is written until it is verified."""
    return target.with_name(target.name + PART_SUFFIX)


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


# -- files this process serves ----------------------------------------------------------


def hold(path: Path, owner: object) -> None:
    """``path`` is served by ``owner`` (a reader) in this process: cleanups here leave it."""
    with _held_lock:
        _held.setdefault(path.resolve(), set()).add(owner)


def release(path: Path, owner: object) -> None:
    """``owner`` no longer serves ``path``. Idempotent: a reader released when its
    client closes is released again, harmlessly, when the thread closing it ends."""
    key = path.resolve()
    with _held_lock:
        owners = _held.get(key)
        if owners is not None:
            owners.discard(owner)
            if not owners:
                del _held[key]


def is_held(path: Path) -> bool:
    with _held_lock:
        return path.resolve() in _held


def _remove_unless_held(path: Path) -> None:
    if not is_held(path):
        path.unlink(missing_ok=True)


# -- cleanups (callers hold the folder's lock; the async forms take it) -----------------


def remove_other_versions(index_dir: Path, current: IndexMeta) -> None:
    """Remove cached versions older than ``current``, and higher-numbered ones built
    before it: those belong to an index deleted since (numbers restart when an index
    is made again), and offline they would be served as the newest. A higher number
    built later is a newer version another process sharing the cache fetched; kept."""
    for version in cached_versions(index_dir):
        path = version_path(index_dir, version)
        if version < current.version or (version > current.version and not _built_after(path, current)):
            _remove_unless_held(path)
    clean_leftovers(index_dir)


def _built_after(path: Path, current: IndexMeta) -> bool:
    meta = meta_of(path)
    return meta is not None and meta.created_at > current.created_at


def remove_cache(index_dir: Path) -> None:
    """Remove every version of the index (the service says it no longer exists)."""
    for version in cached_versions(index_dir):
        _remove_unless_held(version_path(index_dir, version))
    clean_leftovers(index_dir)


async def prune(index_dir: Path, current: IndexMeta) -> None:
    """``remove_other_versions`` under the lock: another process sharing the cache
    may be mid-download."""
    async with index_dir_lock(index_dir):
        await asyncio.to_thread(remove_other_versions, index_dir, current)


async def forget(index_dir: Path) -> None:
    """``remove_cache`` under the lock: an index the service says does not exist is
    never served from cache."""
    async with index_dir_lock(index_dir):
        await asyncio.to_thread(remove_cache, index_dir)


async def discard(index_dir: Path, path: Path) -> None:
    """Remove one cached file found damaged, under the lock."""
    async with index_dir_lock(index_dir):
        await asyncio.to_thread(path.unlink, missing_ok=True)
