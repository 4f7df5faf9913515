"""The catalog (service/catalog.py) on real SQLite files: publishing a version and
completing its job in one transaction, the newest version, job rows, push records,
and the upgrade of a version-1 catalog (issue #8)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import apsw
import pytest

from mosslite.errors import IndexNotFoundError, JobNotFoundError, UnauthorizedError
from mosslite.service import Service
from mosslite.service.catalog import INDEX_DELETED, Catalog, VersionRecord
from mosslite.service.catalog_sql import update_job_sql
from mosslite.types import Manifest

MODEL, DIM = "hashed-ngrams-256", 256


@pytest.fixture
def catalog(tmp_path: Path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.add_key("p", "k")
    catalog.create_index("p", "faq", MODEL, DIM)
    yield catalog
    catalog.close()


def record(version: int, *, doc_count: int = 2, name: str = "faq") -> VersionRecord:
    manifest = Manifest(
        index_name=name,
        version=version,
        sha256=f"{version:064x}",
        size_bytes=4096 * version,
        doc_count=doc_count,
        model_id=MODEL,
        dimension=DIM,
        created_at="2026-01-01T00:00:00Z",
    )
    return VersionRecord(manifest=manifest, storage_key=f"p/{name}/{version:010d}.sqlite")


def catalog_bytes(data: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data.glob("catalog.sqlite*"))


# -- publishing -----------------------------------------------------------------------


def test_publish_makes_the_version_the_newest_and_completes_its_job_together(catalog: Catalog, tmp_path: Path) -> None:
    assert catalog.latest_version("p", "faq") is None
    job_id = catalog.create_job("p", "faq", "create_index", 2)
    assert catalog.publish("p", job_id, record(1))
    other = Catalog(tmp_path / "catalog.sqlite")  # another process sharing the data folder
    try:
        for seen in (catalog, other):
            assert seen.latest_version("p", "faq") == record(1)
            assert seen.get_version("p", "faq", 1) == record(1)
            info = seen.get_index("p", "faq")
            assert (info.version, info.status, info.doc_count) == (1, "ready", 2)
            job = seen.get_job("p", job_id)
            assert (job.status, job.version, job.progress, job.current_phase) == ("completed", 1, 100.0, None)
            assert job.completed_at
    finally:
        other.close()


def test_the_newest_version_is_the_highest_published(catalog: Catalog) -> None:
    for version in (1, 2, 3):
        assert catalog.publish("p", catalog.create_job("p", "faq", "add_docs", 1), record(version, doc_count=version))
    assert catalog.latest_version("p", "faq") == record(3, doc_count=3)
    assert catalog.get_version("p", "faq", 2) == record(2, doc_count=2)
    assert catalog.get_version("p", "faq", 4) is None
    assert catalog.get_index("p", "faq").doc_count == 3


def test_a_version_published_first_by_another_writer_changes_nothing(catalog: Catalog) -> None:
    first, second = (catalog.create_job("p", "faq", "add_docs", 1) for _ in range(2))
    assert catalog.publish("p", first, record(1))
    assert not catalog.publish("p", second, record(1, doc_count=9))  # the same number: rebuild on it
    assert catalog.latest_version("p", "faq") == record(1)
    assert catalog.get_index("p", "faq").doc_count == 2
    assert catalog.get_job("p", second).status == "pending_upload"


def test_deleting_an_index_returns_its_files_fails_its_jobs_and_refuses_a_late_publish(catalog: Catalog) -> None:
    assert catalog.publish("p", catalog.create_job("p", "faq", "create_index", 2), record(1))
    running = catalog.create_job("p", "faq", "add_docs", 1)
    assert catalog.delete_index("p", "faq") == [record(1).storage_key]
    job = catalog.get_job("p", running)
    assert (job.status, job.error) == ("failed", INDEX_DELETED) and job.completed_at
    assert not catalog.publish("p", running, record(2))
    assert catalog.latest_version("p", "faq") is None
    with pytest.raises(IndexNotFoundError):
        catalog.get_index("p", "faq")
    with pytest.raises(IndexNotFoundError):
        catalog.delete_index("p", "faq")


# -- jobs -------------------------------------------------------------------------------


def test_job_rows_keep_their_fields_and_order(catalog: Catalog) -> None:
    catalog.create_index("p", "other", MODEL, DIM)
    first = catalog.create_job("p", "faq", "create_index", 3)
    second = catalog.create_job("p", "other", "create_index", 1)
    third = catalog.create_job("p", "faq", "add_docs", 5)
    job = catalog.get_job("p", first)
    assert (job.job_id, job.index_name, job.kind, job.status, job.doc_count) == (first, "faq", "create_index", "pending_upload", 3)
    assert (job.version, job.error, job.completed_at) == (None, None, None)

    catalog.update_job(first, status="building", current_phase="building_index", progress=42.5, owner="host:1")
    job = catalog.get_job("p", first)
    assert (job.status, job.current_phase, job.progress) == ("building", "building_index", 42.5)
    assert catalog.unfinished_jobs() == [(first, "p", "faq", "host:1"), (second, "p", "other", None), (third, "p", "faq", None)]
    assert catalog.next_job("p", "faq") == first and catalog.job_project(third) == "p"

    catalog.update_job(first, status="failed", error="boom", completed_at="2026-01-01T00:00:01Z")
    assert catalog.ended_jobs([first, second, "job_nope"]) == {first}
    assert catalog.next_job("p", "faq") == third
    assert [row[0] for row in catalog.unfinished_jobs()] == [second, third]


def test_a_job_is_found_only_in_its_own_project_and_only_its_fields_change(catalog: Catalog) -> None:
    job_id = catalog.create_job("p", "faq", "create_index", 1)
    catalog.add_key("q", "k2")
    with pytest.raises(JobNotFoundError):
        catalog.get_job("q", job_id)
    with pytest.raises(JobNotFoundError):
        catalog.job_project("job_nope")
    with pytest.raises(ValueError, match="project_id"):
        catalog.update_job(job_id, project_id="q")
    assert update_job_sql(["progress", "status"]) == (
        "UPDATE jobs\nSET progress = :progress, status = :status, updated_at = :updated_at\nWHERE job_id = :job_id"
    )


# -- pushes ---------------------------------------------------------------------------


def test_a_push_record_gets_its_overwritten_count_at_publish_and_a_retry_replaces_it(catalog: Catalog) -> None:
    failed = catalog.create_job("p", "faq", "push", 4)
    catalog.record_push("p", "faq", "diff-0001", failed, 4)
    assert catalog.get_push("p", "faq", "diff-0001") == (failed, 4, None)
    retried = catalog.create_job("p", "faq", "push", 4)
    catalog.record_push("p", "faq", "diff-0001", retried, 4)  # the first job failed: submitted again
    assert catalog.publish("p", retried, record(1), overwritten=1)
    assert catalog.get_push("p", "faq", "diff-0001") == (retried, 4, 1)
    assert catalog.get_push("p", "faq", "diff-0002") is None


def test_public_read_mode_is_kept_per_index_across_opens(catalog: Catalog, tmp_path: Path) -> None:
    catalog.create_index("p", "other", MODEL, DIM)
    assert not catalog.get_index("p", "faq").public
    before = catalog.get_index("p", "faq").updated_at
    assert catalog.set_public("p", "faq", True).public
    assert catalog.set_public("p", "faq", True).updated_at == catalog.get_index("p", "faq").updated_at >= before
    with pytest.raises(IndexNotFoundError):
        catalog.set_public("p", "nope", True)
    reopened = Catalog(tmp_path / "catalog.sqlite")
    try:
        assert [(i.name, i.public) for i in reopened.list_indexes("p")] == [("faq", True), ("other", False)]
        assert reopened.public_indexes() == [("p", "faq")]
    finally:
        reopened.close()


def test_a_catalog_made_before_public_read_mode_gets_the_column_at_open(catalog: Catalog, tmp_path: Path) -> None:
    catalog.close()
    conn = apsw.Connection(str(tmp_path / "catalog.sqlite"))
    conn.execute("ALTER TABLE indexes DROP COLUMN public")  # the layout before issue #10
    conn.close()
    upgraded = Catalog(tmp_path / "catalog.sqlite")
    try:
        assert not upgraded.get_index("p", "faq").public  # every index private, as before
        assert upgraded.set_public("p", "faq", True).public
    finally:
        upgraded.close()


# -- the version-1 catalog ------------------------------------------------------------


def write_version_1_catalog(path: Path) -> None:
    """Version 1 stored sha256(key) and the key's first six characters."""
    conn = apsw.Connection(str(path))
    conn.execute(
        """
        PRAGMA user_version = 1;
        CREATE TABLE projects (project_id TEXT PRIMARY KEY, created_at TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE project_keys (
            key_hash TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects (project_id) ON DELETE CASCADE,
            key_prefix TEXT NOT NULL,
            created_at TEXT NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO projects VALUES ('p', '2026-01-01T00:00:00Z');
        """
    )
    for key, when in (("my-key", "2026-01-01T00:00:01Z"), ("other", "2026-01-01T00:00:02Z")):
        digest = hashlib.sha256(key.encode()).hexdigest()
        conn.execute("INSERT INTO project_keys VALUES (?, 'p', ?, ?)", (digest, key[:6], when))
    conn.close()


