"""Page patches on the service side: which pages, stored page maps, when there is
no patch, and the HTTP route that streams them (issue #4)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mosslite import DocumentInfo
from mosslite.errors import IndexNotFoundError, InvalidArgumentError, PatchUnavailableError
from mosslite.index.page_patch import PageMap, apply_patch
from mosslite.service import Service, version_key
from mosslite.service.layout import pages_key, patch_key
from mosslite.service.storage.memory import MemoryStorage

from .test_http import Env, anyio_backend, env, error_code, service  # noqa: F401 (fixtures)

MODEL = "hashed-ngrams-256"


def docs(start: int, count: int) -> list[DocumentInfo]:
    return [DocumentInfo(id=f"d{i}", text=f"note {i} on routers, printers and cables " * 8) for i in range(start, start + count)]


@pytest.fixture(params=["directory", "memory"])
def svc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    service = Service(tmp_path / "svc", storage=MemoryStorage() if request.param == "memory" else None)
    service.create_key("p")
    yield service
    service.close()


def versions(service: Service, *changes: tuple[list[DocumentInfo], list[str]]) -> None:
    """Version 1 (400 documents), then one version per (upserts, deletes)."""
    service.create_index("p", "faq", docs(0, 400), MODEL)
    for upserts, deletes in changes:
        assert service.wait_idle(30)
        if upserts:
            service.add_docs("p", "faq", upserts, None)
        if deletes:
            service.delete_docs("p", "faq", deletes)
    assert service.wait_idle(30)


def file_bytes(service: Service, version: int) -> bytes:
    return service.storage.read_bytes(version_key("p", "faq", version))


def apply(service: Service, tmp_path: Path, base: int, patch_body: bytes) -> bytes:
    (tmp_path / "base").write_bytes(file_bytes(service, base))
    (tmp_path / "patch").write_bytes(patch_body)
    apply_patch(tmp_path / "base", tmp_path / "patch", tmp_path / "out")
    return (tmp_path / "out").read_bytes()


def test_a_patch_holds_the_changed_pages_and_rebuilds_the_version(svc: Service, tmp_path: Path) -> None:
    versions(svc, (docs(400, 3), []), (docs(403, 2), []))
    patch = svc.version_patch("p", "faq", 3, 1)
    body = b"".join(patch.chunks(svc.storage))
    assert len(body) == patch.size_bytes < len(file_bytes(svc, 3)) // 5
    assert apply(svc, tmp_path, 1, body) == file_bytes(svc, 3)
    assert hashlib.sha256(file_bytes(svc, 3)).hexdigest() == patch.target.manifest.sha256


def test_page_maps_are_stored_at_publish_and_checked_against_the_version(svc: Service, tmp_path: Path) -> None:
    versions(svc, (docs(400, 3), []))
    stored = {v: svc.storage.read_bytes(pages_key(version_key("p", "faq", v))) for v in (1, 2)}
    assert PageMap.from_bytes(stored[2]).sha256 == svc.manifest("p", "faq").sha256
    # A map that describes other bytes (say, of an index deleted and made again
    # under this name) is not used: it is computed again from the file.
    svc.storage.put_bytes(pages_key(version_key("p", "faq", 1)), stored[2])
    patch = svc.version_patch("p", "faq", 2, 1)
    assert apply(svc, tmp_path, 1, b"".join(patch.chunks(svc.storage))) == file_bytes(svc, 2)
    assert svc.storage.read_bytes(pages_key(version_key("p", "faq", 1))) == stored[1]
    # A missing map (a version published before maps existed) is computed on first use.
    svc.storage.delete(pages_key(version_key("p", "faq", 2)))
    svc.version_patch("p", "faq", 2, 1)
    assert svc.storage.read_bytes(pages_key(version_key("p", "faq", 2))) == stored[2]


def test_the_patch_from_the_version_before_is_stored_at_publish(svc: Service, tmp_path: Path) -> None:
    versions(svc, (docs(400, 3), []), ([], [f"d{i}" for i in range(350)]))  # v3: VACUUMed, pages moved
    stored = svc.storage.read_bytes(patch_key(version_key("p", "faq", 2), 1))
    assert stored == b"".join(svc.version_patch("p", "faq", 2, 1).chunks(svc.storage))  # the route's patch
    assert apply(svc, tmp_path, 1, stored) == file_bytes(svc, 2)
    assert not any(k.endswith(".patch") for k in svc.storage.list("p/faq/0000000001"))  # nothing before v1
    with pytest.raises(FileNotFoundError):  # v3 differs in most pages: no patch is worth storing
        svc.storage.size(patch_key(version_key("p", "faq", 3), 2))


def test_when_there_is_no_patch(svc: Service) -> None:
    versions(svc, (docs(400, 3), []), ([], [f"d{i}" for i in range(350)]))  # v3: VACUUMed, pages moved
    for base in (0, 2, 3, 9):
        with pytest.raises(PatchUnavailableError):
            svc.version_patch("p", "faq", 2, base)  # none, itself, newer, unknown
    with pytest.raises(PatchUnavailableError, match="costs about as much"):
        svc.version_patch("p", "faq", 3, 2)
    with pytest.raises(IndexNotFoundError):
        svc.version_patch("p", "faq", 7, 1)
    with pytest.raises(IndexNotFoundError):
        svc.version_patch("p", "other", 2, 1)
    with pytest.raises(InvalidArgumentError):
        svc.version_patch("p", "faq", 2, -1)
    # Page maps are stored at publish and outlive their files; with both gone, the
    # base's pages are unknown.
    svc.storage.delete(version_key("p", "faq", 1))
    assert len(svc.version_patch("p", "faq", 2, 1).pages) > 0
    svc.storage.delete(pages_key(version_key("p", "faq", 1)))
    with pytest.raises(PatchUnavailableError, match="no longer known"):
        svc.version_patch("p", "faq", 2, 1)


def test_deleting_an_index_deletes_its_page_maps_and_patches(svc: Service) -> None:
    versions(svc, (docs(400, 3), []))
    assert {k.rsplit(".", 1)[-1] for k in svc.storage.list("p/")} == {"json", "sqlite", "pages", "patch"}
    svc.delete_index("p", "faq")
    assert svc.storage.list("p/") == []


# -- the HTTP route -----------------------------------------------------------------

pytestmark = pytest.mark.anyio


def two_versions(service: Service) -> None:
    service.create_index("proj-a", "faq", docs(0, 400), MODEL)
    assert service.wait_idle(30)
    service.add_docs("proj-a", "faq", docs(400, 3), None)
    assert service.wait_idle(30)


async def test_patch_route(env: Env, tmp_path: Path) -> None:  # noqa: F811
    two_versions(env.service)
    url = "/v1/projects/proj-a/indexes/faq/versions/2/patch"
    response = await env.http.get(url, params={"from": "1"}, headers=env.auth())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mosslite.page-patch"
    manifest = env.service.manifest("proj-a", "faq")
    assert response.headers["x-content-sha256"] == manifest.sha256
    assert int(response.headers["content-length"]) == len(response.content) < manifest.size_bytes // 5
    (tmp_path / "base").write_bytes(env.service.storage.read_bytes(version_key("proj-a", "faq", 1)))
    (tmp_path / "patch").write_bytes(response.content)
    assert apply_patch(tmp_path / "base", tmp_path / "patch", tmp_path / "out") == manifest.sha256

    for params, status, code in [
        ({"from": "2"}, 404, "patch_unavailable"),
        ({"from": "x"}, 400, "invalid_argument"),
        ({}, 400, "invalid_argument"),
    ]:
        answer = await env.http.get(url, params=params, headers=env.auth())
        assert (answer.status_code, error_code(answer)) == (status, code)
    missing = await env.http.get("/v1/projects/proj-a/indexes/faq/versions/5/patch?from=1", headers=env.auth())
    assert (missing.status_code, error_code(missing)) == (404, "index_not_found")
    other = await env.http.get(url + "?from=1", headers=env.auth(env.key_b))
    assert other.status_code == 404  # another project's key learns nothing


async def test_transport_download_patch(env: Env, tmp_path: Path) -> None:  # noqa: F811
    two_versions(env.service)
    transport = env.transport()
    try:
        assert await transport.download_patch("faq", 2, 1, tmp_path / "patch") is True
        assert (tmp_path / "patch").stat().st_size < env.service.manifest("proj-a", "faq").size_bytes // 5
        assert await transport.download_patch("faq", 2, 2, tmp_path / "none") is False
        with pytest.raises(IndexNotFoundError):
            await transport.download_patch("gone", 2, 1, tmp_path / "gone")
    finally:
        await transport.aclose()


def test_old_version_files_are_deleted_and_their_maps_kept(tmp_path: Path) -> None:
    service = Service(tmp_path / "svc", keep_versions=2)
    service.create_key("p")
    try:
        versions(service, *[(docs(400 + v, 1), []) for v in range(4)])  # v1..v5
        names = sorted(k.rsplit("/", 1)[1] for k in service.storage.list("p/faq/"))
        files = [f"{v:010d}.sqlite" for v in (4, 5)]
        patches = [f"{v:010d}.sqlite.from-{v - 1}.patch" for v in (4, 5)]  # gone with their files
        maps = [f"{v:010d}.sqlite.pages" for v in range(1, 6)]
        assert names == sorted([*files, *patches, *maps, "manifest.json"])
        with pytest.raises(FileNotFoundError):
            service.storage.size(version_key("p", "faq", 2))  # gone...
        patch = service.version_patch("p", "faq", 5, 1)  # ...but its pages are still known
        assert 0 < len(patch.pages) < patch.page_map.page_count // 5
    finally:
        service.close()


def test_keep_versions_must_be_a_positive_integer(tmp_path: Path) -> None:
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(InvalidArgumentError):
            Service(tmp_path / "svc", keep_versions=bad)
