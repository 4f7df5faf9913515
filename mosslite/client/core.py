"""MossClient: the async client, with Moss's names.

With no ``url`` it runs the service core in this process (the embedded
default: data under ``cache_path`` or ``$MOSSLITE_HOME`` or ``~/.mosslite``);
with ``url`` it talks to ``mosslite serve`` over HTTP. Both go through a
Transport, so every method behaves the same either way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .._fs import usable_dir, user_path
from ..errors import (
    ClosedError,
    ConflictError,
    IndexNotLoadedError,
    InvalidArgumentError,
    UnavailableError,
)
from ..index.ranking import reciprocal_rank_fusion
from ..session import Session
from ..sync.clock import Clock, SystemClock
from ..sync.index_sync import IndexSync
from ..types import (
    DEFAULT_JOB_POLL_S,
    DEFAULT_JOB_TIMEOUT_S,
    DEFAULT_POLLING_INTERVAL_S,
    DocsPage,
    DocumentInfo,
    IndexInfo,
    Job,
    LoadedIndexInfo,
    LoadIndexesResult,
    MutationOptions,
    MutationResult,
    QueryOptions,
    SearchResult,
    SwapEvent,
    VersionInfo,
    iter_docs,
    options_or_default,
)
from ..transport.base import Transport
from ..transport.local import LocalTransport
from ..validation import validate_name
from .arguments import MIN_JOB_POLL_S, MIN_POLLING_INTERVAL_S, job_id_arg, seconds_arg, shown
from .embedded import default_home, embedded_service


class MossClient:
    """Example::

        client = MossClient("my-project", "my-key")
        job = await client.create_index("faq", [DocumentInfo(id="1", text="Refunds take 5 days")])
        await client.wait_for_job(job.job_id)
    """

    def __init__(
        self,
        project_id: str,
        project_key: str,
        *,
        url: str | None = None,
        cache_path: str | Path | None = None,
        transport: Transport | None = None,
        clock: Clock | None = None,
    ) -> None:
        """``clock`` drives refresh timers; tests pass a ManualClock instead of sleeping."""
        self.project_id = project_id
        self.clock: Clock = clock or SystemClock()
        self._loaded: dict[str, IndexSync] = {}
        self._swap_hooks: list[Callable[[SwapEvent], None]] = []
        if cache_path is None:
            self.home = default_home()
        else:
            self.home = usable_dir(user_path(cache_path, "cache_path"), "cache_path")
        if transport is not None:
            self.transport = transport
        elif url is not None:
            from ..transport.http import HTTPTransport

            self.transport = HTTPTransport(url, project_id, project_key)
        else:
            self.transport = LocalTransport(embedded_service(self.home / "service"), project_id, project_key)
        self._closed = False

    @property
    def cache_dir(self) -> Path:
        """Where downloaded index versions are kept: ``<home>/cache/<source>/<project>/<index>/``,
        one ``<source>`` per service (``embedded``, or a folder per server URL), so a copy
        is only ever served for the service it came from (#12)."""
        return self.home / "cache" / self.transport.source / self.project_id

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            for sync in list(self._loaded.values()):
                await sync.close()
            self._loaded.clear()
            await self.transport.aclose()

    async def __aenter__(self) -> MossClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this MossClient is closed")

    # -- mutations (asynchronous jobs) ----------------------------------------

    async def create_index(
        self, name: str, docs: Iterable[DocumentInfo], model_id: str | None = None
    ) -> MutationResult:
        """Start building a new index; returns with the job once the documents are
        sent. ``docs`` may be any iterable: a generator streams through in bounded
        memory (1M documents, or more than one HTTP request holds)."""
        self._check_open()
        return await self.transport.create_index(name, iter_docs(docs), model_id)

    async def add_docs(
        self, name: str, docs: Iterable[DocumentInfo], options: MutationOptions | None = None
    ) -> MutationResult:
        """Upsert (default) or insert documents; the live version keeps serving meanwhile.
        ``docs`` may be any iterable, as for ``create_index``."""
        self._check_open()
        options = options_or_default(options, MutationOptions)
        return await self.transport.add_docs(name, iter_docs(docs), options)

    async def delete_docs(self, name: str, ids: Sequence[str]) -> MutationResult:
        self._check_open()
        return await self.transport.delete_docs(name, ids)

    async def get_job_status(self, job_id: str) -> Job:
        self._check_open()
        return await self.transport.get_job(job_id_arg(job_id))

    async def wait_for_job(
        self,
        job_id: str,
        poll_interval_seconds: float = DEFAULT_JOB_POLL_S,
        timeout_seconds: float = DEFAULT_JOB_TIMEOUT_S,
    ) -> Job:
        """Poll until the job ends. Raises JobFailedError if it failed, TimeoutError_ if it
        has not ended within ``timeout_seconds`` (0 to a week; the pause between checks
        is MIN_JOB_POLL_S to a week). Bad arguments fail before the first check."""
        self._check_open()
        job_id = job_id_arg(job_id)
        poll_interval_seconds = seconds_arg(poll_interval_seconds, "poll_interval_seconds", MIN_JOB_POLL_S)
        timeout_seconds = seconds_arg(timeout_seconds, "timeout_seconds", 0.0)
        return await self.transport.wait_for_job(job_id, poll_interval_seconds, timeout_seconds)

    # -- indexes and documents on the service ----------------------------------

    async def get_index(self, name: str) -> IndexInfo:
        self._check_open()
        return await self.transport.get_index(name)

    async def list_indexes(self) -> list[IndexInfo]:
        self._check_open()
        return await self.transport.list_indexes()

    async def delete_index(self, name: str) -> None:
        self._check_open()
        await self.transport.delete_index(name)

    async def set_public(self, name: str, public: bool) -> IndexInfo:
        """Public read mode on or off (README: "Public read mode"). On, anyone with its
        URL reads the index's newest versions without a key, and devices poll its public
        manifest instead of the service; it needs a service started with
        ``--public-url``. Off, the public copies are deleted. Example::

            info = await client.set_public("faq", True)
            info.public_manifest   # https://cdn.example.com/mosslite/_public/my-project/faq/manifest.json
        """
        self._check_open()
        validate_name(name)
        if not isinstance(public, bool):
            raise InvalidArgumentError(f"public must be True or False, got {shown(public)}")
        return await self.transport.set_public(name, public)

    async def list_versions(self, name: str) -> list[VersionInfo]:
        """The index's published versions on the service, newest first: number, size,
        document count, time, and whether the service still keeps the file. Example::

            for v in await client.list_versions("faq"):
                print(v.version, v.doc_count, v.size_bytes, v.created_at, v.kept)
        """
        self._check_open()
        validate_name(name)
        return await self.transport.list_versions(name)

    async def get_docs(
        self,
        name: str,
        ids: Sequence[str] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        include_embedding: bool = True,
    ) -> list[DocumentInfo]:
        """Documents of the service's newest version, by id and/or filter. With
        ``include_embedding=False`` their ``embedding`` is None: far less to send
        when only texts and metadata matter (10k vectors are ~90 MB of JSON)."""
        self._check_open()
        return await self.transport.get_docs(name, ids, filter, bool(include_embedding))

    async def get_docs_page(
        self,
        name: str,
        ids: Sequence[str] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        include_embedding: bool = True,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> DocsPage:
        """One page of ``get_docs`` (at most ``limit`` documents, default 1000): to walk
        an index too large to hold at once. Every page of one walk reads the version
        its first page read. Example::

            page = await client.get_docs_page("faq", include_embedding=False)
            while page.next_cursor:
                page = await client.get_docs_page("faq", include_embedding=False, cursor=page.next_cursor)
        """
        self._check_open()
        return await self.transport.get_docs_page(
            name, ids, filter, bool(include_embedding), limit=limit, cursor=cursor
        )

    # -- local copies: load, refresh, query ----------------------------------------

    async def load_index(
        self,
        name: str,
        auto_refresh: bool = False,
        polling_interval_in_seconds: float = DEFAULT_POLLING_INTERVAL_S,
        cache_path: str | Path | None = None,
    ) -> LoadedIndexInfo:
        """Download (or reuse) the newest version, hydrate it, and serve queries from it.

        On a loaded index this is a blocking refresh that also replaces the refresh
        options; a ``cache_path`` other than the one it was loaded from is a
        ConflictError (unload it first). Offline with a cached version: serves it,
        ``was_served_stale`` is True. Every argument is checked before any request
        (issue #8): ``auto_refresh`` a bool, the interval from MIN_POLLING_INTERVAL_S
        to a week, ``cache_path`` a folder that can be created and written.
        """
        self._check_open()
        validate_name(name)
        if not isinstance(auto_refresh, bool):
            raise InvalidArgumentError(f"auto_refresh must be True or False, got {shown(auto_refresh)}")
        interval = seconds_arg(polling_interval_in_seconds, "polling_interval_in_seconds", MIN_POLLING_INTERVAL_S)
        base = self.cache_dir
        if cache_path is not None:
            base = user_path(cache_path, "cache_path") / self.transport.source / self.project_id
        sync = self._loaded.get(name)
        if sync is not None and cache_path is not None and (base / name).resolve() != sync.index_dir.resolve():
            raise ConflictError(
                f"index {name!r} is already loaded from {str(sync.index_dir)!r}, not {str(base / name)!r}",
                index=name,
                hint=f"call unload_index({name!r}) first to load it from another cache_path, or omit cache_path",
            )
        if sync is None:
            index_dir = usable_dir(base / name, "cache_path")
            sync = IndexSync(name, self.transport, index_dir, self.clock, self._emit_swap)
            await sync.refresh()
            self._loaded[name] = sync
        else:
            try:
                await sync.refresh()
            except UnavailableError:
                pass  # offline: keep serving what is loaded, marked stale (as a first load would)
        sync.configure(auto_refresh=auto_refresh, interval_s=interval)
        return sync.info()

    async def load_indexes(
        self,
        names: Sequence[str],
        auto_refresh: bool = False,
        polling_interval_in_seconds: float = DEFAULT_POLLING_INTERVAL_S,
    ) -> LoadIndexesResult:
        """Load several indexes concurrently; one failing does not stop the others."""
        outcomes = await asyncio.gather(
            *(self.load_index(n, auto_refresh, polling_interval_in_seconds) for n in names), return_exceptions=True
        )
        loaded = [n for n, o in zip(names, outcomes) if not isinstance(o, BaseException)]
        failed = {n: str(o) for n, o in zip(names, outcomes) if isinstance(o, BaseException)}
        return LoadIndexesResult(loaded=loaded, failed=failed)

    async def unload_index(self, name: str) -> None:
        self._check_open()
        sync = self._loaded.pop(name, None)
        if sync is None:
            raise IndexNotLoadedError(f"index {name!r} is not loaded", index=name)
        await sync.close()

    def _sync(self, name: str) -> IndexSync:
        self._check_open()
        sync = self._loaded.get(name)
        if sync is None or sync.live is None:
            raise IndexNotLoadedError(f"index {name!r} is not loaded", index=name)
        return sync

    def loaded_index(self, name: str) -> LoadedIndexInfo:
        return self._sync(name).info()

    def get_loaded_version(self, name: str) -> int:
        return self._sync(name).live.version  # type: ignore[union-attr]

    def was_served_stale(self, name: str) -> bool:
        """True while the loaded copy could not be checked against the service."""
        return self._sync(name).stale

    def on_swap(self, hook: Callable[[SwapEvent], None]) -> None:
        """Call ``hook(SwapEvent)`` after every hot swap (old and new version, duration)."""
        self._swap_hooks.append(hook)

    def _emit_swap(self, event: SwapEvent) -> None:
        for hook in list(self._swap_hooks):
            hook(event)

    def query_local(self, name: str, query: str, options: QueryOptions | None = None) -> SearchResult:
        """The query itself: thread-safe, no event loop needed (the blocking client calls
        this directly from the caller's thread)."""
        with self._sync(name).live.lease() as reader:  # type: ignore[union-attr]
            return reader.query(query, options)

    async def query(self, name: str, query: str, options: QueryOptions | None = None) -> SearchResult:
        """Query a loaded index locally (about a millisecond; runs inline on the loop)."""
        return self.query_local(name, query, options)

    async def query_multi_index(
        self, names: Sequence[str], query: str, options: QueryOptions | None = None
    ) -> SearchResult:
        """One global top-k over several loaded indexes of one model (reciprocal rank fusion)."""
        started = time.perf_counter()
        options = options_or_default(options, QueryOptions)
        models = {self._sync(n).live.reader.meta.model_id for n in names}  # type: ignore[union-attr]
        if len(models) > 1:
            raise InvalidArgumentError(f"indexes use different models {sorted(models)}; query them separately")
        results = [self.query_local(n, query, options) for n in names]
        docs = reciprocal_rank_fusion([r.docs for r in results], options.top_k)
        return SearchResult(docs=docs, query=query, index_name=None, time_taken_ms=(time.perf_counter() - started) * 1000)

    # -- sessions (issue #5) -----------------------------------------------------------

    async def session(
        self,
        index_name: str,
        model_id: str | None = None,
        auto_load_on_init: bool = True,
        *,
        cache_path: str | Path | None = None,
    ) -> Session:
        """Open (or resume) the local, durable session ``index_name``.

        If the service has that index, its current version is hydrated into the
        session's database (no re-embedding) and the session adopts its model; an
        explicit different ``model_id`` is an InvalidArgumentError. Otherwise the
        session starts empty (or from what this device kept of it). The file lives
        under ``<cache_path or home>/sessions/<project>/``; the index's version comes
        through this client's cache (``cache_dir``), so one loaded or cached here is
        not downloaded again. Example::

            session = await client.session("call-123")
            await session.add_docs([DocumentInfo(id="n1", text="caller wants a refund")])
            await session.push_index()
        """
        self._check_open()
        root = user_path(cache_path, "cache_path") if cache_path is not None else self.home / "sessions"
        return await Session.open(
            self.transport,
            index_name,
            model_id=model_id,
            auto_load_on_init=auto_load_on_init,
            directory=root / self.project_id,
            cache_dir=self.cache_dir,
        )
