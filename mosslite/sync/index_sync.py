"""IndexSync: one loaded index, kept current by its own refresh task.

Invariants (issue #4):
- Refresh = read manifest -> fetch through ``cache/`` (a cache hit, a page
  patch applied to an older cached version, or a resumable download; verified
  by sha256 and installed, see ``cache/fetch.py``) -> open a new reader -> swap
  (see LiveIndex). Any failure before the swap leaves the serving reader
  untouched; it is retried with backoff (1 s, 2 s, 4 s ... capped at the
  polling interval).
- Each index has its own task, lock and timer: a slow or failing download of
  one index never delays queries or refreshes of another.
- Convergence: the timer fires every ``polling_interval_s`` after the previous
  check, so a version published at any moment is installed by the next tick,
  at most one interval later. Where the service is in this process, a
  watchfiles watch on its manifest wakes the task at once.
- The loaded version is the manifest's only if its number and build time match
  (``cache.verify.is_version``): an index deleted and made again under its name
  numbers its versions from 1 again.
- Every reader it serves is ``hold``-ed in the cache (``cache/layout.py``) until
  it is retired, so no cleanup of this process (another client's first load, a
  session's fetch) removes the file under it.
- Offline: if the service cannot be reached but the cache has a version, it
  is served and marked stale until a check succeeds. An index the service
  says does not exist is never served from cache.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path

from .._background import in_low_priority
from ..cache.fetch import Fetched, fetch_and_use
from ..cache.layout import cached_versions, forget, hold, prune, release
from ..cache.verify import is_version
from ..errors import IndexNotFoundError, UnavailableError
from ..index.reader import IndexReader
from ..transport.base import Transport
from ..types import DEFAULT_POLLING_INTERVAL_S, LoadedIndexInfo, Manifest, SwapEvent
from .clock import Clock
from .live_index import LiveIndex

log = logging.getLogger("mosslite.sync")

BACKOFF_BASE_S = 1.0
MANIFEST_NAME = "manifest.json"


class IndexSync:
    def __init__(
        self,
        name: str,
        transport: Transport,
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
                    await forget(self.index_dir)
                raise
            self.stale = False
            if self.live is not None and is_version(self.live.reader.meta, manifest):
                return False

            async def install(_: Manifest, fetched: Fetched) -> None:
                await self._install(fetched, started)

            await fetch_and_use(self.transport, self.name, self.index_dir, manifest, install)
            return True

    async def _serve_cached(self) -> bool:
        for cached in cached_versions(self.index_dir):
            try:
                await self._install(Fetched(cached.path), time.perf_counter())
                log.warning("%s: service unreachable, serving cached version %d", self.name, cached.version)
                return True
            except Exception as exc:  # a damaged cache file: try the next older one
                log.warning("%s: cached version %d unusable: %s", self.name, cached.version, exc)
        return False

    async def _install(self, fetched: Fetched, started: float) -> None:
        """Open the fetched file and make it the serving version; ``started`` is when this
        refresh began, so the swap event reports check + download + verify + open + swap."""
        if self.live is None:
            reader = await asyncio.to_thread(IndexReader, fetched.path)
        else:
            # A version replacing the serving one is opened, made ready and warmed on the
            # thread that gives way to queries (issue #7); the serving version keeps its
            # fast search meanwhile, so a swap never makes queries slower for a while.
            # Warm: what the serving version's queries asked for lately is read now, not
            # by the first queries after the swap.
            reader = await in_low_priority(functools.partial(IndexReader, fetched.path, like=self.live.reader))
            try:
                await asyncio.to_thread(reader.wait_ready)
                await in_low_priority(reader.warm_from, self.live.reader)
            except BaseException:
                reader.close()
                raise
        hold(reader.path, reader)
        if self.live is None:
            self.live = LiveIndex(reader, on_retired=_released)
            log.info("%s: loaded v%d (%s)", self.name, reader.version, fetched.how())
            await prune(self.index_dir, reader.meta)
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
            reader = self.live.reader
            self.live.close()
            # Now, not when the thread closing the reader gets to it: a client loading
            # this index next must be free to clean the cache up (cache/layout.py).
            _released(reader)



def _released(reader: IndexReader) -> None:
    """A retired reader's file may go in this process's cleanups (cache/layout.py)."""
    release(reader.path, reader)
