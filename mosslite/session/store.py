"""The session database: one SQLite file in WAL mode (``schemas/session.sql``).

Invariants (issue #5):
- A write is durable when it returns: the documents, and the changeset that
  records them (SQLite's session extension, ``apsw.Session``), are committed
  in one transaction, so after a crash the file holds exactly the writes that
  had returned and knows which of them are not pushed yet.
- Writes made to mirror the service (hydration) are not recorded, so they
  are never pushed back.
- ``synchronous = NORMAL`` in WAL mode: a commit survives the process dying
  (SIGKILL, a crash) at no fsync cost; only a power cut may lose the last
  commits. That is what keeps a one-document add near a millisecond; pass
  ``power_safe=True`` for ``synchronous = FULL`` (one fsync per commit).
- One connection, used under a lock: a session belongs to one process (the
  caller holds the file's lock, see ``session.py``).
- A backlog of any size can be pushed: writes are recorded as changesets of
  at most ~``CHANGESET_BYTES`` and a diff takes pending changesets, in order,
  up to ~``PUSH_BYTES``; the rest goes as further diffs. One diff sent whole
  could exceed what the service accepts per request (64 MiB) and would then
  never get through.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import apsw

from .._db import Tracer, connect, read_schema, translating_sqlite_errors, use_wal, with_parameters
from ..changeset import combine, decode, record, with_full_rows
from ..errors import ConflictError
from ..index.format import READ_META_SQL, WRITE_META_SQL
from ..index.keyword import KEYWORD_SQL
from ..rows import ROWS_BY_ROWID_SQL, DocRow, Row, same_row

SCHEMA_FILE = "session.sql"

#: Row bytes per recorded changeset: one large add_docs becomes several.
CHANGESET_BYTES = 8 << 20
#: Changeset bytes per pushed diff. The wire adds base64 (4/3) and full rows for
#: updates; 16 MiB stays well under the service's 64 MiB request limit.
PUSH_BYTES = 16 << 20


EXISTING_DOCS_SQL = """
SELECT id, text, embedding
FROM docs
WHERE id IN (SELECT value FROM json_each(:ids))
"""

# The upsert returns the rowid: the session's in-memory matrix is keyed by it.
UPSERT_SQL = """
INSERT INTO docs (id, text, metadata, payload, embedding)
VALUES (:id, :text, :metadata, :payload, :embedding)
ON CONFLICT (id) DO UPDATE SET
    text = excluded.text,
    metadata = excluded.metadata,
    payload = excluded.payload,
    embedding = excluded.embedding
