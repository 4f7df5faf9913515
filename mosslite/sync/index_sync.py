"""IndexSync: one loaded index, kept current by its own refresh task.

Invariants (issue #4):
- Refresh = read manifest -> download to ``.part`` -> verify sha256 -> fsync ->
  rename -> open a new reader -> swap (see LiveIndex). Any failure before the
  swap leaves the serving reader untouched; it is retried with backoff
  (1 s, 2 s, 4 s ... capped at the polling interval).
- With an older version in the cache, only the pages that changed are fetched
  (a page patch, index/pages.py) and applied to a copy of it; the result must
  match the manifest's sha256 like a download, and any failure of that path
  falls back to downloading the whole version.
- Each index has its own task, lock and timer: a slow or failing download of
  one index never delays queries or refreshes of another.
- Convergence: the timer fires every ``polling_interval_s`` after the previous
  check, so a version published at any moment is installed by the next tick,
  at most one interval later. Where the service is in this process, a
  watchfiles watch on its manifest wakes the task at once.
- A file is the manifest's version only if its number and build time match:
  an index deleted and made again under its name numbers its versions from 1
  again, and the old index's files must not pass for the new one's.
- A cached file is trusted by its size and meta, not hashed again (~0.4 s at
  100k documents); one that no longer opens is removed and fetched again.
- Offline: if the service cannot be reached but the cache has a version, it
  is served and marked stale until a check succeeds. An index the service
  says does not exist is never served from cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._db import connect, translating_sqlite_errors
from .._fs import temp_path_for
from ..errors import ChecksumMismatchError, CorruptIndexError, IndexNotFoundError, IntegrityError, UnavailableError
from ..index.format import IndexMeta, read_meta
from ..index.pages import apply_patch
from ..index.reader import IndexReader
from ..types import DEFAULT_POLLING_INTERVAL_S, LoadedIndexInfo, Manifest, SwapEvent
from .clock import Clock
from .hydration import (
    PART_SUFFIX,
    cached_versions,
    clean_leftovers,
    finish_download,
    flushed_behind,
    index_dir_lock,
    version_path,
)
from .live_index import LiveIndex

log = logging.getLogger("mosslite.sync")

BACKOFF_BASE_S = 1.0
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Fetched:
    """A version file in the cache, and what it took to get it there."""

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


class IndexSync:
    def __init__(
        self,
        name: str,
        transport,  # Transport; untyped here to avoid an import cycle with client/
        index_dir: Path,
        clock: Clock,
        on_swap: Callable[[SwapEvent], None],
    ) -> None:
        self.name = name
        self.transport = transport
        self.index_dir = index_dir
        self.clock = clock
        self.on_swap = on_swap
        self.live: LiveIndex | None = None
        self.stale = False
        self.auto_refresh = False
        self.interval_s = DEFAULT_POLLING_INTERVAL_S
        self.failures = 0
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stop_watch = asyncio.Event()  # ends the watchfiles thread promptly on stop
        self._tasks: list[asyncio.Task[None]] = []

    # -- facts -------------------------------------------------------------------

    def info(self) -> LoadedIndexInfo:
        assert self.live is not None
        reader = self.live.reader
        return LoadedIndexInfo(
            index_name=self.name,
            version=reader.version,
            doc_count=reader.doc_count,
            model_id=reader.meta.model_id,
            path=str(reader.path),
            stale=self.stale,
            auto_refresh=self.auto_refresh,
            polling_interval_s=self.interval_s,
        )

    # -- loading and refreshing ---------------------------------------------------

    async def refresh(self) -> bool:
        """Install the newest version if there is a newer one; True if a swap happened.

        With nothing loaded yet, falls back to the newest cached version when the
        service is unreachable (and says so through ``stale``)."""
        async with self._lock:
            started = time.perf_counter()
            try:
                manifest = await self.transport.manifest(self.name)
            except UnavailableError:
                self.stale = True
                if self.live is None and await self._serve_cached():
                    return True
                raise
            except IndexNotFoundError:
                if self.live is None:
                    async with index_dir_lock(self.index_dir):
                        await asyncio.to_thread(_remove_cache, self.index_dir)
                raise
            self.stale = False
            if self.live is not None and is_version(self.live.reader.meta, manifest):
                return False
            while True:
                try:
                    fetched = await self._fetch(manifest)
                    break
                except IndexNotFoundError:
                    # The version's file may have been deleted after newer ones were
                    # published (the service keeps a few); if so, fetch the newest.
                    newer = await self.transport.manifest(self.name)
                    if newer.version <= manifest.version:
                        raise
                    manifest = newer
            try:
                await self._install(fetched, started)
            except CorruptIndexError as exc:
                if not fetched.from_cache:
                    raise
                # Verified when it was installed, damaged since (a disk error, a stray
                # write): without this, every later load would open it and fail again.
                log.warning("%s: cached v%d is damaged (%s); downloading it again", self.name, manifest.version, exc)
                async with index_dir_lock(self.index_dir):
                    await asyncio.to_thread(fetched.path.unlink, missing_ok=True)
                await self._install(await self._fetch(manifest), started)
            return True

    async def _serve_cached(self) -> bool:
        for version in cached_versions(self.index_dir):
            try:
                await self._install(Fetched(version_path(self.index_dir, version)), time.perf_counter())
                log.warning("%s: service unreachable, serving cached version %d", self.name, version)
                return True
            except Exception as exc:  # a damaged cache file: try the next older one
                log.warning("%s: cached version %d unusable: %s", self.name, version, exc)
        return False

    async def _fetch(self, manifest: Manifest) -> Fetched:
        target = version_path(self.index_dir, manifest.version)
        part = target.with_name(target.name + PART_SUFFIX)
        async with index_dir_lock(self.index_dir):
            if target.exists():  # another process (or an earlier run) already has it...
                if await asyncio.to_thread(_file_is_version, target, manifest):
                    return Fetched(target)
                target.unlink()  # ...or it is of an earlier index of this name
            clean_leftovers(self.index_dir, keep_part=part)
            if not part.exists():  # (a download cut short is resumed instead)
                patched = await self._patch(manifest, target)
                if patched is not None:
                    return patched
            for attempt in range(2):
                offset = part.stat().st_size if part.exists() else 0
                if offset > manifest.size_bytes:
                    part.unlink()
                    offset = 0
                async with flushed_behind(part):
                    sha256 = await self.transport.download(self.name, manifest.version, part, offset=offset)
                try:
                    await asyncio.to_thread(finish_download, part, target, manifest, sha256)
                    return Fetched(target, downloaded_bytes=manifest.size_bytes - offset)
                except ChecksumMismatchError:
                    if attempt == 1 or offset == 0:
                        raise
                    log.warning("%s: resumed download was corrupt; downloading again", self.name)
        raise AssertionError("unreachable")

    async def _patch(self, manifest: Manifest, target: Path) -> Fetched | None:
        """The new version built from the newest cached older one plus the pages that
        changed, or None if there is no such version or no patch (then download it all)."""
        base = next((v for v in cached_versions(self.index_dir) if v < manifest.version), None)
        if base is None:
            return None
        patch, out = temp_path_for(target), temp_path_for(target)  # temp names: cleaned after a crash
        try:
            if not await self.transport.download_patch(self.name, manifest.version, base, patch):
                return None
            async with flushed_behind(out):
                sha256 = await asyncio.to_thread(apply_patch, version_path(self.index_dir, base), patch, out)
            await asyncio.to_thread(finish_download, out, target, manifest, sha256)
            return Fetched(target, downloaded_bytes=patch.stat().st_size, patched_from=int(base))
        except (IntegrityError, UnavailableError) as exc:  # a bad patch, or its stream broke
            log.warning("%s: patch v%d -> v%d failed (%s); downloading it all", self.name, base, manifest.version, exc)
            return None
        finally:
            patch.unlink(missing_ok=True)
            out.unlink(missing_ok=True)

    async def _install(self, fetched: Fetched, started: float) -> None:
        """Open the fetched file and make it the serving version; ``started`` is when this
        refresh began, so the swap event reports check + download + verify + open + swap."""
        reader = await asyncio.to_thread(IndexReader, fetched.path)
        if self.live is not None:
            # The serving version keeps its fast search until the new one has its own:
            # a swap never makes queries slower for a while (issue #7).
            try:
                await asyncio.to_thread(reader.wait_ready)
            except BaseException:
                reader.close()
                raise
        if self.live is None:
            self.live = LiveIndex(reader)
            log.info("%s: loaded v%d (%s)", self.name, reader.version, fetched.how())
            # Under the lock: another process sharing the cache may be mid-download.
            async with index_dir_lock(self.index_dir):
                await asyncio.to_thread(_remove_other_versions, self.index_dir, reader.meta)
            return
        old = await asyncio.to_thread(self.live.swap, reader)
        event = SwapEvent(
            index_name=self.name,
            old_version=old.version,
            new_version=reader.version,
            duration_ms=(time.perf_counter() - started) * 1000.0,
            downloaded_bytes=fetched.downloaded_bytes,
            patched_from=fetched.patched_from,
        )
        log.info(
            "%s: swapped v%d -> v%d in %.1f ms (%s)",
            self.name,
            event.old_version,
            event.new_version,
            event.duration_ms,
            fetched.how(),
        )
        self.on_swap(event)

    # -- the refresh task ----------------------------------------------------------

    def configure(self, *, auto_refresh: bool, interval_s: float) -> None:
        """Replace the refresh options; (re)start or stop the task to match."""
        self.auto_refresh, self.interval_s = auto_refresh, interval_s
        self.stop()
        self._stop_watch = asyncio.Event()
        if auto_refresh:
            self._tasks.append(asyncio.create_task(self._run(), name=f"mosslite-refresh-{self.name}"))
            watch_dir = self.transport.watch_dir(self.name)
            if watch_dir is not None:
                self._tasks.append(asyncio.create_task(self._watch(watch_dir), name=f"mosslite-watch-{self.name}"))

    def stop(self) -> None:
        self._stop_watch.set()
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            delay = self.interval_s if self.failures == 0 else min(self.interval_s, BACKOFF_BASE_S * 2 ** (self.failures - 1))
            await self._wait(delay)
            try:
                await self.refresh()
                self.failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one bad check end the task
                self.failures += 1
                log.warning("%s: refresh failed (attempt %d): %s", self.name, self.failures, exc)

    async def _wait(self, delay_s: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(delay_s))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
            self._wake.clear()

    async def _watch(self, watch_dir: Path) -> None:
        import watchfiles

        watch_dir.mkdir(parents=True, exist_ok=True)
        try:
            async for _ in watchfiles.awatch(
                watch_dir,
                watch_filter=lambda change, path: Path(path).name == MANIFEST_NAME,
                debounce=50,
                step=20,
                recursive=False,
                stop_event=self._stop_watch,
            ):
                self.wake()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # watching is an optimisation; the timer still runs
            log.warning("%s: manifest watch stopped: %s", self.name, exc)

    async def close(self) -> None:
        tasks = list(self._tasks)
        self.stop()
        await asyncio.gather(*tasks, return_exceptions=True)  # let cancellations land
        if self.live is not None:
            self.live.close()


def is_version(meta: IndexMeta, manifest: Manifest) -> bool:
    """Whether an index file is the manifest's version. The number alone does not say:
    an index deleted and made again under its name counts from 1 again, so a file
    with the same number may be the old index's. The build time (ms) tells them apart."""
    return meta.version == manifest.version and meta.created_at == manifest.created_at


