"""A session's side of the wire: push its changes as diffs, pull the service's latest version.

Invariants (issue #5, #9):
- **Push sends only the diff, once.** Pending changesets are combined
  (``sqlite3changegroup``) into one changeset of the net change per id. It is
  stored with a diff id *before* it is sent and forgotten only after the
  service reports the job that applied it completed (``transport.wait_for_job``),
  so a lost answer, an offline service or a crash mid-push resends the same
  diff id, which the service applies once. One push at a time: a second would
  resend the same outgoing diff and could forget a newer one it did not send.
- **Pull goes through the cache.** The base version is fetched by
  ``cache.fetch`` into the client's cache (``<home>/cache/<source>/<project>/<index>/``),
  like a loaded index: a version this process loaded, or any the cache holds, is
  linked (or copied) from there instead of downloaded again; an older cached
  version is patched; a cut download is resumed; the cache's lock and sha256
  rules hold. The session reads rows from its own link, ``<name>.base.sqlite``
  beside the session file, removed after.
- **The base is an identity, not a number.** It is the index's ``created_at``
  as well as the version number: numbers start again at 1 when an index is
  deleted and created again, and a session that compared numbers alone kept
  showing the deleted index's documents. With no index on the service the base
  is empty: the session holds only its unpushed changes, which a push then
  sends to a new index.
- **Never a mix of models** (issue #8): the index's model and dimension are
  checked before anything is downloaded, and the file's after
  (``SessionModel.check_base``).
"""

from __future__ import annotations

import asyncio
from enum import Enum
from pathlib import Path

from .._db import connect, translating_sqlite_errors
from ..cache.fetch import Fetched, fetch_and_use
from ..cache.layout import index_dir, prune
from ..errors import IndexNotFoundError, UnavailableError
from ..index.format import IndexMeta, read_meta
from ..rows import Row
from ..transport.base import Transport
from ..types import IndexInfo, JobStatus, Manifest, PushIndexResult
from .model import SessionModel
from .store import SessionStore

#: Every document of a version file with its vector (kept once, in docs_vec).
BASE_ROWS_SQL = """
SELECT docs.id, docs.text, docs.metadata, docs.payload, docs_vec.embedding
FROM docs JOIN docs_vec ON docs_vec.rowid = docs.rowid
"""


class Pulled(Enum):
    """What a pull did."""

    OFFLINE = "offline"  # the service could not be reached: nothing changed
    UNCHANGED = "unchanged"  # the session already mirrors the service's latest version
    MERGED = "merged"  # the store now holds a new base: read it into memory again


class Exchange:
    """Push and pull for one session. Example::

        exchange = Exchange(transport, "call-123", store, model, cache_dir=cache_dir, base_copy=path)
        if await exchange.pull() is Pulled.MERGED:
            ...  # reload the in-memory index
        result = await exchange.push()
    """

    def __init__(
        self,
        transport: Transport,
        name: str,
        store: SessionStore,
        model: SessionModel,
        *,
        cache_dir: Path,
        base_copy: Path,
    ) -> None:
        self._transport = transport
        self._name = name
        self._store = store
        self._model = model
        self._index_dir = index_dir(cache_dir, name)
        self._base_copy = base_copy
        self._push_lock = asyncio.Lock()

    # -- push ---------------------------------------------------------------------------

    async def push(self) -> PushIndexResult:
        """Send every pending diff, in order, each once its job completed."""
        async with self._push_lock:
            return await self._push()

    async def _push(self) -> PushIndexResult:
        transport = self._transport
        total = overwritten = 0
        result: PushIndexResult | None = None
        index_created_at = ""  # which index the pushes land in (pull); fetched once
        while True:
            outgoing = await asyncio.to_thread(self._store.outgoing)
            if outgoing is None:
                break
            sent = await transport.push(
                self._name, outgoing.diff_id, outgoing.changeset, self._model.model_id, self._model.dimension
            )
            job = await transport.wait_for_job(sent.job_id)
            result = await transport.get_push(self._name, outgoing.diff_id)
            index_created_at = index_created_at or (await transport.get_index(self._name)).created_at
            await asyncio.to_thread(self._store.pushed, outgoing, job.version, index_created_at)
            total += result.doc_count
            overwritten += result.overwritten or 0
        if result is None:
            base_version = int(self._store.meta().get("base_version") or 0)
            return PushIndexResult(
                job_id="", index_name=self._name, doc_count=0, status=JobStatus.COMPLETED, overwritten=0,
                version=base_version or None,
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

    # -- pull ---------------------------------------------------------------------------

    async def pull(self, info: IndexInfo | None = None, *, fetched: bool = False) -> Pulled:
        """Mirror the service's latest version (``fetched``: ``info`` is the index as
        just fetched, None if there is none), under the changes not pushed yet."""
        transport = self._transport
        manifest = None
        try:
            if not fetched:
                info = await transport.get_index(self._name)
            if info is not None and info.version:
                manifest = await transport.manifest(self._name)
        except IndexNotFoundError:
            info = None
        except UnavailableError:
            return Pulled.OFFLINE
        model = self._model
        if info is not None:  # before anything is downloaded or merged
            model.check_base(model.model_id, model.dimension, info.model, info.dimension)
        meta = self._store.meta()
        base, known = int(meta.get("base_version") or 0), meta.get("index_created_at")
        index_created_at = info.created_at if info is not None else ""
        if manifest is None:
            if base or known:
                await asyncio.to_thread(self._store.merge_base, {}, 0, index_created_at)
                return Pulled.MERGED
            return Pulled.UNCHANGED
        if manifest.version == base and (not known or known == index_created_at):
            if not known:  # a session from before identities were kept adopts this one
                await asyncio.to_thread(self._store.set_meta, index_created_at=index_created_at)
            return Pulled.UNCHANGED
        manifest, rows, file_meta = await self._base_rows(manifest)
        # The file decides, not ``info``: the index may have been made again in between.
        model.check_base(model.model_id, model.dimension, file_meta.model_id, file_meta.dimension)
        await asyncio.to_thread(model.adopt_dimension, file_meta.dimension)
        await asyncio.to_thread(self._store.merge_base, rows, manifest.version, index_created_at)
        return Pulled.MERGED

    async def _base_rows(self, manifest: Manifest) -> tuple[Manifest, dict[str, Row], IndexMeta]:
        """Every row of the manifest's version (or a newer one, if the service deleted
        it meanwhile), fetched through the cache; the cache then keeps that version
        and drops the ones it replaces, as a first load does (``cache.layout.prune``)."""

        async def read(manifest: Manifest, fetched: Fetched) -> tuple[Manifest, dict[str, Row], IndexMeta]:
            rows, meta = await asyncio.to_thread(_read_version_rows, fetched.path)
            return manifest, rows, meta

        copy = self._base_copy
        copy.unlink(missing_ok=True)
        try:
            manifest, rows, file_meta = await fetch_and_use(
                self._transport, self._name, self._index_dir, manifest, read, copy_to=copy
            )
        finally:
            copy.unlink(missing_ok=True)
        await prune(self._index_dir, file_meta)
        return manifest, rows, file_meta


def _read_version_rows(path: Path) -> tuple[dict[str, Row], IndexMeta]:
    """id -> row of every document of a version file from the cache, and its meta."""
    conn = connect(path, readonly=True, vec=True)
    try:
        meta = read_meta(conn, path)
        with translating_sqlite_errors(path):
            return {r[0]: (r[1], r[2], r[3], r[4]) for r in conn.execute(BASE_ROWS_SQL)}, meta
    finally:
        conn.close()
