"""Project keys at rest (issue #8): no part of a key, however short, can be read back
out of the catalog; catalogs written before that are upgraded in place."""

from __future__ import annotations

import hashlib
from pathlib import Path

import apsw
import pytest

from mosslite.errors import IntegrityError, UnauthorizedError
from mosslite.service import Service


def catalog_bytes(data: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data.glob("catalog.sqlite*"))


def test_a_short_key_leaves_no_trace_in_the_catalog_or_the_listing(tmp_path: Path) -> None:
    service = Service(tmp_path, start_jobs=False)
    try:
        service.adopt_key("p", "my-key")
        minted = service.create_key("p")
        listed = service.list_keys("p")
        assert sorted(key_id for key_id, _ in listed) == sorted([service.key_id("my-key"), service.key_id(minted)])
        assert all("my-key" not in key_id and minted[:6] not in key_id for key_id, _ in listed)
    finally:
        service.close()
    stored = catalog_bytes(tmp_path)
    for text in ("my-key", minted):
        assert text.encode() not in stored
        assert hashlib.sha256(text.encode()).hexdigest().encode() not in stored  # not even a plain hash
    assert (tmp_path / "catalog.secret").stat().st_mode & 0o077 == 0


def test_a_catalog_copied_without_its_secret_is_refused_not_reopened_with_a_new_one(tmp_path: Path) -> None:
    Service(tmp_path, start_jobs=False).adopt_key("p", "my-key")
    (tmp_path / "catalog.secret").unlink()
    with pytest.raises(IntegrityError, match="catalog.secret"):
        Service(tmp_path, start_jobs=False)
    assert not (tmp_path / "catalog.secret").exists()


def test_the_same_secret_opens_the_keys_again(tmp_path: Path) -> None:
    first = Service(tmp_path, start_jobs=False)
    first.adopt_key("p", "my-key")
    first.close()
    again = Service(tmp_path, start_jobs=False)
    try:
        again.authenticate("p", "my-key")
        with pytest.raises(UnauthorizedError):
            again.authenticate("p", "my-key ")
    finally:
        again.close()


def test_a_version_1_catalog_is_upgraded_and_its_keys_still_open_it(tmp_path: Path) -> None:
    """Version 1 stored sha256(key) and the key's first six characters."""
    conn = apsw.Connection(str(tmp_path / "catalog.sqlite"))
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