RETURNING rowid
"""

DELETE_SQL = """
DELETE FROM docs
WHERE id = :id
RETURNING rowid
"""

ADD_PENDING_SQL = """
INSERT INTO pending_changes (changeset)
VALUES (:changeset)
"""

PENDING_SQL = """
SELECT seq, changeset
FROM pending_changes
ORDER BY seq
"""

COUNT_PENDING_SQL = """
SELECT count(*)
FROM pending_changes
"""

CLEAR_PENDING_SQL = """
DELETE FROM pending_changes
WHERE seq <= :upto_seq
"""

OUTGOING_SQL = """
SELECT diff_id, upto_seq, changeset
FROM outgoing
"""

SET_OUTGOING_SQL = """
INSERT INTO outgoing (diff_id, upto_seq, changeset)
VALUES (:diff_id, :upto_seq, :changeset)
"""

CLEAR_OUTGOING_SQL = """
DELETE FROM outgoing
WHERE diff_id = :diff_id
"""

HYDRATE_SQL = """
SELECT rowid, id, metadata, embedding
FROM docs
ORDER BY rowid
"""

ALL_ROWS_SQL = """
SELECT id, text, metadata, payload, embedding
FROM docs
ORDER BY rowid
"""

ROWS_BY_ID_SQL = """
SELECT id, text, metadata, payload, embedding
FROM docs
WHERE id IN (SELECT value FROM json_each(:ids))
"""


OPTIMIZE_FTS_SQL = """
INSERT INTO docs_fts (docs_fts)
VALUES ('optimize')
"""


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """A diff on its way to the service: resent as is until confirmed."""

    diff_id: str
    upto_seq: int
    changeset: bytes


@dataclass(frozen=True, kw_only=True)
class Written:
    """What a write did: (id, rowid) of rows now present, (id, rowid) of rows removed."""

    stored: list[tuple[str, int]]
    removed: list[tuple[str, int]]
    added: int
    updated: int


class SessionStore:
    def __init__(
        self,
        path: Path,
        *,
        tracer: Tracer | None = None,
        power_safe: bool = False,
        changeset_bytes: int = CHANGESET_BYTES,
        push_bytes: int = PUSH_BYTES,
    ) -> None:
        self.path = Path(path)
        self.changeset_bytes, self.push_bytes = changeset_bytes, push_bytes
        self._lock = threading.RLock()
        with translating_sqlite_errors(self.path, "session database"):
            self._conn = connect(self.path, tracer=tracer)
            use_wal(self._conn)
            if power_safe:
                self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute(read_schema(SCHEMA_FILE))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _txn(self) -> Iterator[apsw.Connection]:
        with self._lock, translating_sqlite_errors(self.path, "session database"):
            with self._conn:
                yield self._conn

    # -- meta -------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        with self._lock:
            return dict(self._conn.execute(READ_META_SQL).fetchall())

    def set_meta(self, **values: object) -> None:
        with self._txn() as conn:
            conn.executemany(WRITE_META_SQL, [{"key": k, "value": str(v)} for k, v in values.items()])

    # -- recorded writes ----------------------------------------------------------

    def existing(self, ids: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        """id -> (text, embedding) of the ids already present."""
        with self._lock:
            rows = self._conn.execute(EXISTING_DOCS_SQL, {"ids": json.dumps(list(ids))}).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def upsert(
        self, rows: Sequence[tuple[str, Row]], *, upsert: bool, meta: dict[str, object] | None = None
    ) -> Written:
        """Write ``rows`` (id, row) and their changeset in one transaction. With
        ``upsert=False`` an existing id is a ConflictError and nothing is written."""
        with self._txn() as conn:
            ids = [doc_id for doc_id, _ in rows]
            present = {r[0] for r in conn.execute(EXISTING_DOCS_SQL, {"ids": json.dumps(ids)})}
            if present and not upsert:
                raise ConflictError(
                    f"{len(present)} document id(s) already exist in this session, e.g. {sorted(present)[:5]}",
                    hint="pass MutationOptions(upsert=True) to replace them",
                )
            stored = []
            with self._recording(conn) as cut:
                for doc_id, row in rows:
                    params = _params(doc_id, row)
                    stored.append((doc_id, conn.execute(UPSERT_SQL, params).fetchone()[0]))
                    cut(sum(len(v) for v in params.values() if isinstance(v, (str, bytes))))
            if meta:
                conn.executemany(WRITE_META_SQL, [{"key": k, "value": str(v)} for k, v in meta.items()])
        return Written(stored=stored, removed=[], added=len(rows) - len(present), updated=len(present))

    def delete(self, ids: Sequence[str]) -> Written:
        with self._txn() as conn:
            removed = []
            with self._recording(conn) as cut:
                for doc_id in dict.fromkeys(ids):
                    row = conn.execute(DELETE_SQL, {"id": doc_id}).fetchone()
                    if row is not None:
                        removed.append((doc_id, row[0]))
                        cut(len(doc_id) + 2048)  # a delete's changeset holds the old row
        return Written(stored=[], removed=removed, added=0, updated=0)

    @contextmanager
    def _recording(self, conn: apsw.Connection) -> Iterator[Callable[[int], None]]:
        """Record the writes made inside as pending changesets of about
        ``changeset_bytes`` each; the caller reports each row's size to ``cut``.
        Runs inside the caller's transaction, so rows and changesets commit together."""
        recorder = record(conn)
        size = 0

        def keep() -> None:
            if not recorder.is_empty and (changeset := recorder.changeset()):
                conn.execute(ADD_PENDING_SQL, {"changeset": changeset})

        def cut(row_bytes: int) -> None:
            nonlocal recorder, size
            size += row_bytes
            if size >= self.changeset_bytes:
                keep()
                recorder.close()
                recorder, size = record(conn), 0

        try:
            yield cut
            keep()
        finally:
            recorder.close()

    # -- pushing ------------------------------------------------------------------

    def pending_count(self) -> int:
        with self._lock:
            return self._conn.execute(COUNT_PENDING_SQL).fetchone()[0]

    def outgoing(self) -> Outgoing | None:
        """The diff in flight, else a new one made of the oldest pending changes, up
        to ``push_bytes`` (None if nothing changed since the last push). Stored before
        it is sent; the caller asks again after each push until None."""
        with self._txn() as conn:
            row = conn.execute(OUTGOING_SQL).fetchone()
            if row is not None:
                return Outgoing(diff_id=row[0], upto_seq=row[1], changeset=row[2])
            pending, size = [], 0
            cursor = conn.execute(PENDING_SQL)
            for seq, blob in cursor:
                if pending and size + len(blob) > self.push_bytes:
                    break
                pending.append((seq, blob))
                size += len(blob)
            cursor.close()
            if not pending:
                return None
            upto_seq = pending[-1][0]
            changeset = with_full_rows(conn, combine(blob for _, blob in pending))
            if not changeset:  # everything cancelled out (added, then deleted)
                conn.execute(CLEAR_PENDING_SQL, {"upto_seq": upto_seq})
                return None
            outgoing = Outgoing(diff_id=new_diff_id(), upto_seq=upto_seq, changeset=changeset)
            conn.execute(
                SET_OUTGOING_SQL,
                {"diff_id": outgoing.diff_id, "upto_seq": upto_seq, "changeset": changeset},
            )
            return outgoing

    def pushed(self, outgoing: Outgoing, version: int | None, index_created_at: str) -> None:
        """The service applied ``outgoing`` as ``version`` of the index created at
        ``index_created_at``: forget it and the changes it covered, at once. The
        session now mirrors ``version`` only if that came right after the one it
        mirrored; otherwise another agent published in between, and ``base_version``
        stays put so the next open (or load) merges their changes."""
        with self._txn() as conn:
            conn.execute(CLEAR_PENDING_SQL, {"upto_seq": outgoing.upto_seq})
            conn.execute(CLEAR_OUTGOING_SQL, {"diff_id": outgoing.diff_id})
            base = int(dict(conn.execute(READ_META_SQL).fetchall()).get("base_version") or 0)
            if version is not None and version == base + 1:
                conn.execute(WRITE_META_SQL, {"key": "base_version", "value": str(version)})
                conn.execute(WRITE_META_SQL, {"key": "index_created_at", "value": index_created_at})

    def local_changes(self) -> dict[str, Row | None]:
        """id -> the session's row (None: deleted here) for every change not yet pushed."""
        with self._lock:
            blobs = [blob for _, blob in self._conn.execute(PENDING_SQL)]
            if not blobs:
                return {}
            combined = with_full_rows(self._conn, combine(blobs))
            changes = decode(combined) if combined else []
        return {c.id: c.new for c in changes}

    # -- mirroring the service ------------------------------------------------------

    def merge_base(self, base: dict[str, Row], version: int, index_created_at: str) -> tuple[int, int]:
        """Make the documents the service's ``base`` version (of the index created at
        ``index_created_at``), overlaid with the changes not pushed yet (the session's
        own writes win locally; the push decides on the service). Not recorded: none
        of this is pushed back. Returns (written, removed)."""
        local = self.local_changes()
        with self._txn() as conn:
            current = {r[0]: (r[1], r[2], r[3], r[4]) for r in conn.execute(ALL_ROWS_SQL)}
            written = removed = 0
            for doc_id, row in base.items():
                if doc_id in local or same_row(current.get(doc_id), row):
                    continue
                conn.execute(UPSERT_SQL, _params(doc_id, row)).fetchall()
                written += 1
            for doc_id in current:
                if doc_id not in base and doc_id not in local:
                    conn.execute(DELETE_SQL, {"id": doc_id}).fetchall()
                    removed += 1
            conn.execute(WRITE_META_SQL, {"key": "base_version", "value": str(version)})
            conn.execute(WRITE_META_SQL, {"key": "index_created_at", "value": index_created_at})
        return written, removed

    def optimize_fts(self) -> None:
        """Merge FTS5's segments into one b-tree (``'optimize'``): incremental inserts
        leave many small segments, and every keyword query reads all of them."""
        with self._txn() as conn:
            conn.execute(OPTIMIZE_FTS_SQL)

    # -- reads ----------------------------------------------------------------------

    def hydrate_rows(self) -> list[tuple[int, str, str, bytes]]:
        with self._lock:
            return self._conn.execute(HYDRATE_SQL).fetchall()

    def rows_by_id(self, ids: Sequence[str] | None) -> list[tuple[str, str, str, str | None, bytes]]:
        with self._lock:
            if ids is None:
                return self._conn.execute(ALL_ROWS_SQL).fetchall()
            return self._conn.execute(ROWS_BY_ID_SQL, {"ids": json.dumps(list(ids))}).fetchall()

    def rows_by_rowid(self, rowids: Sequence[int]) -> list[DocRow]:
        """Rows (id, text, metadata, payload) of a query's results, in the order of ``rowids``."""
        sql = with_parameters(ROWS_BY_ROWID_SQL, len(rowids))
        with self._lock:
            found = {r[0]: r[1:] for r in self._conn.execute(sql, list(rowids))}
        return [found[rowid] for rowid in rowids]

    def keyword(self, match: str, limit: int) -> list[tuple[int, float]]:
        with self._lock:
            return self._conn.execute(KEYWORD_SQL, {"match": match, "limit": limit}).fetchall()


def new_diff_id() -> str:
    return "diff_" + secrets.token_hex(12)


def _params(doc_id: str, row: Row) -> dict[str, object]:
    text, metadata, payload, embedding = row
    return {"id": doc_id, "text": text, "metadata": metadata, "payload": payload, "embedding": embedding}

