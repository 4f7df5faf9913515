"""Sessions: a durable local database an agent writes to, queries, and pushes as a diff.

A session is how an agent accumulates context during an interaction and hands
it to the service so any agent can resume it (issue #5)::

    session = await client.session("call-123")             # hydrates the index, if any
    added, updated = await session.add_docs([DocumentInfo(id="n1", text="...")])
    res = await session.query("what did the caller want?", QueryOptions(top_k=3))
    result = await session.push_index()                     # only what changed, as a diff
    await session.close()

Files: ``<home>/sessions/<project>/<name>.sqlite`` (WAL; ``schemas/session.sql``)
and ``<name>.lock`` beside it.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._db import connect, translating_sqlite_errors
from .._fs import usable_dir
from ..changeset import Row, metadata_json
from ..embeddings import Embedder, get_embedder
from ..errors import (
    ClosedError,
    ConflictError,
    CorruptIndexError,
    DimensionMismatchError,
    IndexNotFoundError,
    InvalidArgumentError,
    InvalidDocumentError,
    UnavailableError,
)
from ..filters import DictColumns, compile_filter
from ..index.builder import check_batch, check_ids, vector_blob
from ..index.format import IndexMeta, read_meta
from ..index.fusion import rank
from ..index.keyword import keyword_hits
from ..index.reader import result_docs, stored_doc
from ..index.vectors import ExactScan
from ..cache.verify import finish_download
from ..types import (
    DEFAULT_MODEL_ID,
    DocumentInfo,
    IndexInfo,
    JobStatus,
    MutationOptions,
    PushIndexResult,
    QueryOptions,
    QueryResultDocumentInfo,
    SearchResult,
    options_or_default,
    validate_name,
)
from .store import SessionStore

if TYPE_CHECKING:
    from ..client.core import MossClient

CUSTOM = "custom"
SESSION_SUFFIX = ".sqlite"
LOCK_SUFFIX = ".lock"
#: Merge FTS5 segments after this many written documents (or a tenth of the session).
OPTIMIZE_EVERY_DOCS = 1000

#: Every document of a version file with its vector (kept once, in docs_vec).
BASE_ROWS_SQL = """
SELECT docs.id, docs.text, docs.metadata, docs.payload, docs_vec.embedding
FROM docs JOIN docs_vec ON docs_vec.rowid = docs.rowid
"""


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
      the service applies once.
    - **Merges, never forks.** The service applies each diff onto its latest
      version (last push wins per document, counted in ``overwritten``), so
      sessions of one name in several processes all land. Opening (or
      ``load()``) overlays the service's latest version with the changes not
      pushed yet.
    - **One process per session file.** The file is locked (``flock``) while
      open; a second opener gets ConflictError. Agents on one machine that
      share a session name use separate ``cache_path``s, as agents on separate
      machines do anyway.
    - **Queries match IndexReader's.** The same filters (``mosslite/filters.py``) and
      ranking (``index.fusion``): vectors from an in-memory matrix updated on
      every write, keywords from the file's FTS5 table (BM25).
    """

    def __init__(self, client: MossClient, name: str, path: Path, store: SessionStore, lock_fd: int) -> None:
        self._client = client
        self._name = name
        self.path = path
        self._store = store
        self._lock_fd = lock_fd
        self._state = SessionState.OPEN
        self._model_id = DEFAULT_MODEL_ID
        self._embedder: Embedder | None = None
        #: True when the service could not be reached at open or load: serving the local copy.
        self.stale = False
        self._written_since_optimize = 0
        # One push at a time: a second would resend the same outgoing diff and could
        # forget a newer one it did not send.
        self._push_lock = asyncio.Lock()
        self._reset_memory(0)

    # -- opening ------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        client: MossClient,
        name: str,
        *,
        model_id: str | None = None,
        auto_load_on_init: bool = True,
        directory: Path,
    ) -> Session:
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
        session = cls(client, name, path, store, lock_fd)
        try:
            await session._init(model_id, auto_load_on_init)
        except BaseException:
            await session.close()
            raise
        return session

    async def _init(self, model_id: str | None, auto_load: bool) -> None:
        meta = self._store.meta()
        stored_model = meta.get("model_id")
        stored_dim = int(meta["dimension"]) if meta.get("dimension") else None
        info = None
        if auto_load:
            try:
                info = await self._client.transport.get_index(self._name)
            except IndexNotFoundError:
                info = None
            except UnavailableError:
                self.stale = True
        if info is not None:
            if model_id is not None and model_id != info.model:
                raise InvalidArgumentError(
                    f"index {self._name!r} uses model {info.model!r}, not {model_id!r}",
                    index=self._name,
                    hint="omit model_id: a session adopts its index's model",
                )
            if stored_model is not None:
                self._check_base(stored_model, stored_dim, info.model, info.dimension)
            model, dimension = info.model, info.dimension
        else:
            if stored_model is not None and model_id is not None and model_id != stored_model:
                raise InvalidArgumentError(
                    f"session {self._name!r} uses model {stored_model!r}, not {model_id!r}", index=self._name
                )
            model, dimension = stored_model or model_id or DEFAULT_MODEL_ID, stored_dim
        self._model_id = model
        if model != CUSTOM or dimension is not None:
            self._embedder = await asyncio.to_thread(get_embedder, model, dimension=dimension)
            dimension = self._embedder.dimension
        self._store.set_meta(index_name=self._name, model_id=model, dimension=dimension or "")
        await asyncio.to_thread(self._load_memory)
        if auto_load and not self.stale:
            await self._pull(info, fetched=True)

    # -- facts ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int | None:
        return self._embedder.dimension if self._embedder is not None else None

    @property
    def doc_count(self) -> int:
        return len(self._pos)

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
        new_meta: dict[str, object] = {}
        if self._embedder is None:  # custom, first documents: they fix the dimension
            first = next((d for d in docs if d.embedding is not None), None)
            if first is None:
                raise InvalidDocumentError(
                    f"document {docs[0].id!r} has no embedding, and model 'custom' computes none", id=docs[0].id
                )
            embedder = get_embedder(CUSTOM, dimension=len(first.embedding))  # type: ignore[arg-type]
            new_meta["dimension"] = embedder.dimension
        else:
            embedder = self._embedder
        blobs = await self._vectors(docs, embedder)
        rows = [(d.id, (d.text, metadata_json(d.metadata), d.payload, blob)) for d, blob in zip(docs, blobs)]
        written = self._store.upsert(rows, upsert=options.upsert, meta=new_meta or None)
        if self._embedder is None:
            self._embedder = embedder
            self._reset_memory(embedder.dimension)
        for (doc_id, rowid), doc, blob in zip(written.stored, docs, blobs):
            self._remember(doc_id, rowid, blob, doc.metadata or {})
        self._written_since_optimize += len(written.stored)
        if self._written_since_optimize >= max(OPTIMIZE_EVERY_DOCS, self.doc_count // 10):
            # After the commit, so durability does not wait for it; amortised, it costs
            # a few microseconds per document and keeps keyword queries on one segment.
            self._store.optimize_fts()
            self._written_since_optimize = 0
        return (written.added, written.updated)

    async def _vectors(self, docs: list[DocumentInfo], embedder: Embedder) -> list[bytes]:
        """One float32 blob per doc: supplied (checked, normalised), reused, or embedded."""
        blobs: list[bytes | None] = [None] * len(docs)
        missing: list[int] = []
        for i, doc in enumerate(docs):
            if doc.embedding is not None:
                blobs[i] = vector_blob(embedder.check_vector(doc.embedding, f"embedding of document {doc.id!r}"))
            elif not embedder.computes_embeddings:
                raise InvalidDocumentError(
                    f"document {doc.id!r} has no embedding, and model {embedder.model_id!r} computes none",
                    id=doc.id,
                    hint="pass DocumentInfo(embedding=[...]) for every document of a custom session",
                )
            else:
                missing.append(i)
        if missing:
            existing = self._store.existing([docs[i].id for i in missing])
            to_embed = []
            for i in missing:
                old = existing.get(docs[i].id)
                if old is not None and old[0] == docs[i].text:
                    blobs[i] = old[1]
                else:
                    to_embed.append(i)
            if to_embed:
                vectors = await asyncio.to_thread(embedder.embed, [docs[i].text for i in to_embed])
                for i, vector in zip(to_embed, vectors):
                    blobs[i] = vector_blob(vector)
        return [b for b in blobs if b is not None]

    async def delete_docs(self, ids: Sequence[str]) -> int:
        """Remove documents (missing ids are ignored); returns how many were removed."""
        self._check_open()
        ids = check_ids(ids)
        if not ids:
            return 0
        written = self._store.delete(ids)
        for doc_id, _ in written.removed:
            self._forget(doc_id)
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
        mask = compiled.mask(self._columns()) if compiled is not None else None
        out = []
        for doc_id, text, metadata, payload, embedding in rows:
            if mask is not None and not mask[self._pos[doc_id]]:
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
        started = time.perf_counter()
        options = options_or_default(options, QueryOptions)
        if not isinstance(query, str):
            raise InvalidArgumentError(f"query must be text, got {type(query).__name__}")
        compiled = compile_filter(options.filter)
        count = self._count
        alive = self._alive[:count]
        mask: np.ndarray | None = None if alive.all() else alive.copy()  # None: every row may match
        if compiled is not None:
            matches = compiled.mask(self._columns())
            mask = matches if mask is None else mask & matches
        vector = (
            self._embedder.query_vector(query, options.vector, kind="session", name=self._name)
            if options.alpha > 0.0 and self._embedder is not None
            else None
        )
        positions, scores = rank(
            options.alpha,
            options.top_k,
            vector,
            ExactScan(self._matrix[:count]),
            lambda want: self._keyword(query, want, mask),
            mask,
        )
        return SearchResult(
            docs=self._result_docs(positions, scores),
            query=query,
            index_name=self._name,
            time_taken_ms=(time.perf_counter() - started) * 1000.0,
        )

    def _keyword(self, text: str, want: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        return keyword_hits(text, want, mask, self._store.keyword, self._positions_of)

    def _positions_of(self, rowids: np.ndarray) -> np.ndarray:
        """Matrix rows of session rowids; -1 for rows written after the matrix was read."""
        positions = self._rowid_lut[np.minimum(rowids, len(self._rowid_lut) - 1)]
        positions[rowids >= len(self._rowid_lut)] = -1
        return positions

    def _result_docs(self, positions: np.ndarray, scores: np.ndarray) -> list[QueryResultDocumentInfo]:
        rowids = [int(self._rowids[p]) for p in positions]
        if not rowids:
            return []
        return result_docs(self._store.rows_by_rowid(rowids), scores, self._name)

    # -- push and pull --------------------------------------------------------------

    async def push_index(self) -> PushIndexResult:
        """Send what changed since the last successful push, as one changeset, and wait
        until the service has published it. Creates the index on a first push.

        Offline: raises UnavailableError and keeps everything; the next push sends it
        (under the same diff id, so it never applies twice). A job that failed
        (JobFailedError) is also kept and retried by the next push."""
        self._check_open()
        async with self._push_lock:
            return await self._push()

    async def _push(self) -> PushIndexResult:
        transport = self._client.transport
        total = overwritten = 0
        result: PushIndexResult | None = None
        index_created_at = ""  # which index the pushes land in (_pull); fetched once
        while True:
            outgoing = await asyncio.to_thread(self._store.outgoing)
            if outgoing is None:
                break
            sent = await transport.push(
                self._name, outgoing.diff_id, outgoing.changeset, self._model_id, self.dimension
            )
            job = await self._client.wait_for_job(sent.job_id)
            result = await transport.get_push(self._name, outgoing.diff_id)
            index_created_at = index_created_at or (await transport.get_index(self._name)).created_at
            await asyncio.to_thread(self._store.pushed, outgoing, job.version, index_created_at)
            total += result.doc_count
            overwritten += result.overwritten or 0
        if result is None:
            return PushIndexResult(
                job_id="", index_name=self._name, doc_count=0, status=JobStatus.COMPLETED, overwritten=0,
                version=self.base_version or None,
            )  # fmt: skip
        return PushIndexResult(
            job_id=result.job_id,
            index_name=self._name,
            doc_count=total,
            status=result.status,
            diff_id=result.diff_id,
            overwritten=overwritten,
            version=result.version,
        )

    async def load(self) -> int:
        """Bring in the service's latest version (other agents' pushes), keeping the
        changes not pushed yet on top. Returns the version now merged (0: none)."""
        self._check_open()
        await self._pull()
        return self.base_version

    async def _pull(self, info: IndexInfo | None = None, *, fetched: bool = False) -> None:
        """Mirror the service's latest version (``fetched``: ``info`` is the index as
        just fetched, None if there is none).

        The base is identified by the index's ``created_at`` as well as the version
        number: numbers start again at 1 when an index is deleted and created again,
        and a session that compared numbers alone kept showing the deleted index's
        documents. With no index on the service the base is empty: the session holds
        only its unpushed changes, which a push then sends to a new index."""
        transport = self._client.transport
        manifest = None
        try:
            if not fetched:
                info = await transport.get_index(self._name)
            if info is not None and info.version:
                manifest = await transport.manifest(self._name)
        except IndexNotFoundError:
            info = None
        except UnavailableError:
            self.stale = True
            return
        if info is not None:  # before anything is downloaded or merged
            self._check_base(self._model_id, self.dimension, info.model, info.dimension)
        meta = self._store.meta()
        base, known = int(meta.get("base_version") or 0), meta.get("index_created_at")
        index_created_at = info.created_at if info is not None else ""
        if manifest is None:
            if base or known:
                await asyncio.to_thread(self._store.merge_base, {}, 0, index_created_at)
                await asyncio.to_thread(self._load_memory)
            self.stale = False
            return
        if manifest.version == base and (not known or known == index_created_at):
            if not known:  # a session from before identities were kept adopts this one
                await asyncio.to_thread(self._store.set_meta, index_created_at=index_created_at)
            self.stale = False
            return
        part = self.path.with_name(f"{self._name}.base{SESSION_SUFFIX}.part")
        target = self.path.with_name(f"{self._name}.base{SESSION_SUFFIX}")
        part.unlink(missing_ok=True)
        try:
            sha256 = await transport.download(self._name, manifest.version, part)
            await asyncio.to_thread(finish_download, part, target, manifest, sha256)
            rows, file_meta = await asyncio.to_thread(_read_version_rows, target)
        finally:
            part.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
        # The file decides, not ``info``: the index may have been made again in between.
        self._check_base(self._model_id, self.dimension, file_meta.model_id, file_meta.dimension)
        await asyncio.to_thread(self._adopt_dimension, file_meta.dimension)
        await asyncio.to_thread(self._store.merge_base, rows, manifest.version, index_created_at)
        await asyncio.to_thread(self._load_memory)
        self.stale = False

    def _check_base(self, model: str, dimension: int | None, index_model: str, index_dimension: int) -> None:
        """Refuse to mirror an index whose vectors this session cannot hold.

        Invariant (issue #8): the session's documents all have its model's vectors of
        its dimension (``meta``). An index deleted and made again with another model
        or dimension is never merged in (a mix no longer loads, and no push can land):
        DimensionMismatchError or InvalidArgumentError, raised before anything is
        downloaded or written, with the session file left as it was. ``dimension``
        None: a custom session with no documents yet, which takes the index's."""
        if model == index_model and dimension in (None, index_dimension):
            return
        pending = self._store.pending_count()
        if pending:
            hint = (
                f"its {pending} unpushed change(s) are kept and still served (get_docs() reads them); to push "
                f"them as they are, delete the index on the service first (push_index() then makes it again); "
                f"to follow the new index instead, close the session and delete {self.path} (this loses them)"
            )
        else:
            hint = f"nothing in it is unpushed: close the session and delete {self.path}, then open it again"
        if model != index_model:
            raise InvalidArgumentError(
                f"the local session {self._name!r} holds model {model!r} documents, but index {self._name!r} "
                f"now uses model {index_model!r}",
                index=self._name,
                hint=hint,
            )
        raise DimensionMismatchError(
            f"the local session {self._name!r} holds {dimension}-dimensional vectors, but index "
            f"{self._name!r} (model {index_model!r}) now has {index_dimension} dimensions",
            index=self._name,
            hint=hint,
        )

    def _adopt_dimension(self, dimension: int) -> None:
        """A custom session with no documents yet takes the dimension of the index it mirrors."""
        if self._embedder is None:
            self._embedder = get_embedder(self._model_id, dimension=dimension)
            self._store.set_meta(dimension=self._embedder.dimension)

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

    # -- the in-memory side: vectors, positions, metadata ---------------------------

    def _reset_memory(self, dimension: int, capacity: int = 64) -> None:
        self._matrix = np.zeros((capacity, max(dimension, 1)), dtype=np.float32)
        self._alive = np.zeros(capacity, dtype=bool)
        self._rowids = np.zeros(capacity, dtype=np.int64)
        self._metadata: list[dict[str, str]] = []
        self._count = 0
        self._pos: dict[str, int] = {}
        # rowid -> position (-1: none), dense: session rowids are small integers, and
        # FTS5 answers in rowids, so the keyword path maps them in one numpy step.
        self._rowid_lut = np.full(capacity, -1, dtype=np.intp)
        self._column_cache: DictColumns | None = None

    def _load_memory(self) -> None:
        self._store.optimize_fts()  # at open and after a load: start from one FTS5 segment
        rows = self._store.hydrate_rows()
        dimension = self.dimension or 0
        self._reset_memory(dimension, capacity=max(64, 2 * len(rows)))
        for rowid, doc_id, metadata, embedding in rows:
            if len(embedding) != 4 * dimension:
                raise CorruptIndexError(
                    f"session file {self.path} holds a {len(embedding) // 4}-dimensional vector for document "
                    f"{doc_id!r}, but the session's vectors have {dimension or 'no'} dimensions",
                    path=str(self.path),
                    hint=f"it mixes two indexes' vectors (a load before issue #8's fix): delete {self.path}, "
                    "then open the session again (its unpushed changes are lost)",
                )
            self._remember(doc_id, rowid, embedding, json.loads(metadata))

    def _remember(self, doc_id: str, rowid: int, blob: bytes, metadata: Any) -> None:
        position = self._pos.get(doc_id)
        if position is None:
            if self._count == len(self._alive):
                self._grow()
            position = self._count
            self._count += 1
            self._metadata.append({})
            self._pos[doc_id] = position
        self._matrix[position] = np.frombuffer(blob, dtype="<f4")
        self._alive[position] = True
        self._rowids[position] = rowid
        if rowid >= len(self._rowid_lut):
            grown = np.full(max(2 * len(self._rowid_lut), rowid + 1), -1, dtype=np.intp)
            grown[: len(self._rowid_lut)] = self._rowid_lut
            self._rowid_lut = grown
        self._rowid_lut[rowid] = position
        self._metadata[position] = dict(metadata)
        self._column_cache = None

    def _forget(self, doc_id: str) -> None:
        position = self._pos.pop(doc_id, None)
        if position is None:
            return
        self._alive[position] = False
        rowid = int(self._rowids[position])
        if rowid < len(self._rowid_lut) and self._rowid_lut[rowid] == position:
            self._rowid_lut[rowid] = -1
        self._metadata[position] = {}
        self._column_cache = None

    def _grow(self) -> None:
        capacity = 2 * len(self._alive)
        matrix = np.zeros((capacity, self._matrix.shape[1]), dtype=np.float32)
        matrix[: self._count] = self._matrix[: self._count]
        self._matrix = matrix
        self._alive = np.concatenate([self._alive, np.zeros(capacity - len(self._alive), dtype=bool)])
        self._rowids = np.concatenate([self._rowids, np.zeros(capacity - len(self._rowids), dtype=np.int64)])

    def _columns(self) -> DictColumns:
        # Rebuilt lazily after a write, for filtered queries only (as IndexReader does).
        if self._column_cache is None:
            self._column_cache = DictColumns(self._metadata)
        return self._column_cache

    def __repr__(self) -> str:
        return f"<Session {self._name!r} {self._state.value} docs={self.doc_count} model={self._model_id!r}>"


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


def _read_version_rows(path: Path) -> tuple[dict[str, Row], IndexMeta]:
    """id -> row of every document of a downloaded, verified version file, and its meta."""
    conn = connect(path, readonly=True, vec=True)
    try:
        meta = read_meta(conn, path)
        with translating_sqlite_errors(path):
            return {r[0]: (r[1], r[2], r[3], r[4]) for r in conn.execute(BASE_ROWS_SQL)}, meta
    finally:
        conn.close()


__all__ = ["Session", "SessionState"]
