"""The tools ``mosslite mcp`` serves, over one project's ``MossClient``.

Each public coroutine of ``MossTools`` is one MCP tool: its signature is the
tool's JSON schema (a description per argument), its docstring what the model
reads, and its return type the tool's output schema (those types are in
``mcp_shapes``). ``mcp.py`` registers them and runs the server; nothing here
speaks a transport.

Invariants:
- **Errors are words the model can act on.** A ``MossliteError`` becomes an MCP
  tool error carrying its message and hint (``tool_errors``), hints naming tools
  rather than Python calls where the library's speaks Python (``HINTS``; a
  search by meaning of a ``custom``-model index is refused with its own
  message and hint before the library's error, which names QueryOptions).
  Anything else is the SDK's: a tool error without details, the traceback
  logged on stderr. stdout is the protocol, and nothing here prints.
- **Search is local and warm.** An index is loaded on its first search with
  ``auto_refresh`` and kept loaded for the server's life; each answer names the
  version that served it. A write made with ``wait`` (and a session push) also
  refreshes the loaded copy at once, so the next search sees it.
- **Writes to the service need --allow-writes** (``add_documents``,
  ``delete_documents``, ``push_session``): without it they are refused before
  any request. ``push_session`` is one by decision: a push publishes to the
  service, which agents may share, and none should publish there without the
  operator's consent. ``remember`` and ``recall`` are always on: a session is a file
  on this machine, and nothing reaches the service until ``push_session``.
- **Sessions stay open** from first use to ``close()``, which closes each one,
  though one before it fails (a session file is locked while open).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from ..client import MossClient
from ..embeddings import get_embedder
from ..embeddings.custom import CUSTOM_MODEL_ID
from ..errors import IndexNotFoundError, InvalidArgumentError, MossliteError, UnauthorizedError
from ..session import Session
from ..types import DEFAULT_ALPHA, DEFAULT_TOP_K, DocumentInfo, Job, MutationOptions, QueryOptions, SearchResult
from ..validation import validate_name
from .mcp_shapes import (
    AlphaArg,
    Document,
    Documents,
    DocumentsArg,
    FilterArg,
    Hit,
    IdsArg,
    Indexes,
    IndexArg,
    IndexSummary,
    JobAnswer,
    MetadataArg,
    NoteArg,
    NoteIdArg,
    PushAnswer,
    QueryArg,
    RecallAnswer,
    Remembered,
    SearchAnswer,
    SessionArg,
    TopKArg,
    UpsertArg,
    WaitArg,
)

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

#: Tool-level hints for errors whose own hint is missing or speaks Python, most specific first.
HINTS: tuple[tuple[type[MossliteError], str], ...] = (
    (IndexNotFoundError, "the list_indexes tool names this project's indexes"),
    (UnauthorizedError, "check --project-id and --project-key in the MCP server's configuration (`mosslite info` shows what is in force)"),
)
WRITES_OFF_HINT = "add --allow-writes to the server's arguments in the MCP client's configuration, then restart it"


def tool_message(exc: MossliteError) -> str:
    """``exc`` as the model reads it: the message, then ``(hint: ...)``."""
    hint = exc.hint
    if hint is None or hint == type(exc).default_hint:
        hint = next((h for cls, h in HINTS if isinstance(exc, cls)), hint)
    return f"{exc.message} (hint: {hint})" if hint else exc.message


def tool_errors(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn a ``MossliteError`` raised by ``method`` into an MCP tool error."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except MossliteError as exc:
            raise ToolError(tool_message(exc)) from exc

    return call


class MossTools:
    """The tools over ``client``; ``close()`` closes the sessions (the caller closes the client)."""

    def __init__(
        self, client: MossClient, *, allow_writes: bool, poll_interval_s: float, session_model: str | None = None
    ) -> None:
        self.client = client
        self.allow_writes = allow_writes
        self.poll_interval_s = poll_interval_s
        self.session_model = session_model
        self._loads: dict[str, asyncio.Task[None]] = {}  # first loads under way
        self._loaded: set[str] = set()
        self._sessions: dict[str, Session] = {}
        self._sessions_lock = asyncio.Lock()

    #: The tools that write to the service: refused without --allow-writes.
    WRITES = ("add_documents", "delete_documents", "push_session")

    def tools(self) -> list[Callable[..., Awaitable[Any]]]:
        """Every tool, reads first."""
        return [
            self.search,
            self.get_documents,
            self.list_indexes,
            self.remember,
            self.recall,
            self.add_documents,
            self.delete_documents,
            self.push_session,
        ]

    async def close(self) -> None:
        """Close every session, each even if one before it fails (its lock and database
        must not outlive the server); then raise the first failure, logging the others."""
        sessions, self._sessions = list(self._sessions.values()), {}
        failures: list[Exception] = []
        for session in sessions:
            try:
                await session.close()
            except Exception as exc:
                failures.append(exc)
        for failure in failures[1:]:
            log.warning("closing a session failed too: %s", failure)
        if failures:
            raise failures[0]

    # -- reading the indexes -------------------------------------------------------------

    @tool_errors
    async def search(
        self,
        index: IndexArg,
        query: QueryArg,
        top_k: TopKArg = DEFAULT_TOP_K,
        alpha: AlphaArg = DEFAULT_ALPHA,
        filter: FilterArg = None,
    ) -> SearchAnswer:
        """Search an index for the documents most relevant to a query (hybrid: by meaning and by keywords).

        Answers from a copy of the index on this machine, in about a millisecond: the
        first search of an index downloads it, and new versions arrive on their own.
        Returns the best documents first (id, text, metadata, score) and the index
        version that served them. Use get_documents to fetch documents by id. An index
        whose model is "custom" (list_indexes) is searched with alpha=0 only: its
        vectors came from its writer's own model.
        """
        options = QueryOptions(top_k=top_k, alpha=alpha, filter=filter)
        await self._load(index)
        if alpha > 0.0 and self.client.loaded_index(index).model_id == CUSTOM_MODEL_ID:
            raise InvalidArgumentError(
                f"index {index!r} holds vectors its writer made with a model of its own: there is none here "
                "to embed the query with",
                index=index,
                hint="search it with alpha=0 for keywords only",
            )
        version, result = self._query(index, query, options)
        stale = self.client.was_served_stale(index)
        return SearchAnswer(index=index, version=version, stale=stale, docs=_hits(result))

    @tool_errors
    async def get_documents(self, index: IndexArg, ids: IdsArg) -> Documents:
        """Fetch documents of an index by id, from the newest version on the service.

        They come in the order asked; ids the index does not hold are listed as missing.
        """
        docs = await self.client.get_docs(index, ids, include_embedding=False)
        found = {d.id for d in docs}
        return Documents(
            index=index,
            docs=[Document(id=d.id, text=d.text, metadata=dict(d.metadata or {})) for d in docs],
            missing=[i for i in dict.fromkeys(ids) if i not in found],
        )

    @tool_errors
    async def list_indexes(self) -> Indexes:
        """List this project's indexes: name, newest version, document count, embedding model."""
        summaries = [
            IndexSummary(name=i.name, version=i.version, doc_count=i.doc_count, model=i.model, updated_at=i.updated_at)
            for i in await self.client.list_indexes()
        ]
        return Indexes(indexes=summaries)

    # -- memory: sessions on this machine ----------------------------------------------------

    @tool_errors
    async def remember(
        self,
        session: SessionArg,
        text: NoteArg,
        metadata: MetadataArg = None,
        id: NoteIdArg = None,
    ) -> Remembered:
        """Remember a note in a session: agent memory, durable on this machine at once.

        Always allowed: the note is written to a local session file, and reaches the
        service (as the index named like the session) only when push_session is
        called, which needs --allow-writes. Returns the note's id. A session that
        the service already has as an index starts from that index's documents.
        """
        doc_id = id if id is not None else f"note-{uuid.uuid4().hex[:16]}"
        opened = await self._session(session)
        await opened.add_docs([DocumentInfo(id=doc_id, text=text, metadata=metadata)])
        return Remembered(session=session, id=doc_id, doc_count=opened.doc_count, pending_changes=opened.pending_changes())

    @tool_errors
    async def recall(self, session: SessionArg, query: QueryArg, top_k: TopKArg = DEFAULT_TOP_K) -> RecallAnswer:
        """Recall the notes of a session most relevant to a query, pushed or not (best first)."""
        opened = await self._session(session)
        result = await opened.query(query, QueryOptions(top_k=top_k))
        return RecallAnswer(session=session, docs=_hits(result))

    # -- writes to the service (--allow-writes) -----------------------------------------------

    @tool_errors
    async def add_documents(
        self,
        index: IndexArg,
        documents: DocumentsArg,
        upsert: UpsertArg = True,
        wait: WaitArg = False,
    ) -> JobAnswer:
        """Add documents to an existing index (a job on the service builds its next version).

        Returns the job at once, or with wait=true once the new version is published
        (and searchable here). Needs a server started with --allow-writes.
        """
        self._check_writes("add_documents")
        docs = [DocumentInfo(id=d.id, text=d.text, metadata=d.metadata) for d in documents]
        started = await self.client.add_docs(index, docs, MutationOptions(upsert=upsert))
        return await self._job_answer(started.job_id, index, started.doc_count, wait)

    @tool_errors
    async def delete_documents(self, index: IndexArg, ids: IdsArg, wait: WaitArg = False) -> JobAnswer:
        """Delete documents from an index by id (ids it does not hold are ignored).

        Returns the job at once, or with wait=true once the new version is published.
        Needs a server started with --allow-writes.
        """
        self._check_writes("delete_documents")
        started = await self.client.delete_docs(index, ids)
        return await self._job_answer(started.job_id, index, started.doc_count, wait)

    @tool_errors
    async def push_session(self, session: SessionArg) -> PushAnswer:
        """Publish what a session remembered since its last push to the service, as the
        index named like the session (created on a first push), and wait until it is live.

        Other agents, and search, then see the notes. Needs a server started with
        --allow-writes, by design: a push publishes to the service other agents share,
        which no agent does without the operator's consent.
        """
        self._check_writes("push_session")
        opened = await self._session(session)
        pushed = await opened.push_index()
        await self._refresh(session)
        return PushAnswer(
            session=session,
            job_id=pushed.job_id,
            doc_count=pushed.doc_count,
            status=pushed.status,
            version=pushed.version,
            overwritten=pushed.overwritten,
        )

    # -- helpers -------------------------------------------------------------------------------

    def _check_writes(self, tool: str) -> None:
        if not self.allow_writes:
            raise ToolError(f"{tool} is refused: this MCP server was started without --allow-writes (hint: {WRITES_OFF_HINT})")

    async def _load(self, index: str) -> None:
        """Load ``index`` and its model on first use, with auto_refresh; then nothing to do.
        Searches arriving during the first load wait for that one; a load that fails
        leaves nothing behind (an agent trying names must not grow what the server holds)."""
        if index in self._loaded:
            return
        loading = self._loads.get(index)
        if loading is None:
            loading = self._loads[index] = asyncio.create_task(self._first_load(index))
            loading.add_done_callback(lambda _: self._loads.pop(index, None))
        await asyncio.shield(loading)  # (a caller cancelled leaves the load to the others)

    async def _first_load(self, index: str) -> None:
        info = await self.client.load_index(index, auto_refresh=True, polling_interval_in_seconds=self.poll_interval_s)
        if info.model_id != CUSTOM_MODEL_ID:  # its weights now, off the loop: not in the first query
            await asyncio.to_thread(get_embedder(info.model_id).load)
        self._loaded.add(index)

    def _query(self, index: str, query: str, options: QueryOptions) -> tuple[int, SearchResult]:
        """The result and the version it came from: asked again if a refresh swapped
        versions during the query (as the query shell does)."""
        while True:
            before = self.client.get_loaded_version(index)
            result = self.client.query_local(index, query, options)
            if self.client.get_loaded_version(index) == before:
                return before, result

    async def _refresh(self, index: str) -> None:
        """After a write that completed: bring a loaded copy of ``index`` up to date now."""
        if index in self._loaded:
            await self.client.load_index(index, auto_refresh=True, polling_interval_in_seconds=self.poll_interval_s)

    async def _job_answer(self, job_id: str, index: str, doc_count: int, wait: bool) -> JobAnswer:
        job: Job = await (self.client.wait_for_job(job_id) if wait else self.client.get_job_status(job_id))
        if wait:
            await self._refresh(index)
        return JobAnswer(job_id=job_id, index=index, doc_count=doc_count, status=job.status, version=job.version)

    async def _session(self, name: str) -> Session:
        """Session ``name``, opened on first use. ``session_model`` is for a session whose
        index the service does not have: one it has adopts the index's model."""
        validate_name(name, what="session")  # (before _model_for asks for the index of that name)
        async with self._sessions_lock:
            opened = self._sessions.get(name)
            if opened is None:
                opened = await self.client.session(name, model_id=await self._model_for(name))
                self._sessions[name] = opened
            return opened

    async def _model_for(self, name: str) -> str | None:
        if self.session_model is None:
            return None
        try:
            await self.client.get_index(name)
        except IndexNotFoundError:
            return self.session_model
        return None


def _hits(result: SearchResult) -> list[Hit]:
    return [Hit(id=d.id, text=d.text, metadata=dict(d.metadata), score=d.score) for d in result.docs]


__all__ = ["HINTS", "MossTools", "tool_errors", "tool_message"]
