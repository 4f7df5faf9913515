"""Where version files live on this device, and which of them may go.

Layout: ``<home>/cache/<source>/<project>/<index>/<version>-<build>.sqlite``
(``MossClient.cache_dir`` is ``<home>/cache/<source>/<project>``; ``<build>``: see
``build_tag``), plus while downloading a ``<version>-<build>.sqlite.part`` (kept
across crashes so the next attempt resumes it, with an HTTP Range request) and
``.lock`` (``lock.py``). Temp files (``_fs.TEMP_MARKER``) are patches being
applied or files being installed.

Invariants (issue #4):
- Only complete, verified files carry a version's name (``verify.py``); ``.part``
  and temp files are never read as versions.
- A name is one build's: an index deleted and made again under its name numbers
  its versions from 1 again, and its version 1 gets a name of its own. Before,
  fetching it replaced the old index's file under the shared name while a reader
  of the old one still served queries, and that reader's next connection opened
  the new index's file.
- Cleanups run under the folder's lock (``prune``, ``forget``, ``discard``).
- A cleanup in this process never removes a version file this process serves:
  ``IndexSync`` marks the file of every reader it installs with ``hold`` and
  ``release``\\ s it when the reader is retired. (Another process's cleanup may;
  its own refresh then replaces it.) Without this, a session fetching a newer
  version removed the file a loaded index still opens connections on.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from .._fs import TEMP_MARKER
from ..errors import InvalidArgumentError
from ..index.format import IndexMeta
from ..types import Manifest, Version
from .lock import index_dir_lock
from .verify import meta_of

PART_SUFFIX = ".part"

#: Version files readers of this process serve, and by whom (two clients may share a file).
_held: dict[Path, set[object]] = {}
_held_lock = threading.Lock()


def index_dir(cache_dir: Path, name: str) -> Path:
    """The folder of index ``name`` in a project's cache (``MossClient.cache_dir``)."""
    return cache_dir / name


#: Hex digits of ``build_tag``.
BUILD_TAG_CHARS = 12


@dataclass(frozen=True)
class CachedVersion:
    """A complete version file in the cache: its number, and where it is."""

    version: Version
    path: Path


def build_tag(created_at: str) -> str:
    """Which build of a version number a cached file holds: a digest of its build time,
    which ``verify.is_version`` checks with the number (the service's text, so not
    put in a file name as it is)."""
    return hashlib.sha256(created_at.encode("utf-8")).hexdigest()[:BUILD_TAG_CHARS]


def version_path(index_dir: Path, version: Manifest | IndexMeta) -> Path:
    """The cached file of that build of that version (a manifest's, or a file's meta)."""
    number = Version(version.version).filename().removesuffix(Version.SUFFIX)
    return index_dir / f"{number}-{build_tag(version.created_at)}{Version.SUFFIX}"


def part_path(target: Path) -> Path:
    """Where the download of ``target`` is written until it is verified."""
    return target.with_name(target.name + PART_SUFFIX)


def cached_versions(index_dir: Path) -> list[CachedVersion]:
    """Complete version files in the cache, newest number first."""
    if not index_dir.is_dir():
        return []
    found = [
        CachedVersion(version, entry) for entry in index_dir.iterdir() if (version := _version_of(entry.name)) is not None
    ]
    return sorted(found, key=lambda cached: (cached.version, cached.path.name), reverse=True)


def _version_of(name: str) -> Version | None:
    """The number in a version file's name; None for other files (.part, .lock, temp files)."""
    number, dash, rest = name.partition("-")
    tag = rest.removesuffix(Version.SUFFIX)
    if not dash or len(tag) != BUILD_TAG_CHARS or rest != tag + Version.SUFFIX or tag.strip("0123456789abcdef"):
        return None
    try:
        return Version.parse_filename(number + Version.SUFFIX)
    except InvalidArgumentError:
        return None


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
    """Remove cached versions older than ``current``, and others numbered as high or
    higher but built before it: those belong to an index deleted since (numbers restart
    when an index is made again), and offline they would be served as the newest. A
    number as high built later is a newer version another process sharing the cache
    fetched; kept."""
    keep = version_path(index_dir, current)
    for cached in cached_versions(index_dir):
        if cached.path != keep and (cached.version < current.version or not _built_after(cached.path, current)):
            _remove_unless_held(cached.path)
    clean_leftovers(index_dir)


def _built_after(path: Path, current: IndexMeta) -> bool:
    meta = meta_of(path)
    return meta is not None and meta.created_at > current.created_at


def remove_cache(index_dir: Path) -> None:
    """Remove every version of the index (the service says it no longer exists)."""
    for cached in cached_versions(index_dir):
        _remove_unless_held(cached.path)
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