def test_a_version_1_catalog_is_migrated_once_to_the_current_layout(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    write_version_1_catalog(path)
    Catalog(path).close()
    Catalog(path).close()  # a second open finds nothing to migrate
    conn = apsw.Connection(str(path))
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        columns = [row[1] for row in conn.execute("PRAGMA table_info(project_keys)")]
        assert columns == ["key_hash", "project_id", "created_at", "scheme"]
        assert {row[0] for row in conn.execute("SELECT scheme FROM project_keys")} == {"sha256"}
    finally:
        conn.close()


def test_a_version_1_catalog_is_upgraded_and_its_keys_still_open_it(tmp_path: Path) -> None:
    """Version 1 stored sha256(key) and the key's first six characters."""
    write_version_1_catalog(tmp_path / "catalog.sqlite")

    service = Service(tmp_path, start_jobs=False)
    try:
        assert b"my-key" not in catalog_bytes(tmp_path)  # the prefix column is gone at open
        service.authenticate("p", "my-key")  # an old key still opens its project ...
        with pytest.raises(UnauthorizedError):
            service.authenticate("p", "nope")
        listed = dict((when, key_id) for key_id, when in service.list_keys("p"))
        assert listed["2026-01-01T00:00:01Z"] == service.key_id("my-key")  # ... and is now an HMAC
        assert listed["2026-01-01T00:00:02Z"] == "(not used since upgrade)"
    finally:
        service.close()
    assert hashlib.sha256(b"my-key").hexdigest().encode() not in catalog_bytes(tmp_path)
    reopened = Service(tmp_path, start_jobs=False)
    try:
        reopened.authenticate("p", "my-key")
        reopened.authenticate("p", "other")
    finally:
        reopened.close()
