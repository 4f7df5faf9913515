"""IndexStore: one mosslite index as a framework's vector store uses it.

The framework stores (``langchain.py``, ``llama_index.py``) each hold one and only
translate documents, filters and results; what a vector store promises is kept here.

Invariants:
- Read your writes: ``upsert`` and ``delete`` return once their job has completed
  and, if this client has the index loaded, once the loaded copy serves the version
  the job published (a refresh that keeps the refresh options it was loaded with).
  A search loads the index on first use, so it sees every write that returned. Loads
  and those refreshes take turns (one lock): a write that completes while a first
  load is under way refreshes after it, rather than finding nothing loaded and
  leaving the load with the version it read before the write.
- Others' writes: the store loads the index with ``auto_refresh`` (on by default),
  so a search sees what other clients and processes publish: the embedded
  service's new versions arrive at once (a watch on its manifest), a server's at
  the next ``polling_interval_in_seconds`` (5 s by default). A copy the client
  had loaded already keeps its own refresh options.
- The first upsert makes the index (``create_index`` with the store's model). Until
  then a search or a lookup finds nothing and a delete deletes nothing.
- A store that brings its own vectors (the ``custom`` model) is never pointed at an
  index whose model embeds, nor the other way round: checked before anything is
  written and before every search (against the loaded copy's model, whoever loaded
  it), an InvalidArgumentError, so no vector is searched with another model's.
- The work is coroutines on a MossClient. A store made from a SyncMossClient runs
  them on that client's loop thread (``run``; ``arun`` does so from another event
  loop, through a worker thread). One made from a MossClient awaits them on the
  caller's loop (``arun``), and ``run`` is an InvalidArgumentError there: blocking on
  the loop the client lives on would never return.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from contextlib import suppress
from typing import Any, TypeVar

from ..client import MossClient, SyncMossClient
from ..client.arguments import MIN_POLLING_INTERVAL_S, seconds_arg, shown
from ..embeddings.custom import CUSTOM_MODEL_ID
from ..errors import ConflictError, IndexNotFoundError, IndexNotLoadedError, InvalidArgumentError
from ..types import (
    DEFAULT_LIVE_POLLING_INTERVAL_S,
    DocumentInfo,
    LoadedIndexInfo,
    MutationResult,
    QueryOptions,
    QueryResultDocumentInfo,
    check_batch,
)
from ..validation import check_ids, validate_name

T = TypeVar("T")

#: The pause between two checks of a job a framework call waits on: a small batch builds
#: in milliseconds, and the client's default (0.25 s) would be most of an add.
JOB_POLL_S = 0.01


class IndexStore:
    """Example::

        store = IndexStore("faq", SyncMossClient("my-project", "my-key"))
        store.run(store.upsert([DocumentInfo(id="1", text="Refunds take 5 days")]))
        docs = store.search("refund", QueryOptions(top_k=3))
    """

    def __init__(
        self,
        index_name: str,
        client: MossClient | SyncMossClient | None = None,
        *,
        project_id: str | None = None,
        project_key: str | None = None,
        url: str | None = None,
        model_id: str | None = None,
        auto_refresh: bool = True,
        polling_interval_in_seconds: float = DEFAULT_LIVE_POLLING_INTERVAL_S,
    ) -> None:
        """``client``, or ``project_id`` and ``project_key`` (and ``url`` for a server)
        for a SyncMossClient of the store's own, closed by ``close``. ``model_id`` is
        the model a new index is made with (None: mosslite's default; ``custom``: the
        store brings every vector). ``auto_refresh`` and ``polling_interval_in_seconds``
        are the options the store loads the index with (``load_index``'s)."""
        self.name = validate_name(index_name)
        self.model_id = model_id
        if not isinstance(auto_refresh, bool):
            raise InvalidArgumentError(f"auto_refresh must be True or False, got {shown(auto_refresh)}")
        interval_s = seconds_arg(polling_interval_in_seconds, "polling_interval_in_seconds", MIN_POLLING_INTERVAL_S)
        self.refresh_options = (auto_refresh, interval_s)
        self._lock = asyncio.Lock()  # loads and the refreshes after writes, one at a time
        self._owned = client is None
        if client is None:
            if project_id is None or project_key is None:
                raise InvalidArgumentError("pass a client, or project_id and project_key", index=index_name)
            client = SyncMossClient(project_id, project_key, url=url)
        elif (project_id, project_key, url) != (None, None, None):
            raise InvalidArgumentError("pass either a client or project_id/project_key/url, not both")
        if isinstance(client, SyncMossClient):
            self._blocking: SyncMossClient | None = client
            self.client: MossClient = client.async_client
        elif isinstance(client, MossClient):
            self._blocking, self.client = None, client
        else:
            raise InvalidArgumentError(f"client must be a MossClient or a SyncMossClient, got {type(client).__name__}")
        self.given_client = client

    @property
    def brings_vectors(self) -> bool:
        return self.model_id == CUSTOM_MODEL_ID

    def close(self) -> None:
        """Close the SyncMossClient the store made for itself (a client passed in stays open)."""
        if self._owned and self._blocking is not None:
            self._blocking.close()

    # -- running the coroutines below ------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro`` run to its end, from code without an event loop."""
        if self._blocking is None:
            coro.close()  # (never awaited, and no warning saying so)
            raise InvalidArgumentError(
                "this store was made from an async MossClient: a blocking call would wait on the client's own loop",
                hint="await the store's async methods, or make the store from a SyncMossClient",
            )
        return self._blocking.run(coro)

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro`` awaited from the caller's event loop."""
        if self._blocking is None:
            return await coro
        return await asyncio.to_thread(self._blocking.run, coro)

    # -- coroutines: writes, lookups, load ------------------------------------------------

    async def upsert(self, docs: Sequence[DocumentInfo]) -> None:
        """Add or replace ``docs``, making the index if it does not exist yet."""
        docs = check_batch(docs)
        if not docs:
            return
        model = await self._index_model()
        job = await self._create(docs) if model is None else None
        if job is None:
            self._check_model(model or await self._index_model())
            job = await self.client.add_docs(self.name, docs)
        await self._settle(job)

    async def delete(self, ids: Sequence[str]) -> None:
        """Delete the documents of ``ids``; ids the index does not hold are no error."""
        ids = check_ids(list(ids))
        if not ids:
            return
        try:
            job = await self.client.delete_docs(self.name, ids)
        except IndexNotFoundError:
            return
        await self._settle(job)

    async def get(self, ids: Sequence[str] | None = None, filter: dict[str, Any] | None = None) -> list[DocumentInfo]:
        """The documents of ``ids`` (in that order, missing ones left out) and/or ``filter``,
        from the service's newest version, without their vectors."""
        if ids is not None:
            ids = check_ids(list(ids))
            if not ids:
                return []
        try:
            return await self.client.get_docs(self.name, ids, filter, include_embedding=False)
        except IndexNotFoundError:
            return []

    async def delete_where(self, ids: Sequence[str] | None = None, filter: dict[str, Any] | None = None) -> None:
        """Delete what ``get(ids, filter)`` finds."""
        await self.delete([doc.id for doc in await self.get(ids, filter)])

    async def clear(self) -> None:
        """Delete the index (the next upsert makes it again)."""
        async with self._lock:
            with suppress(IndexNotLoadedError):
                await self.client.unload_index(self.name)
        with suppress(IndexNotFoundError):
            await self.client.delete_index(self.name)

    async def load(self) -> bool:
        """Load the index unless it is loaded (a load under way finishes first); False if
        the index does not exist (yet)."""
        async with self._lock:
            return self._loaded() is not None or await self._load()

    # -- searches of the loaded copy ----------------------------------------------------------

    def search(self, text: str, options: QueryOptions) -> list[QueryResultDocumentInfo]:
        """The best documents for ``text`` and ``options``, from code without an event loop."""
        docs = self._query(text, options)
        if docs is None:
            docs = self._query(text, options) if self.run(self.load()) else []
        return docs or []

    async def asearch(self, text: str, options: QueryOptions) -> list[QueryResultDocumentInfo]:
        """``search`` from an event loop: the query (and the embedding of its text) runs
        in a worker thread, so the loop goes on meanwhile."""
        docs = await asyncio.to_thread(self._query, text, options)
        if docs is None:
            docs = await asyncio.to_thread(self._query, text, options) if await self.arun(self.load()) else []
        return docs or []

    def _query(self, text: str, options: QueryOptions) -> list[QueryResultDocumentInfo] | None:
        """The loaded copy's answer (the query runs in this thread), or None if not loaded.
        Its model is checked each time: a refresh may bring an index made again with
        another, and a copy this store did not load was never checked."""
        try:
            self._check_model(self.client.loaded_index(self.name).model_id)
            return self.client.query_local(self.name, text, options).docs
        except IndexNotLoadedError:
            return None

    # -- the parts -------------------------------------------------------------------------

    async def _create(self, docs: list[DocumentInfo]) -> MutationResult | None:
        """The job making the index of ``docs``; None if another writer made it meanwhile."""
        try:
            return await self.client.create_index(self.name, docs, self.model_id)
        except ConflictError:
            return None

    async def _settle(self, job: MutationResult) -> None:
        """Wait for ``job``; then a loaded copy (or one being loaded) serves the version
        it published."""
        await self.client.wait_for_job(job.job_id, poll_interval_seconds=JOB_POLL_S)
        async with self._lock:
            if self._loaded() is not None:
                await self._load()

    async def _load(self) -> bool:
        """(Under the lock.) Load the index with the store's refresh options, or bring the
        loaded copy to the newest version keeping its own; False if there is no index."""
        loaded = self._loaded()
        options = self.refresh_options if loaded is None else (loaded.auto_refresh, loaded.polling_interval_s)
        try:
            await self.client.load_index(self.name, *options)
        except IndexNotFoundError:
            return False
        return True

    def _loaded(self) -> LoadedIndexInfo | None:
        try:
            return self.client.loaded_index(self.name)
        except IndexNotLoadedError:
            return None

    async def _index_model(self) -> str | None:
        """The index's model (the loaded copy's, or the service's); None if there is no index."""
        loaded = self._loaded()
        if loaded is not None:
            return loaded.model_id
        try:
            return (await self.client.get_index(self.name)).model
        except IndexNotFoundError:
            return None

    def _check_model(self, model: str | None) -> None:
        if model is None or (model == CUSTOM_MODEL_ID) == self.brings_vectors:
            return
        if self.brings_vectors:
            raise InvalidArgumentError(
                f"index {self.name!r} embeds with {model!r}, but this store brings its own vectors",
                index=self.name,
                hint="use another index name, or make the store without embeddings to search with the index's model",
            )
        raise InvalidArgumentError(
            f"index {self.name!r} holds 'custom' vectors, and this store has no embeddings to query it with",
            index=self.name,
            hint="make the store with the embeddings the index was built with",
        )


def refuse_unknown(kwargs: Mapping[str, Any], what: str, known: Sequence[str] = (), *, takes: str) -> None:
    """A keyword argument a store does not know is an InvalidArgumentError rather than
    ignored (``filters=`` for ``filter=`` would search everything)."""
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise InvalidArgumentError(f"{what} got unknown argument(s) {unknown}: it takes {takes}")