def _file_is_version(path: Path, manifest: Manifest) -> bool:
    if path.stat().st_size != manifest.size_bytes:
        return False
    meta = _meta_of(path)
    return meta is not None and is_version(meta, manifest)


def _meta_of(path: Path) -> IndexMeta | None:
    """A cached file's meta; None if it is damaged (fetch it again) or gone."""
    try:
        with translating_sqlite_errors(path):
            conn = connect(path, immutable=True)
        try:
            return read_meta(conn, path)
        finally:
            conn.close()
    except IntegrityError:  # CorruptIndexError included
        return None


def _remove_other_versions(index_dir: Path, current: IndexMeta) -> None:
    """Remove cached versions older than ``current``, and higher-numbered ones built
    before it: those belong to an index deleted since (numbers restart when an index
    is made again), and offline they would be served as the newest. A higher number
    built later is a newer version another process sharing the cache fetched; kept."""
    for version in cached_versions(index_dir):
        path = version_path(index_dir, version)
        if version < current.version or (version > current.version and not _built_after(path, current)):
            path.unlink(missing_ok=True)
    clean_leftovers(index_dir)


def _built_after(path: Path, current: IndexMeta) -> bool:
    meta = _meta_of(path)
    return meta is not None and meta.created_at > current.created_at


def _remove_cache(index_dir: Path) -> None:
    for version in cached_versions(index_dir):
        version_path(index_dir, version).unlink(missing_ok=True)
    clean_leftovers(index_dir)
