"""Project keys at rest (issue #8): no part of a key, however short, can be read back
out of the catalog (a version-1 catalog's upgrade: test_catalog.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
