"""The catalog: projects, key hashes, indexes, versions, jobs and pushes in one
SQLite file (tables in ``schemas/catalog.sql``, statements in catalog_sql.py).

Invariants (issue #3):
- WAL mode, one connection per Catalog guarded by a lock; writes that must be
  seen together (publishing a version and completing its job) are one
  ``BEGIN IMMEDIATE`` transaction, so another process sharing the data folder
  sees all of it or none of it.
- A catalog of an older layout (``user_version`` 1, or one without the ``public``
  column of indexes) is brought up to date once, by whoever opens it first, under
  the write lock; every other open only reads.
- No key is stored, only its HMAC (keys.py). Keys are bearer tokens: the embedded
  client registers the key it is given on first use; ``create_key`` mints random ones.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from .._db import bound_wal, connect, enforce_foreign_keys, read_schema, use_wal
from ..errors import ConflictError, IndexNotFoundError, JobNotFoundError, ProjectNotFoundError
from ..index.format import utc_now_iso
from ..types import IndexInfo, Job, JobStatus, Manifest
from .catalog_sql import (
    ADD_PUBLIC_COLUMN_SQL,
    COUNT_KEYS_SQL,
    DELETE_INDEX_SQL,
    ENDED_JOB_IDS_SQL,
    FAIL_INDEX_JOBS_SQL,
    GET_INDEX_SQL,
    GET_JOB_SQL,
    GET_PUSH_SQL,
    GET_VERSION_SQL,
    HAS_HMAC_KEYS_SQL,
    HAS_PUBLIC_COLUMN_SQL,
    INSERT_INDEX_SQL,
    INSERT_JOB_SQL,
    INSERT_KEY_SQL,
    INSERT_PROJECT_SQL,
    INSERT_VERSION_SQL,
    JOB_FIELDS,
    JOB_PROJECT_SQL,
    KEY_PROJECT_SQL,
    LATEST_VERSION_SQL,
    LIST_INDEXES_SQL,
    LIST_KEYS_SQL,
    LIST_VERSIONS_SQL,
    MIGRATE_1_TO_2_SQL,
    NEXT_JOB_SQL,
    PROJECT_EXISTS_SQL,
    PUBLIC_INDEXES_SQL,
    PUBLISH_INDEX_SQL,
    RECORD_PUSH_SQL,
    REHASH_KEY_SQL,
    SET_INDEX_PUBLIC_SQL,
    SET_INDEX_STATUS_SQL,
    SET_PUSH_OVERWRITTEN_SQL,
    UNFINISHED_JOBS_SQL,
    VERSION_KEYS_SQL,
    update_job_sql,
)
from .keys import HMAC_SCHEME, LEGACY_SCHEME, KeyHasher, key_id, legacy_hash, mint_key

SCHEMA_FILE = "catalog.sql"
#: The error of a job whose index was deleted before it ended.
INDEX_DELETED = "the index was deleted before this job ended"


@dataclass(frozen=True, kw_only=True)
class VersionRecord:
    manifest: Manifest
    storage_key: str


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect(self.path)
        use_wal(self._conn)
        bound_wal(self._conn)
        enforce_foreign_keys(self._conn)
        # A deleted key hash or job row is overwritten, not left in a free page.
        self._conn.execute("PRAGMA secure_delete = ON")
        self._lock = threading.RLock()
        with self._lock:
            self._migrate()
            self._conn.execute(read_schema(SCHEMA_FILE))
            self._add_public_column()
            has_keys = bool(self._conn.execute(HAS_HMAC_KEYS_SQL).fetchone()[0])
        self._keys = KeyHasher(self.path, has_keys=has_keys)

    def _migrate(self) -> None:
        """Bring a catalog of an older layout up to date, once, whoever opens it first.
        The write lock is taken only for an old catalog (and the version read again
        under it): every other open stays a read."""
        if self._conn.execute("PRAGMA user_version").fetchone()[0] != 1:
            return
        with self._write() as conn:
            migrated = conn.execute("PRAGMA user_version").fetchone()[0] == 1
            if migrated:
                conn.execute(MIGRATE_1_TO_2_SQL)
        if migrated:  # the old pages live on in the main file until a checkpoint
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _add_public_column(self) -> None:
        """The ``public`` column of indexes (issue #10), added to a catalog made before it:
        one ALTER TABLE, no row rewritten (its default is in the schema)."""
        if self._conn.execute(HAS_PUBLIC_COLUMN_SQL).fetchone()[0]:
            return
        with self._write() as conn:
            if not conn.execute(HAS_PUBLIC_COLUMN_SQL).fetchone()[0]:
                conn.execute(ADD_PUBLIC_COLUMN_SQL)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[apsw.Connection]:
        """One immediate transaction: other processes wait (busy timeout) instead of interleaving."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- projects and keys ----------------------------------------------------

    def add_key(self, project_id: str, key: str | None = None) -> str:
        """Register ``key`` (or a new random one) for ``project_id``; returns the key."""
        key = key or mint_key()
        now = utc_now_iso()
        with self._write() as conn:
            conn.execute(INSERT_PROJECT_SQL, {"project_id": project_id, "now": now})
            conn.execute(INSERT_KEY_SQL, {"key_hash": self._keys.hash(key), "project_id": project_id, "now": now})
        return key

    def project_of_key(self, key: str) -> str | None:
        key_hash = self._keys.hash(key)
        rows = self._read(KEY_PROJECT_SQL, {"key_hash": key_hash, "scheme": HMAC_SCHEME})
        if rows:
            return rows[0][0]
        legacy = legacy_hash(key)
        rows = self._read(KEY_PROJECT_SQL, {"key_hash": legacy, "scheme": LEGACY_SCHEME})
        if not rows:
            return None
        with self._write() as conn:  # its first use since version 1: store it as an HMAC
            conn.execute(REHASH_KEY_SQL, {"key_hash": key_hash, "legacy_hash": legacy})
        return rows[0][0]

    def key_count(self, project_id: str) -> int:
        return self._read(COUNT_KEYS_SQL, {"project_id": project_id})[0][0]

    def key_id(self, key: str) -> str:
        return key_id(self._keys.hash(key))

    def list_keys(self, project_id: str) -> list[tuple[str, str]]:
        """(key id, created at) of each key; a key not used since version 1 has no id yet."""
        rows = self._read(LIST_KEYS_SQL, {"project_id": project_id})
        return [(key_id(key_hash) if scheme == HMAC_SCHEME else "(not used since upgrade)", created_at)
                for key_hash, scheme, created_at in rows]  # fmt: skip

    # -- indexes ----------------------------------------------------------------

    def create_index(self, project_id: str, name: str, model_id: str, dimension: int) -> None:
        params = {"project_id": project_id, "name": name, "model_id": model_id, "dimension": dimension}
        with self._write() as conn:
            if not conn.execute(PROJECT_EXISTS_SQL, params).fetchall():
                raise ProjectNotFoundError(f"project {project_id!r} does not exist", project=project_id)
            if conn.execute(GET_INDEX_SQL, params).fetchall():
                raise ConflictError(
                    f"index {name!r} already exists", index=name, hint="use add_docs to change it, or delete it first"
                )
            conn.execute(INSERT_INDEX_SQL, {**params, "now": utc_now_iso()})

    def get_index(self, project_id: str, name: str) -> IndexInfo:
        rows = self._read(GET_INDEX_SQL, {"project_id": project_id, "name": name})
        if not rows:
            raise IndexNotFoundError(f"index {name!r} not found", index=name)
        return _index_info(rows[0])

    def list_indexes(self, project_id: str) -> list[IndexInfo]:
        return [_index_info(r) for r in self._read(LIST_INDEXES_SQL, {"project_id": project_id})]

    def delete_index(self, project_id: str, name: str) -> list[str]:
        """Remove the index and its versions from the catalog, and fail its unfinished
        jobs; returns the versions' storage keys."""
        params = {"project_id": project_id, "name": name}
        with self._write() as conn:
            if not conn.execute(GET_INDEX_SQL, params).fetchall():
                raise IndexNotFoundError(f"index {name!r} not found", index=name)
            keys = [r[0] for r in conn.execute(VERSION_KEYS_SQL, params)]
            conn.execute(DELETE_INDEX_SQL, params)
            conn.execute(FAIL_INDEX_JOBS_SQL, {**params, "error": INDEX_DELETED, "now": utc_now_iso()})
        return keys

    def set_public(self, project_id: str, name: str, public: bool) -> IndexInfo:
        """Record whether the index is in public read mode; its row as it is now."""
        params = {"project_id": project_id, "name": name}
        with self._write() as conn:
            conn.execute(SET_INDEX_PUBLIC_SQL, {**params, "public": int(public), "now": utc_now_iso()})
            rows = conn.execute(GET_INDEX_SQL, params).fetchall()
        if not rows:
            raise IndexNotFoundError(f"index {name!r} not found", index=name)
        return _index_info(rows[0])

    def public_indexes(self) -> list[tuple[str, str]]:
        """(project_id, name) of every index in public read mode."""
        return [(project_id, name) for project_id, name in self._read(PUBLIC_INDEXES_SQL, {})]

    def set_index_status(self, project_id: str, name: str, status: str) -> None:
        with self._write() as conn:
            conn.execute(SET_INDEX_STATUS_SQL, {"project_id": project_id, "name": name, "status": status, "now": utc_now_iso()})

    # -- versions ---------------------------------------------------------------

    def latest_version(self, project_id: str, name: str) -> VersionRecord | None:
        rows = self._read(LATEST_VERSION_SQL, {"project_id": project_id, "name": name})
        return _version_record(rows[0]) if rows else None

    def get_version(self, project_id: str, name: str, version: int) -> VersionRecord | None:
        rows = self._read(GET_VERSION_SQL, {"project_id": project_id, "name": name, "version": version})
        return _version_record(rows[0]) if rows else None

    def list_versions(self, project_id: str, name: str) -> list[VersionRecord]:
        """Every published version of the index, newest first."""
        return [_version_record(r) for r in self._read(LIST_VERSIONS_SQL, {"project_id": project_id, "name": name})]

    def publish(self, project_id: str, job_id: str, record: VersionRecord, *, overwritten: int | None = None) -> bool:
        """Make ``record`` the newest version and complete the job, atomically; for a
        push, its ``overwritten`` count is stored in the same transaction.

        Returns False (and changes nothing) if another writer published this
        version number first or the index was deleted meanwhile; the caller
        rebuilds on the new latest version.
        """
        m = record.manifest
        now = utc_now_iso()
        with self._write() as conn:
            index = conn.execute(GET_INDEX_SQL, {"project_id": project_id, "name": m.index_name}).fetchall()
            latest = conn.execute(LATEST_VERSION_SQL, {"project_id": project_id, "name": m.index_name}).fetchall()
            if not index or (latest and latest[0][1] >= m.version):
                return False
            conn.execute(
                INSERT_VERSION_SQL,
                {
                    "project_id": project_id,
                    "index_name": m.index_name,
                    "version": m.version,
                    "sha256": m.sha256,
                    "size_bytes": m.size_bytes,
                    "doc_count": m.doc_count,
                    "model_id": m.model_id,
                    "dimension": m.dimension,
                    "storage_key": record.storage_key,
                    "created_at": m.created_at,
                },
            )
            conn.execute(
                PUBLISH_INDEX_SQL,
                {"project_id": project_id, "index_name": m.index_name, "version": m.version, "doc_count": m.doc_count, "now": now},
            )
            _update_job(
                conn,
                job_id,
                status=JobStatus.COMPLETED,
                progress=100.0,
                current_phase=None,
                version=m.version,
                completed_at=now,
            )
            if overwritten is not None:
                conn.execute(
                    SET_PUSH_OVERWRITTEN_SQL, {"project_id": project_id, "job_id": job_id, "overwritten": overwritten}
                )
        return True

    def complete_unchanged(self, job_id: str, version: int) -> None:
        """Complete a job that changed no document: ``version``, the newest, stays
        the newest (nothing is published)."""
        fields = {"status": JobStatus.COMPLETED, "progress": 100.0, "current_phase": None}
        self.update_job(job_id, **fields, version=version, completed_at=utc_now_iso())

    # -- jobs -------------------------------------------------------------------

    def create_job(self, project_id: str, index_name: str, kind: str, doc_count: int) -> str:
        job_id = "job_" + secrets.token_hex(8)
        params = {"job_id": job_id, "project_id": project_id, "index_name": index_name, "kind": kind}
        with self._write() as conn:
            conn.execute(INSERT_JOB_SQL, {**params, "doc_count": doc_count, "now": utc_now_iso()})
        return job_id

    def update_job(self, job_id: str, **fields: Any) -> None:
        with self._write() as conn:
            _update_job(conn, job_id, **fields)

    def get_job(self, project_id: str, job_id: str) -> Job:
        rows = self._read(GET_JOB_SQL, {"project_id": project_id, "job_id": job_id})
        if not rows:
            raise JobNotFoundError(f"job {job_id!r} not found", job_id=job_id)
        (job_id, index_name, kind, status, phase, progress, error, doc_count, version, created, updated, completed) = rows[0]
        return Job(
            job_id=job_id,
            index_name=index_name,
            kind=kind,
            status=status,
            current_phase=phase,
            progress=progress,
            error=error,
            doc_count=doc_count,
            version=version,
            created_at=created,
            updated_at=updated,
            completed_at=completed,
        )

    def job_project(self, job_id: str) -> str:
        rows = self._read(JOB_PROJECT_SQL, {"job_id": job_id})
        if not rows:
            raise JobNotFoundError(f"job {job_id!r} not found", job_id=job_id)
        return rows[0][0]

    def ended_jobs(self, job_ids: list[str]) -> set[str]:
        """Those of ``job_ids`` that completed or failed."""
        return {r[0] for r in self._read(ENDED_JOB_IDS_SQL, {"job_ids": json.dumps(job_ids)})}

    def unfinished_jobs(self) -> list[tuple[str, str, str, str | None]]:
        """(job_id, project_id, index_name, owner) of every job not yet ended, oldest first."""
        return [tuple(r) for r in self._read(UNFINISHED_JOBS_SQL, {})]  # type: ignore[misc]

    def next_job(self, project_id: str, index_name: str) -> str | None:
        rows = self._read(NEXT_JOB_SQL, {"project_id": project_id, "index_name": index_name})
        return rows[0][0] if rows else None

    # -- session pushes (issue #5) -------------------------------------------------

    def get_push(self, project_id: str, index_name: str, diff_id: str) -> tuple[str, int, int | None] | None:
        """(job_id, doc_count, overwritten) of a push, or None."""
        params = {"project_id": project_id, "index_name": index_name, "diff_id": diff_id}
        rows = self._read(GET_PUSH_SQL, params)
        return tuple(rows[0]) if rows else None  # type: ignore[return-value]

    def record_push(self, project_id: str, index_name: str, diff_id: str, job_id: str, doc_count: int) -> None:
        """Remember which job applies ``diff_id`` (replacing the record of a failed one)."""
        params = {"project_id": project_id, "index_name": index_name, "diff_id": diff_id}
        with self._write() as conn:
            conn.execute(RECORD_PUSH_SQL, {**params, "job_id": job_id, "doc_count": doc_count, "now": utc_now_iso()})


def _update_job(conn: apsw.Connection, job_id: str, **fields: Any) -> None:
    unknown = set(fields) - JOB_FIELDS
    if unknown:
        raise ValueError(f"not job fields: {sorted(unknown)}")
    conn.execute(update_job_sql(sorted(fields)), {**fields, "job_id": job_id, "updated_at": utc_now_iso()})


def _index_info(row: tuple) -> IndexInfo:
    name, version, status, doc_count, model_id, dimension, created_at, updated_at, public = row
    return IndexInfo(
        name=name,
        version=version,
        status=status,
        doc_count=doc_count,
        model=model_id,
        dimension=dimension,
        created_at=created_at,
        updated_at=updated_at,
        public=bool(public),
    )


def _version_record(row: tuple) -> VersionRecord:
    index_name, version, sha256, size_bytes, doc_count, model_id, dimension, created_at, storage_key = row
    return VersionRecord(
        manifest=Manifest(
            index_name=index_name,
            version=version,
            sha256=sha256,
            size_bytes=size_bytes,
            doc_count=doc_count,
            model_id=model_id,
            dimension=dimension,
            created_at=created_at,
        ),
        storage_key=storage_key,
    )
