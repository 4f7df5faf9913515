"""Session: a durable local database an agent writes to, queries, and pushes as a diff.

A session is how an agent accumulates context during an interaction and hands
it to the service so any agent can resume it (issue #5)::

    session = await client.session("call-123")             # hydrates the index, if any
    added, updated = await session.add_docs([DocumentInfo(id="n1", text="...")])
    res = await session.query("what did the caller want?", QueryOptions(top_k=3))
    result = await session.push_index()                     # only what changed, as a diff
    await session.close()

Files: ``<home>/sessions/<project>/<name>.sqlite`` (WAL; ``schemas/session.sql``)
and ``<name>.lock`` beside it. This module holds the lifecycle (the file lock,
open, close) and the public methods; the work is done by ``store.py`` (the
database), ``model.py`` (which model, and embedding), ``memory.py`` (the
in-memory index queries run on) and ``exchange.py`` (push, and pull through
``cache/``). It takes a Transport, not a client: nothing here imports ``client``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from .._fs import usable_dir
from ..errors import ClosedError, ConflictError, IndexNotFoundError, InvalidArgumentError, UnavailableError
from ..filters import compile_filter
from ..rows import metadata_json, stored_doc
from ..transport.base import Transport
from ..types import (
    DocumentInfo,
    IndexInfo,
    MutationOptions,
    PushIndexResult,
    QueryOptions,
    SearchResult,
    check_batch,
    options_or_default,
)
from ..validation import check_ids, validate_name
from .exchange import Exchange, Pulled
from .memory import MemoryIndex
from .model import SessionModel
from .store import SessionStore

SESSION_SUFFIX = ".sqlite"
LOCK_SUFFIX = ".lock"
#: Merge FTS5 segments after this many written documents (or a tenth of the session).
OPTIMIZE_EVERY_DOCS = 1000


class SessionState(Enum):
    OPEN = "open"
    CLOSED = "closed"


class Session:
    """A session's documents: durable on every return, queryable at once, pushed as diffs.

    Invariants (issue #5) and why they hold:
    - **Durable on return.** ``add_docs``/``delete_docs`` commit the rows and the
      session-extension changeset that records them in one WAL transaction
      (``SessionStore``) before returning; a process killed at any point
      reopens with every returned write, pushed or not.
    - **Push sends only the diff.** Pending changesets are combined
      (``sqlite3changegroup``) into one changeset of the net change per id.
      It is stored with a diff id *before* it is sent and forgotten only after
      the service reports the job that applied it completed, so a lost answer,
      an offline service or a crash mid-push resends the same diff id, which
      the service applies once (``exchange.py``).
    - **Merges, never forks.** The service applies each diff onto its latest
      version (last push wins per document, counted in ``overwritten``), so
      sessions of one name in several processes all land. Opening (or
      ``load()``) overlays the service's latest version with the changes not
      pushed yet.
    - **One download path** (issue #9). The latest version comes through
      ``cache/`` into the client's cache, as a loaded index's does: a version
      this process loaded, or any the cache holds, is not downloaded again.
    - **One process per session file.** The file is locked (``flock``) while
      open; a second opener gets ConflictError. Agents on one machine that
      share a session name use separate ``cache_path``s, as agents on separate
      machines do anyway.
    - **Queries match IndexReader's.** The same filters (``mosslite/filters.py``) and
      ranking (``index.ranking``): vectors from an in-memory matrix updated on
      every write, keywords from the file's FTS5 table (BM25) (``memory.py``).
    """

    def __init__(
        self, transport: Transport, name: str, path: Path, store: SessionStore, lock_fd: int, cache_dir: Path
    ) -> None:
        self._transport = transport
        self._name = name
        self.path = path
        self._store = store
        self._lock_fd = lock_fd
        self._state = SessionState.OPEN
        self._model = SessionModel(name, path, store)
        self._memory = MemoryIndex(store)
        self._exchange = Exchange(
            transport,
            name,
            store,
            self._model,
            cache_dir=cache_dir,
            base_copy=path.with_name(f"{name}.base{SESSION_SUFFIX}"),
        )
        #: True when the service could not be reached at open or load: serving the local copy.
        self.stale = False
        self._written_since_optimize = 0

    # -- opening ------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        transport: Transport,
        name: str,
        *,
        cache_dir: Path,
        directory: Path,
        model_id: str | None = None,
        auto_load_on_init: bool = True,
    ) -> Session:
        """Open (or resume) session ``name``: its file in ``directory``, its index's
        versions fetched into ``cache_dir`` (a project's cache, as ``MossClient.cache_dir``:
        ``<home>/cache/<source>/<project>``). ``MossClient.session`` calls this. Example::

            session = await Session.open(
                transport, "call-123", cache_dir=home / "cache" / "embedded" / "p", directory=home / "sessions" / "p"
            )
        """
        validate_name(name, what="session")
        if model_id is not None and not isinstance(model_id, str):
            raise InvalidArgumentError(f"model_id must be a string or None, got {type(model_id).__name__}")
        if not isinstance(auto_load_on_init, bool):
            raise InvalidArgumentError(f"auto_load_on_init must be True or False, got {type(auto_load_on_init).__name__}")
        usable_dir(directory, "cache_path")
        lock_fd = _lock(directory / f"{name}{LOCK_SUFFIX}", name)
        path = directory / f"{name}{SESSION_SUFFIX}"
        try:
            store = await asyncio.to_thread(SessionStore, path)
        except BaseException:
            _unlock(lock_fd)
            raise
        session = cls(transport, name, path, store, lock_fd, cache_dir)
        try:
            await session._init(model_id, auto_load_on_init)
        except BaseException:
            await session.close()
            raise
        return session

    async def _init(self, model_id: str | None, auto_load: bool) -> None:
        info = None
        if auto_load:
            try:
                info = await self._transport.get_index(self._name)
            except IndexNotFoundError:
                info = None
            except UnavailableError:
                self.stale = True
        await self._model.choose(model_id, info)
        await asyncio.to_thread(self._load_memory)
        if auto_load and not self.stale:
            await self._pull(info, fetched=True)

    # -- facts ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def model_id(self) -> str:
        return self._model.model_id

    @property
    def dimension(self) -> int | None:
        return self._model.dimension

    @property
    def doc_count(self) -> int:
        return self._memory.doc_count

    @property
    def closed(self) -> bool:
        return self._state is SessionState.CLOSED

    @property
    def base_version(self) -> int:
        """The service version this session last hydrated from or pushed to (0: none)."""
        return int(self._store.meta().get("base_version") or 0)

    def pending_changes(self) -> int:
        """Recorded changesets not yet pushed: one per add or delete call (a call
        writing over ~8 MB of rows is recorded in several)."""
        self._check_open()
        return self._store.pending_count()

    def _check_open(self) -> None:
        if self._state is SessionState.CLOSED:
            raise ClosedError(f"session {self._name!r} is closed", index=self._name, hint="open it again")

    # -- writes ---------------------------------------------------------------------

    async def add_docs(
        self, docs: Sequence[DocumentInfo], options: MutationOptions | None = None
    ) -> tuple[int, int]:
        """Upsert (default) or insert ``docs``; returns (added, updated) once they are
        durable and queryable. Texts are embedded by the session's model unless the
        document carries its embedding (always, for ``custom``); an upsert with an
        unchanged text keeps its stored vector."""
        self._check_open()
        options = options_or_default(options, MutationOptions)
        docs = check_batch(docs)
        if not docs:
            return (0, 0)
        embedder, new_meta = self._model.embedder_for(docs)
        blobs = await self._model.vectors(docs, embedder)
        rows = [(d.id, (d.text, metadata_json(d.metadata), d.payload, blob)) for d, blob in zip(docs, blobs)]
        written = self._store.upsert(rows, upsert=options.upsert, meta=new_meta or None)
        if self._model.embedder is None:  # custom, first documents: they fix the dimension
            self._model.embedder = embedder
            self._memory.reset(embedder.dimension)
        for (doc_id, rowid), doc, blob in zip(written.stored, docs, blobs):
            self._memory.remember(doc_id, rowid, blob, doc.metadata or {})
        self._written_since_optimize += len(written.stored)
        if self._written_since_optimize >= max(OPTIMIZE_EVERY_DOCS, self.doc_count // 10):
            # After the commit, so durability does not wait for it; amortised, it costs
            # a few microseconds per document and keeps keyword queries on one segment.
            self._store.optimize_fts()
            self._written_since_optimize = 0
        return (written.added, written.updated)

    async def delete_docs(self, ids: Sequence[str]) -> int:
        """Remove documents (missing ids are ignored); returns how many were removed."""
        self._check_open()
        ids = check_ids(ids)
        if not ids:
            return 0
        written = self._store.delete(ids)
        for doc_id, _ in written.removed:
            self._memory.forget(doc_id)
        return len(written.removed)

    # -- reads ----------------------------------------------------------------------

    async def get_docs(
        self, ids: Sequence[str] | None = None, filter: dict[str, Any] | None = None, *, include_embedding: bool = True
    ) -> list[DocumentInfo]:
        """Documents by id (in the order asked, missing ids skipped) and/or filter; as ``MossClient.get_docs``."""
        self._check_open()
        compiled = compile_filter(filter)
        if ids is not None:
            ids = check_ids(ids)
            found = {r[0]: r for r in self._store.rows_by_id(ids)}
            rows = [found[i] for i in dict.fromkeys(ids) if i in found]
        else:
            rows = self._store.rows_by_id(None)
        mask = self._memory.mask(compiled) if compiled is not None else None
        out = []
        for doc_id, text, metadata, payload, embedding in rows:
            if mask is not None and not mask[self._memory.position(doc_id)]:
                continue
            vector = np.frombuffer(embedding, dtype="<f4") if include_embedding else None
            out.append(stored_doc((doc_id, text, metadata, payload), vector))
        return out

    async def query(self, query: str, options: QueryOptions | None = None) -> SearchResult:
        """Top-k documents of the session for ``query``; same semantics, filters and
        result types as ``MossClient.query``."""
        self._check_open()
        return self.query_local(query, options)

    def query_local(self, query: str, options: QueryOptions | None = None) -> SearchResult:
        """The query itself, without an event loop."""
        self._check_open()
        return self._memory.query(query, options, self._model.embedder, self._name)

    # -- push and pull --------------------------------------------------------------

    async def push_index(self) -> PushIndexResult:
        """Send what changed since the last successful push, as one changeset, and wait
        until the service has published it. Creates the index on a first push.

        Offline: raises UnavailableError and keeps everything; the next push sends it
        (under the same diff id, so it never applies twice). A job that failed
        (JobFailedError) is also kept and retried by the next push."""
        self._check_open()
        return await self._exchange.push()

    async def load(self) -> int:
        """Bring in the service's latest version (other agents' pushes), keeping the
        changes not pushed yet on top. Returns the version now merged (0: none)."""
        self._check_open()
        await self._pull()
        return self.base_version

    async def _pull(self, info: IndexInfo | None = None, *, fetched: bool = False) -> None:
        """Mirror the service's latest version (``Exchange.pull``: ``fetched`` means
        ``info`` is the index as just fetched, None if there is none). Offline, the
        local file keeps serving, marked ``stale``."""
        pulled = await self._exchange.pull(info, fetched=fetched)
        if pulled is Pulled.OFFLINE:
            self.stale = True
            return
        if pulled is Pulled.MERGED:
            await asyncio.to_thread(self._load_memory)
        self.stale = False

    def _load_memory(self) -> None:
        self._memory.load(self.dimension or 0, self.path)

    # -- lifecycle ------------------------------------------------------------------

    async def close(self) -> None:
        """Close the database and release the session's lock. Unpushed changes stay on
        disk for the next open. Calling it twice is fine."""
        if self._state is SessionState.CLOSED:
            return
        self._state = SessionState.CLOSED
        try:
            self._store.close()
        finally:
            _unlock(self._lock_fd)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<Session {self._name!r} {self._state.value} docs={self.doc_count} model={self.model_id!r}>"


def _lock(path: Path, name: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise ConflictError(
            f"session {name!r} is already open (in this or another process)",
            index=name,
            hint="close it first, or give the other agent its own cache_path",
        ) from exc
    return fd


def _unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
