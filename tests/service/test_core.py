"""The Service facade (service/core.py): what a transport reads of a published
version through it (path, size, bytes, patches, the folder to watch) and which
project a key opens, on both storage backends."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mosslite import DocumentInfo, MutationOptions
from mosslite.service import Service
from mosslite.service.storage.memory import MemoryStorage

MODEL = "hashed-ngrams-256"


@pytest.fixture(params=["directory", "memory"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    storage = MemoryStorage() if request.param == "memory" else None
    service = Service(tmp_path / "svc", storage=storage)
    service.adopt_key("p", "key-of-p")
    service.create_index("p", "faq", [DocumentInfo(id=f"d{i}", text=f"text number {i}") for i in range(20)], MODEL)
    assert service.wait_idle(30)
    try:
        yield service
    finally:
        service.close()


def test_a_versions_bytes_are_the_published_file(service: Service) -> None:
    record = service.version_record("p", "faq", 1)
    data = b"".join(service.version_bytes(record))
    assert len(data) == service.version_size(record) == record.manifest.size_bytes
    assert hashlib.sha256(data).hexdigest() == record.manifest.sha256
    assert b"".join(service.version_bytes(record, 100, 4196)) == data[100:4196]
    assert b"".join(service.version_bytes(record, len(data) - 10)) == data[-10:]


def test_a_version_has_a_path_only_in_directory_storage(service: Service) -> None:
    record = service.version_record("p", "faq", 1)
    path = service.version_path(record)
    if isinstance(service.storage, MemoryStorage):
        assert path is None
    else:
        assert path is not None and hashlib.sha256(path.read_bytes()).hexdigest() == record.manifest.sha256


def test_the_watched_folder_is_where_the_manifest_changes(service: Service) -> None:
    folder = service.watch_dir("p", "faq")
    if isinstance(service.storage, MemoryStorage):
        assert folder is None
        return
    assert folder == service.data_dir / "storage" / "p" / "faq"
    before = (folder / "manifest.json").read_bytes()
    service.add_docs("p", "faq", [DocumentInfo(id="new", text="a new one")], MutationOptions())
    assert service.wait_idle(30)
    assert (folder / "manifest.json").read_bytes() != before
    assert service.manifest("p", "faq").version == 2


def test_a_pruned_versions_size_and_bytes_are_file_not_found(service: Service) -> None:
    record = service.version_record("p", "faq", 1)
    for i in range(service.keep_versions):
        service.add_docs("p", "faq", [DocumentInfo(id=f"more{i}", text="more")], MutationOptions())
        assert service.wait_idle(30)
    with pytest.raises(FileNotFoundError):
        service.version_size(record)
    with pytest.raises(FileNotFoundError):
        b"".join(service.version_bytes(record))


def test_patch_bytes_stream_the_patch_it_was_given(service: Service) -> None:
    service.add_docs("p", "faq", [DocumentInfo(id="d3", text="changed text")], MutationOptions())
    assert service.wait_idle(30)
    patch = service.version_patch("p", "faq", 2, 1)
    assert len(b"".join(service.patch_bytes(patch))) == patch.size_bytes


def test_a_key_opens_its_own_project_only(service: Service) -> None:
    other = service.create_key("q")
    assert service.project_of_key("key-of-p") == "p"
    assert service.project_of_key(other) == "q"
    assert service.project_of_key("no-such-key") is None
