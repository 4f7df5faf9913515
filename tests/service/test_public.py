"""Public read mode on the service side (service/public.py): what an index made public
puts under ``_public/``, how it follows publishes, what going private and deleting
leave, and the refusals; on a folder and in memory (the real object store, read
without credentials, is tests/transport/test_public.py)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from mosslite import DocumentInfo, MutationOptions
from mosslite.embeddings import register
from mosslite.embeddings.hashed import HashedNgramEmbedder
from mosslite.errors import ConflictError, IndexNotFoundError, InvalidArgumentError, InvalidNameError
from mosslite.index.page_patch import PageMap
from mosslite.service import Service
from mosslite.service.storage import Storage
from mosslite.service.storage.memory import MemoryStorage
from mosslite.wire import parse_public_manifest

MODEL = "hashed-ngrams-256"
PUBLIC_URL = "https://cdn.example.com/mosslite"
#: Builds with GatedEmbedder wait until it is set.
GATE = threading.Event()


class GatedEmbedder(HashedNgramEmbedder):
    model_id = "public-test-gated"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        assert GATE.wait(60)
        return super().embed(texts)


register(GatedEmbedder.model_id, GatedEmbedder)


def docs(start: int, count: int) -> list[DocumentInfo]:
    return [DocumentInfo(id=f"d{i}", text=f"text number {i} about refunds") for i in range(start, start + count)]


def open_service(data: Path, storage: Storage | None = None, **options) -> Service:
    options.setdefault("public_url", PUBLIC_URL + "/")
    return Service(data, storage=storage, keep_versions=2, **options)


@pytest.fixture(params=["directory", "memory"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    service = open_service(tmp_path / "svc", MemoryStorage() if request.param == "memory" else None)
    service.adopt_key("p", "key-of-p")
    service.create_index("p", "faq", docs(0, 30), MODEL)
    assert service.wait_idle(30)
    try:
        yield service
    finally:
        service.close()


def add(service: Service, start: int, count: int = 2) -> None:
    service.add_docs("p", "faq", docs(start, count), MutationOptions())
    assert service.wait_idle(30)


def public(service: Service) -> list[str]:
    return service.storage.list("_public/")


def public_manifest(service: Service) -> dict:
    return json.loads(service.storage.read_bytes("_public/p/faq/manifest.json"))


def test_an_index_is_private_until_made_public(service: Service) -> None:
    info = service.get_index("p", "faq")
    assert (info.public, info.public_manifest) == (False, None)
    assert public(service) == []
    assert service.manifest_answer("p", "faq").public_manifest is None


def test_made_public_its_newest_version_and_a_manifest_naming_it_are_copied(service: Service) -> None:
    info = service.set_public("p", "faq", True)
    url = f"{PUBLIC_URL}/_public/p/faq/manifest.json"
    assert (info.public, info.public_manifest) == (True, url)
    assert service.get_index("p", "faq") == info and service.list_indexes("p") == [info]
    assert public(service) == [
        "_public/p/faq/0000000001.sqlite", "_public/p/faq/0000000001.sqlite.pages", "_public/p/faq/manifest.json"
    ]  # fmt: skip
    record = service.version_record("p", "faq", 1)
    body = public_manifest(service)
    assert body == {
        "format": 1, "index_name": "faq", "version": 1, "sha256": record.manifest.sha256,
        "size_bytes": record.manifest.size_bytes, "doc_count": 30, "model_id": MODEL, "dimension": 256,
        "created_at": record.manifest.created_at, "version_file": "0000000001.sqlite",
        "page_map": "0000000001.sqlite.pages",
    }  # fmt: skip
    file = service.storage.read_bytes("_public/p/faq/" + body["version_file"])
    assert hashlib.sha256(file).hexdigest() == body["sha256"] and len(file) == body["size_bytes"]
    pages = PageMap.from_bytes(service.storage.read_bytes("_public/p/faq/" + body["page_map"]))
    assert pages.sha256 == body["sha256"]
    assert parse_public_manifest(service.storage.read_bytes("_public/p/faq/manifest.json"))[0] == record.manifest
    answer = service.manifest_answer("p", "faq")
    assert answer.public_manifest == url and answer.etag == f"{record.manifest.sha256}.public"
    assert service.set_public("p", "faq", True) == info  # again: nothing changes


def test_every_publish_moves_the_public_manifest_and_copies_are_kept_as_storage_keeps_files(service: Service) -> None:
    service.set_public("p", "faq", True)
    add(service, 100)
    assert public_manifest(service)["version"] == 2
    add(service, 200)
    add(service, 300)
    assert public_manifest(service)["version"] == 4
    kept = {key.rsplit("/", 1)[1] for key in public(service)}
    assert kept == {"manifest.json", "0000000003.sqlite", "0000000003.sqlite.pages", "0000000003.sqlite.from-2.patch",
                    "0000000004.sqlite", "0000000004.sqlite.pages", "0000000004.sqlite.from-3.patch",
                    }  # keep_versions=2, as the originals  # fmt: skip
    assert service.storage.read_bytes("_public/p/faq/0000000004.sqlite") == service.storage.read_bytes(
        "p/faq/0000000004.sqlite"
    )


def test_made_private_the_manifest_and_every_copy_are_deleted(service: Service) -> None:
    service.set_public("p", "faq", True)
    add(service, 100)
    info = service.set_public("p", "faq", False)
    assert (info.public, info.public_manifest) == (False, None)
    assert public(service) == []
    assert service.manifest_answer("p", "faq").public_manifest is None
    add(service, 200)  # a publish of a private index copies nothing
    assert public(service) == []
    assert [key.rsplit("/", 1)[1] for key in service.storage.list("p/faq/") if key.endswith(".sqlite")] == [
        "0000000002.sqlite", "0000000003.sqlite"
    ]  # its own files are untouched  # fmt: skip


def test_a_deleted_public_index_leaves_nothing_public(service: Service) -> None:
    service.set_public("p", "faq", True)
    service.delete_index("p", "faq")
    assert public(service) == []
    assert not (service.lock_dir / "_public" / "p").exists()


def test_an_index_made_public_before_its_first_version_is_copied_when_it_is_published(tmp_path: Path) -> None:
    GATE.clear()
    service = open_service(tmp_path / "svc")
    try:
        service.adopt_key("p", "k")
        service.create_index("p", "faq", docs(0, 5), GatedEmbedder.model_id)  # its build waits at the gate
        assert service.set_public("p", "faq", True).public and public(service) == []
        GATE.set()
        assert service.wait_idle(30)
        assert public_manifest(service)["version"] == 1
    finally:
        GATE.set()
        service.close()


def test_the_public_flag_survives_a_restart_and_a_missed_copy_is_made_at_start(tmp_path: Path) -> None:
    service = open_service(tmp_path / "svc")
    service.adopt_key("p", "k")
    service.create_index("p", "faq", docs(0, 5), MODEL)
    assert service.wait_idle(30)
    service.set_public("p", "faq", True)
    add(service, 100)
    service.storage.delete("_public/p/faq/manifest.json")  # as if it crashed before the copy of v2
    service.storage.delete("_public/p/faq/0000000002.sqlite")
    service.close()
    service = open_service(tmp_path / "svc")
    try:
        assert service.get_index("p", "faq").public
        assert public_manifest(service)["version"] == 2
        assert service.storage.read_bytes("_public/p/faq/0000000002.sqlite")
    finally:
        service.close()


def test_without_a_public_url_an_index_cannot_be_made_public(tmp_path: Path) -> None:
    service = open_service(tmp_path / "svc", public_url=None)
    try:
        service.adopt_key("p", "k")
        service.create_index("p", "faq", docs(0, 5), MODEL)
        assert service.wait_idle(30)
        with pytest.raises(ConflictError, match="no public URL") as refused:
            service.set_public("p", "faq", True)
        assert "--public-url" in (refused.value.hint or "")
        assert not service.get_index("p", "faq").public and public(service) == []
        assert not service.set_public("p", "faq", False).public  # private is always possible
    finally:
        service.close()


@pytest.mark.parametrize("url", ["cdn.example.com", "ftp://cdn.example.com/x", "https://", "https://h/x?sig=1", 7])
def test_a_public_url_is_an_http_url_with_a_host(tmp_path: Path, url: object) -> None:
    with pytest.raises(InvalidArgumentError, match="public URL"):
        Service(tmp_path / "svc", public_url=url)  # type: ignore[arg-type]


@pytest.mark.parametrize("age", [-1, 86_401, 2.5, "30", True])
def test_a_manifest_max_age_is_whole_seconds_up_to_a_day(tmp_path: Path, age: object) -> None:
    with pytest.raises(InvalidArgumentError, match="public_max_age_s must be an integer from 0 to 86400"):
        Service(tmp_path / "svc", public_max_age_s=age)  # type: ignore[arg-type]
    assert not (tmp_path / "svc").exists()  # refused before anything was made


def test_bad_requests_are_refused_before_anything_changes(service: Service) -> None:
    for value in (1, "yes", None):
        with pytest.raises(InvalidArgumentError, match="true or false, got"):
            service.set_public("p", "faq", value)  # type: ignore[arg-type]
    with pytest.raises(IndexNotFoundError):
        service.set_public("p", "nope", True)
    with pytest.raises(InvalidNameError):
        service.set_public("p", "../faq", True)
    assert public(service) == []
