"""The HTTP layer: routes, wire schemas, auth, limits, ranges, and HTTPTransport.

Most tests run in-process through ``httpx.ASGITransport``; one starts a real
``mosslite serve`` process on a free loopback port.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import html
import json
import logging
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import jsonschema
import numpy as np
import pytest
from referencing import Registry, Resource

import mosslite
from mosslite import DocumentInfo, MutationOptions, MutationResult
from mosslite.transport import download
from mosslite.transport.http import HTTPTransport
from mosslite.errors import (
    ClosedError,
    ConflictError,
    DimensionMismatchError,
    IndexNotFoundError,
    InvalidFilterError,
    InvalidNameError,
    JobNotFoundError,
    NotFoundError,
    TimeoutError_,
    UnauthorizedError,
    UnavailableError,
)
from mosslite.service import Service
from mosslite.service.http import create_app

pytestmark = pytest.mark.anyio

MODEL = "hashed-ngrams-256"
BASE = "http://mosslite.test"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "wire"
REQUEST_SCHEMAS = {
    ("POST", "indexes"): "create_index_request",
    ("POST", "docs"): "add_docs_request",
    ("POST", "delete"): "delete_docs_request",
    ("POST", "get"): "get_docs_request",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- schemas ----------------------------------------------------------------------


def _load_validators() -> dict[str, jsonschema.protocols.Validator]:
    schemas = {p.stem: json.loads(p.read_text()) for p in sorted(SCHEMA_DIR.glob("*.json"))}
    registry: Registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    validators = {}
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        validators[name] = jsonschema.Draft202012Validator(schema, registry=registry)
    return validators


VALIDATORS = _load_validators()


def check(schema: str, instance: Any) -> Any:
    VALIDATORS[schema].validate(instance)
    return instance


def error_code(response: httpx.Response) -> str:
    return check("error", response.json())["error"]["code"]


def test_every_wire_message_has_a_schema() -> None:
    assert set(VALIDATORS) == {
        "add_docs_request", "create_index_request", "delete_docs_request", "docs_list", "document", "error",
        "get_docs_request", "health", "index_info", "index_list", "job", "manifest", "mutation_result",
        "public_request", "push_request", "push_result", "root", "upload", "upload_docs_request", "upload_request",
        "version_info", "version_list",
    }  # fmt: skip


# -- fixtures ---------------------------------------------------------------------


def faq_docs(n: int = 6) -> list[DocumentInfo]:
    return [
        DocumentInfo(
            id=f"d{i}", text=f"document {i} about refunds and shipping", metadata={"n": str(i)}, payload=f"p{i}"
        )
        for i in range(n)
    ]


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests on, keeping them, so their bodies can be checked against the schemas."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


class RangeStripper(httpx.AsyncBaseTransport):
    """A server (or proxy) that ignores Range and always answers with the whole file."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        del request.headers["Range"]
        return await self.inner.handle_async_request(request)


class DroppingAfter(httpx.AsyncBaseTransport):
    """A network that delivers the body in small pieces and drops the connection after ``limit`` bytes."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limit: int, piece: int = 300) -> None:
        self.inner, self.limit, self.piece = inner, limit, piece

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = b"".join([chunk async for chunk in response.stream])
        limit, piece = self.limit, self.piece

        class Pieces(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                for start in range(0, min(limit, len(body)), piece):
                    yield body[start : min(start + piece, limit)]
                if limit < len(body):
                    raise httpx.ReadError("connection dropped")

        return httpx.Response(response.status_code, headers=response.headers, stream=Pieces())


class Gzipping(httpx.AsyncBaseTransport):
    """A proxy that compresses every body, whatever the client asked for."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.asked: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request.headers.get("accept-encoding"))
        response = await self.inner.handle_async_request(request)
        body = gzip.compress(b"".join([chunk async for chunk in response.stream]))
        headers = {**response.headers, "content-encoding": "gzip", "content-length": str(len(body))}
        return httpx.Response(response.status_code, headers=headers, content=body)


@dataclass
class Env:
    service: Service
    key_a: str
    key_b: str
    http: httpx.AsyncClient  # raw requests, no key by default
    asgi: httpx.ASGITransport

    def transport(self, project: str = "proj-a", key: str | None = None, inner: Any = None) -> HTTPTransport:
        return HTTPTransport(BASE, project, key or self.key_a, transport=inner or self.asgi)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key_a}"}

    def files(self) -> set[str]:
        root = self.service.data_dir
        return {str(p.relative_to(root)) for p in root.rglob("*") if "-wal" not in p.name and "-shm" not in p.name}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    service = Service(tmp_path / "data")
    yield service
    service.close()


@pytest.fixture
async def env(service: Service) -> AsyncIterator[Env]:
    asgi = httpx.ASGITransport(app=create_app(service, max_request_bytes=64 * 1024))
    async with httpx.AsyncClient(transport=asgi, base_url=BASE) as http:
        yield Env(service, service.create_key("proj-a"), service.create_key("proj-b"), http, asgi)


async def build(env: Env, name: str = "faq") -> mosslite.types.Manifest:
    """Index ``name`` of project A, built and published (version 1)."""
    transport = env.transport()
    try:
        result = await transport.create_index(name, faq_docs(), MODEL)
        assert env.service.wait_idle(30)
        assert (await transport.get_job(result.job_id)).status == "completed"
        return await transport.manifest(name)
    finally:
        await transport.aclose()


# -- every route, in its schema ---------------------------------------------------


async def test_health_needs_no_key(env: Env) -> None:
    response = await env.http.get("/v1/health")
    assert response.status_code == 200
    assert check("health", response.json()) == {"status": "ok", "version": mosslite.__version__}


async def test_the_root_and_the_docs_page_need_no_key(env: Env) -> None:
    root = await env.http.get("/")
    assert root.status_code == 200 and check("root", root.json())["version"] == mosslite.__version__
    page = await env.http.get(root.json()["docs"])
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    openapi = (await env.http.get(root.json()["openapi"])).json()
    for path, item in openapi["paths"].items():  # the page shows every operation of the document
        for method in item:
            assert f'<span class="method {method}">{method.upper()}</span> <code>{html.escape(path)}</code>' in page.text


async def test_every_route_answers_in_its_schema(env: Env) -> None:
    p, auth = "/v1/projects/proj-a", env.auth()
    docs = [mosslite.wire.to_dict(d) for d in faq_docs()]

    created = await env.http.post(f"{p}/indexes", json={"name": "faq", "docs": docs, "model_id": MODEL}, headers=auth)
    assert created.status_code == 202
    job_id = check("mutation_result", created.json())["job_id"]
    assert created.json() == {"job_id": job_id, "index_name": "faq", "doc_count": 6}
    job = await env.http.get(f"{p}/jobs/{job_id}", headers=auth)
    assert job.status_code == 200 and check("job", job.json())["job_id"] == job_id
    assert env.service.wait_idle(30)
    job = check("job", (await env.http.get(f"{p}/jobs/{job_id}", headers=auth)).json())
    assert job["status"] == "completed" and job["version"] == 1

    listed = await env.http.get(f"{p}/indexes", headers=auth)
    assert [i["name"] for i in check("index_list", listed.json())["indexes"]] == ["faq"]
    info = check("index_info", (await env.http.get(f"{p}/indexes/faq", headers=auth)).json())
    assert (info["version"], info["status"], info["doc_count"], info["model"]) == (1, "ready", 6, MODEL)

    manifest = await env.http.get(f"{p}/indexes/faq/manifest", headers=auth)
    assert check("manifest", manifest.json())["version"] == 1
    assert manifest.headers["etag"] == f'"{manifest.json()["sha256"]}"'

    more = {"docs": [{"id": "x", "text": "express shipping"}], "options": {"upsert": False}}
    added = await env.http.post(f"{p}/indexes/faq/docs", json=more, headers=auth)
    assert added.status_code == 202 and check("mutation_result", added.json())["doc_count"] == 1
    deleted = await env.http.post(f"{p}/indexes/faq/docs/delete", json={"ids": ["d0"]}, headers=auth)
    assert deleted.status_code == 202 and check("mutation_result", deleted.json())["doc_count"] == 1
    assert env.service.wait_idle(30)

    got = await env.http.post(f"{p}/indexes/faq/docs/get", json={"ids": ["d1", "x", "d0"]}, headers=auth)
    assert got.status_code == 200
    assert sorted(d["id"] for d in check("docs_list", got.json())["docs"]) == ["d1", "x"]
    d1 = next(d for d in got.json()["docs"] if d["id"] == "d1")
    assert len(d1.pop("embedding")) == 256  # the service returns stored vectors too
    assert d1 == {
        "id": "d1", "text": "document 1 about refunds and shipping", "metadata": {"n": "1"}, "payload": "p1",
    }  # fmt: skip
    flt = {"ids": None, "filter": {"field": "n", "condition": {"$in": ["2", "3"]}}}
    filtered = await env.http.post(f"{p}/indexes/faq/docs/get", json=flt, headers=auth)
    assert sorted(d["id"] for d in check("docs_list", filtered.json())["docs"]) == ["d2", "d3"]
    everything = await env.http.post(f"{p}/indexes/faq/docs/get", json={}, headers=auth)
    assert len(check("docs_list", everything.json())["docs"]) == 6
    bare = await env.http.post(f"{p}/indexes/faq/docs/get", json=check("get_docs_request", {"include_embedding": False}), headers=auth)
    assert [set(d) for d in check("docs_list", bare.json())["docs"]] == [set(d) - {"embedding"} for d in everything.json()["docs"]]

    latest = check("manifest", (await env.http.get(f"{p}/indexes/faq/manifest", headers=auth)).json())
    assert latest["version"] == 3
    history = check("version_list", (await env.http.get(f"{p}/indexes/faq/versions", headers=auth)).json())
    assert [(v["version"], v["kept"]) for v in history["versions"]] == [(3, True), (2, True), (1, True)]
    assert {k: history["versions"][0][k] for k in latest} == latest  # the newest is the manifest, plus kept
    version = await env.http.get(f"{p}/indexes/faq/versions/3", headers=auth)
    assert version.status_code == 200 and version.headers["content-type"] == "application/vnd.sqlite3"
    assert hashlib.sha256(version.content).hexdigest() == latest["sha256"]

    gone = await env.http.delete(f"{p}/indexes/faq", headers=auth)
    assert gone.status_code == 204 and gone.content == b""
    missing = await env.http.get(f"{p}/indexes/faq", headers=auth)
    assert missing.status_code == 404 and error_code(missing) == "index_not_found"
    assert check("index_list", (await env.http.get(f"{p}/indexes", headers=auth)).json()) == {"indexes": []}


async def test_transport_round_trip_sends_bodies_in_their_schemas(env: Env, tmp_path: Path) -> None:
    recorder = Recorder(env.asgi)
    transport = env.transport(inner=recorder)
    docs = faq_docs() + [DocumentInfo(id="bare", text="no metadata at all")]
    job = await transport.create_index("faq", docs, MODEL)
    assert env.service.wait_idle(30)
    assert (await transport.get_job(job.job_id)).version == 1
    await transport.add_docs("faq", [DocumentInfo(id="d1", text="replaced", metadata={"n": "one"})], MutationOptions())
    await transport.delete_docs("faq", ["d2"])
    assert env.service.wait_idle(30)

    got = {d.id: dataclasses.replace(d, embedding=None) for d in await transport.get_docs("faq", None, None)}
    assert set(got) == {"d0", "d1", "d3", "d4", "d5", "bare"}
    assert got["d1"] == DocumentInfo(id="d1", text="replaced", metadata={"n": "one"})
    assert got["d0"] == docs[0]
    assert (got["bare"].text, got["bare"].metadata or None, got["bare"].payload) == ("no metadata at all", None, None)
    assert [d.id for d in await transport.get_docs("faq", ["d3"], None)] == ["d3"]
    assert [d.id for d in await transport.get_docs("faq", None, {"field": "n", "condition": {"$eq": "4"}})] == ["d4"]
    with pytest.raises(InvalidFilterError):
        await transport.get_docs("faq", None, {"field": "n"})
    [info] = await transport.list_indexes()
    assert info == await transport.get_index("faq") and info.version == 3
    manifest = await transport.manifest("faq")
    await transport.download("faq", manifest.version, tmp_path / "v.sqlite")
    assert hashlib.sha256((tmp_path / "v.sqlite").read_bytes()).hexdigest() == manifest.sha256
    await transport.delete_index("faq")
    with pytest.raises(IndexNotFoundError):
        await transport.delete_index("faq")
    await transport.aclose()

    checked = 0
    for request in recorder.requests:
        assert request.headers["authorization"] == f"Bearer {env.key_a}"
        schema = REQUEST_SCHEMAS.get((request.method, request.url.path.rsplit("/", 1)[1]))
        if schema:
            check(schema, json.loads(request.content))
            checked += 1
    assert checked == 6  # create, add, delete, and three get_docs (a bad filter is refused before sending)


async def test_a_batch_over_the_request_limit_goes_as_an_upload(env: Env) -> None:
    # ~1.4 KB of JSON a document against the app's 64 KiB limit: several requests, one job.
    recorder = Recorder(env.asgi)
    transport = HTTPTransport(BASE, "proj-a", env.key_a, transport=recorder, max_request_bytes=64 * 1024)
    rng = np.random.default_rng(1)
    docs = [DocumentInfo(id=f"v{i}", text=f"note {i}", embedding=rng.standard_normal(48).tolist()) for i in range(300)]
    result = await transport.create_index("big", iter(docs), "custom")
    assert result == MutationResult(job_id=result.job_id, index_name="big", doc_count=300)
    assert env.service.wait_idle(30)
    assert (await transport.get_index("big")).doc_count == 300
    more = [DocumentInfo(id=f"w{i}", text=f"more {i}", embedding=rng.standard_normal(48).tolist()) for i in range(100)]
    await transport.add_docs("big", more, MutationOptions(upsert=False))
    assert env.service.wait_idle(30)
    assert (await transport.get_index("big")).doc_count == 400
    paths = [(r.method, r.url.path.split("/uploads")[-1].split("/")[-1]) for r in recorder.requests if "/uploads" in r.url.path]
    assert paths.count(("POST", "docs")) >= 6 and paths.count(("POST", "commit")) == 2
    for request in recorder.requests:
        assert len(request.content) <= 64 * 1024
        if request.url.path.endswith("/uploads"):
            check("upload_request", json.loads(request.content))
        elif request.url.path.endswith("/docs") and "/uploads/" in request.url.path:
            check("upload_docs_request", json.loads(request.content))

    # A part the service refuses ends the upload: nothing is created, nothing kept.
    bad = [*docs[:200], DocumentInfo(id="wrong", text="x", embedding=[1.0] * 47)]
    with pytest.raises(DimensionMismatchError):
        await transport.create_index("broken", bad, "custom")
    with pytest.raises(IndexNotFoundError):
        await transport.get_index("broken")
    assert list(env.service.batches.folder.iterdir()) == []
    await transport.aclose()


async def test_upload_routes_answer_in_their_schemas(env: Env) -> None:
    p, auth = "/v1/projects/proj-a", env.auth()
    opened = await env.http.post(f"{p}/uploads", json={"index": "up", "kind": "create_index", "model_id": MODEL}, headers=auth)
    assert opened.status_code == 201
    upload_id = check("upload", opened.json())["upload_id"]
    docs = [mosslite.wire.to_dict(d) for d in faq_docs()]
    added = await env.http.post(f"{p}/uploads/{upload_id}/docs", json={"docs": docs}, headers=auth)
    assert added.status_code == 200 and check("upload", added.json()) == {"upload_id": upload_id, "doc_count": 6}
    other = await env.http.post(f"{p}/uploads/{upload_id}/docs", json={"docs": docs}, headers=env.auth(env.key_b))
    assert other.status_code == 404  # another project's key
    committed = await env.http.post(f"{p}/uploads/{upload_id}/commit", headers=auth)
    assert committed.status_code == 202 and check("mutation_result", committed.json())["doc_count"] == 6
    gone = await env.http.delete(f"{p}/uploads/{upload_id}", headers=auth)
    assert gone.status_code == 404 and error_code(gone) == "not_found"
    bad = await env.http.post(f"{p}/uploads", json={"index": "up", "kind": "delete_docs"}, headers=auth)
    assert bad.status_code == 400
    aborted = await env.http.post(f"{p}/uploads", json={"index": "up2", "kind": "create_index"}, headers=auth)
    assert (await env.http.delete(f"{p}/uploads/{aborted.json()['upload_id']}", headers=auth)).status_code == 204
    assert env.service.wait_idle(30)


# -- versions: ETag, sha256, Range -------------------------------------------------


async def test_version_file_headers(env: Env) -> None:
    manifest = await build(env)
    url = "/v1/projects/proj-a/indexes/faq/versions/1"
    response = await env.http.get(url, headers=env.auth())
    assert response.status_code == 200
    assert response.headers["etag"] == f'"{manifest.sha256}"'
    assert response.headers["x-content-sha256"] == manifest.sha256
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "application/vnd.sqlite3"
    assert int(response.headers["content-length"]) == manifest.size_bytes == len(response.content)
    assert hashlib.sha256(response.content).hexdigest() == manifest.sha256
    assert "content-range" not in response.headers

    head = await env.http.head(url, headers=env.auth())
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == manifest.size_bytes

    missing = await env.http.get("/v1/projects/proj-a/indexes/faq/versions/2", headers=env.auth())
    assert missing.status_code == 404 and error_code(missing) == "index_not_found"


async def test_range_requests_answer_206_with_the_slice(env: Env) -> None:
    manifest = await build(env)
    url, size = "/v1/projects/proj-a/indexes/faq/versions/1", manifest.size_bytes
    whole = (await env.http.get(url, headers=env.auth())).content
    for header, start, end in [
        ("bytes=100-199", 100, 200),
        (f"bytes={size - 10}-", size - 10, size),
        ("bytes=0-", 0, size),
        ("bytes=-25", size - 25, size),
        (f"bytes=5-{size + 1000}", 5, size),  # clipped to the end
    ]:
        response = await env.http.get(url, headers={**env.auth(), "Range": header})
        assert response.status_code == 206, header
        assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
        assert int(response.headers["content-length"]) == end - start
        assert response.content == whole[start:end]
        assert response.headers["x-content-sha256"] == manifest.sha256  # of the whole file
    ignored = await env.http.get(url, headers={**env.auth(), "Range": "pages=1-2"})
    assert ignored.status_code == 200 and ignored.content == whole


UNSATISFIABLE = ["bytes={size}-", "bytes={size}-{more}", "bytes=9-5", "bytes=0-1,5-6", "bytes=-0", "bytes=x-", "bytes=" + "1" * 5000 + "-"]


@pytest.mark.parametrize("header", UNSATISFIABLE)
async def test_unsatisfiable_range_is_416(env: Env, header: str) -> None:
    manifest = await build(env)
    size = manifest.size_bytes
    response = await env.http.get(
        "/v1/projects/proj-a/indexes/faq/versions/1",
        headers={**env.auth(), "Range": header.format(size=size, more=size + 10)},
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"
    assert error_code(response) == "invalid_argument"


async def test_resume_by_appending_gives_the_manifest_sha(env: Env, tmp_path: Path) -> None:
    manifest = await build(env)
    transport = env.transport()
    whole = tmp_path / "whole.sqlite"
    assert await transport.download("faq", 1, whole) == manifest.sha256  # hashed while streaming
    dest = tmp_path / "partial.sqlite"
    cut = manifest.size_bytes // 3
    dest.write_bytes(whole.read_bytes()[:cut])  # an interrupted download
    seen: list[int] = []
    sha256 = await transport.download("faq", 1, dest, offset=cut, progress=seen.append)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == manifest.sha256 == sha256  # the digest continued
    assert seen and seen == sorted(seen) and seen[0] > cut and seen[-1] == manifest.size_bytes
    await transport.aclose()


async def test_a_download_written_in_batches_keeps_every_received_byte(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The body goes to the file through a writer thread, ~WRITE_BATCH_BYTES at a time;
    # a small odd batch size makes a test-sized file take many batches.
    monkeypatch.setattr(download, "WRITE_BATCH_BYTES", 997)
    manifest = await build(env)
    transport = env.transport()
    whole = tmp_path / "whole.sqlite"
    assert await transport.download("faq", 1, whole, progress=None) == manifest.sha256
    assert hashlib.sha256(whole.read_bytes()).hexdigest() == manifest.sha256
    # Pieces of 300 bytes make batches of 1200: cut mid-batch, so a batch is still filling at the drop.
    cut = 1200 * (manifest.size_bytes // 2400) + 450
    dropping = env.transport(inner=DroppingAfter(env.asgi, cut))
    dest = tmp_path / "partial.sqlite"
    with pytest.raises(UnavailableError, match="connection dropped"):
        await dropping.download("faq", 1, dest)
    assert dest.read_bytes() == whole.read_bytes()[:cut]  # all it received, and nothing else
    assert await transport.download("faq", 1, dest, offset=cut) == manifest.sha256
    assert dest.read_bytes() == whole.read_bytes()
    await dropping.aclose()
    await transport.aclose()


async def test_downloads_ask_for_raw_bytes_and_still_decode_a_compressing_proxy(env: Env, tmp_path: Path) -> None:
    manifest = await build(env)
    proxy = Gzipping(env.asgi)
    transport = env.transport(inner=proxy)
    dest = tmp_path / "v.sqlite"
    assert await transport.download("faq", 1, dest) == manifest.sha256
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == manifest.sha256
    assert proxy.asked == ["identity"]
    await transport.aclose()


async def test_resume_of_a_whole_file_fetches_nothing(env: Env, tmp_path: Path) -> None:
    manifest = await build(env)
    transport = env.transport()
    dest = tmp_path / "v.sqlite"
    await transport.download("faq", 1, dest)
    seen: list[int] = []
    sha256 = await transport.download("faq", 1, dest, offset=manifest.size_bytes, progress=seen.append)
    assert seen == [manifest.size_bytes] and sha256 is None  # nothing streamed: the caller hashes the file
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == manifest.sha256
    await transport.aclose()


async def test_download_restarts_when_the_range_is_ignored_or_impossible(env: Env, tmp_path: Path) -> None:
    manifest = await build(env)
    ignoring = env.transport(inner=RangeStripper(env.asgi))
    dest = tmp_path / "v.sqlite"
    dest.write_bytes(b"garbage" * 100)
    await ignoring.download("faq", 1, dest, offset=700)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == manifest.sha256
    await ignoring.aclose()

    transport = env.transport()
    too_long = manifest.size_bytes + 10  # a partial file longer than the version: not a prefix of it
    dest.write_bytes(b"x" * too_long)
    await transport.download("faq", 1, dest, offset=too_long)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == manifest.sha256
    await transport.aclose()


async def test_if_none_match_answers_304(env: Env) -> None:
    manifest = await build(env)
    etag = f'"{manifest.sha256}"'
    for path in ["versions/1", "manifest"]:
        url = f"/v1/projects/proj-a/indexes/faq/{path}"
        cached = await env.http.get(url, headers={**env.auth(), "If-None-Match": etag})
        assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == etag
        stale = await env.http.get(url, headers={**env.auth(), "If-None-Match": '"0000"'})
        assert stale.status_code == 200


# -- authentication and projects ---------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer mk_wrong"])
async def test_missing_or_unknown_key_is_401(env: Env, authorization: str | None) -> None:
    await build(env)
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in [("GET", "indexes"), ("GET", "indexes/faq"), ("GET", "indexes/faq/versions/1"),
                         ("POST", "indexes"), ("DELETE", "indexes/faq")]:  # fmt: skip
        response = await env.http.request(method, f"/v1/projects/proj-a/{path}", headers=headers)
        assert response.status_code == 401, (method, path)
        assert error_code(response) == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    assert [i.name for i in env.service.list_indexes("proj-a")] == ["faq"]


async def test_transport_with_a_wrong_key_raises_unauthorized(env: Env) -> None:
    transport = env.transport(key="mk_not-a-key")
    with pytest.raises(UnauthorizedError) as caught:
        await transport.list_indexes()
    assert caught.value.hint  # the server's hint crossed the wire
    await transport.aclose()


async def test_other_projects_things_are_404_to_a_valid_key(env: Env) -> None:
    job_id_b = env.service.create_index("proj-b", "secret", faq_docs(), MODEL).job_id
    assert env.service.wait_idle(30)
    info_b, manifest_b = env.service.get_index("proj-b", "secret"), env.service.manifest("proj-b", "secret")
    assert info_b.version == 1
    auth_a = env.auth(env.key_a)

    # Project B's path with project A's key: the same answer as a project that does not exist.
    paths = ["indexes", "indexes/secret", "indexes/secret/manifest", "indexes/secret/versions/1", f"jobs/{job_id_b}"]
    for path in paths:
        as_b = await env.http.get(f"/v1/projects/proj-b/{path}", headers=auth_a)
        as_nobody = await env.http.get(f"/v1/projects/proj-zz/{path}", headers=auth_a)
        assert as_b.status_code == as_nobody.status_code == 404, path
        assert error_code(as_b) == error_code(as_nobody) == "not_found"
        assert as_b.text.replace("proj-b", "proj-zz") == as_nobody.text
    posted = await env.http.post("/v1/projects/proj-b/indexes/secret/docs/get", json={}, headers=auth_a)
    assert posted.status_code == 404
    deleted = await env.http.delete("/v1/projects/proj-b/indexes/secret", headers=auth_a)
    assert deleted.status_code == 404

    # Project B's index, job and version named under project A's own path: not found there.
    for path, code in [
        ("indexes/secret", "index_not_found"),
        ("indexes/secret/manifest", "index_not_found"),
        ("indexes/secret/versions/1", "index_not_found"),
        (f"jobs/{job_id_b}", "job_not_found"),
    ]:
        response = await env.http.get(f"/v1/projects/proj-a/{path}", headers=auth_a)
        assert response.status_code == 404 and error_code(response) == code, path
    transport = env.transport()
    with pytest.raises(JobNotFoundError):
        await transport.get_job(job_id_b)
    with pytest.raises(IndexNotFoundError):
        await transport.get_docs("secret", None, None)
    with pytest.raises(NotFoundError):
        await transport.download("secret", 1, Path(os.devnull))
    await transport.aclose()
    assert env.service.get_index("proj-b", "secret") == info_b
    assert env.service.manifest("proj-b", "secret") == manifest_b


async def test_the_public_route_answers_in_its_schema_and_the_manifest_names_the_public_one(tmp_path: Path) -> None:
    service = Service(tmp_path / "data", public_url="https://cdn.example.com/m")
    try:
        key, other = service.create_key("proj-a"), service.create_key("proj-b")
        service.create_index("proj-a", "faq", faq_docs(), MODEL)
        assert service.wait_idle(30)
        asgi = httpx.ASGITransport(app=create_app(service))
        async with httpx.AsyncClient(transport=asgi, base_url=BASE) as http:
            p, auth = "/v1/projects/proj-a/indexes/faq", {"Authorization": f"Bearer {key}"}
            private = check("manifest", (await http.get(f"{p}/manifest", headers=auth)).json())
            assert "public_manifest" not in private
            on = await http.put(f"{p}/public", json=check("public_request", {"public": True}), headers=auth)
            url = "https://cdn.example.com/m/_public/proj-a/faq/manifest.json"
            assert on.status_code == 200 and check("index_info", on.json())["public_manifest"] == url
            answer = await http.get(f"{p}/manifest", headers=auth)
            assert check("manifest", answer.json())["public_manifest"] == url
            assert answer.headers["etag"] == f'"{private["sha256"]}.public"'
            for body in ({"public": 1}, {"public": None}, {}, {"public": True, "more": 1}, []):
                refused = await http.put(f"{p}/public", json=body, headers=auth)
                assert refused.status_code == 400, body
            theirs = await http.put(f"{p}/public", json={"public": False}, headers={"Authorization": f"Bearer {other}"})
            assert theirs.status_code == 404 and service.get_index("proj-a", "faq").public
            off = check("index_info", (await http.put(f"{p}/public", json={"public": False}, headers=auth)).json())
            assert (off["public"], off["public_manifest"]) == (False, None)
            assert "public_manifest" not in (await http.get(f"{p}/manifest", headers=auth)).json()
    finally:
        service.close()


# -- request bodies ----------------------------------------------------------------


async def test_body_over_the_limit_is_413(env: Env) -> None:
    url, auth = "/v1/projects/proj-a/indexes", env.auth()
    big = json.dumps({"name": "big", "docs": [{"id": "a", "text": "x" * 70_000}], "model_id": MODEL}).encode()

    declared = await env.http.post(url, content=big, headers={**auth, "Content-Type": "application/json"})
    assert declared.status_code == 413 and error_code(declared) == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    chunked = await env.http.post(url, content=chunks(), headers=auth)  # no Content-Length at all
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413 and error_code(chunked) == "payload_too_large"

    lying = await env.http.post(url, content=big, headers={**auth, "Content-Length": "100"})
    assert lying.request.headers["content-length"] == "100"
    assert lying.status_code == 413 and error_code(lying) == "payload_too_large"

    assert env.service.list_indexes("proj-a") == []


async def test_body_under_the_limit_is_read(env: Env) -> None:
    body = {"name": "small", "docs": [{"id": "a", "text": "y" * 50_000}], "model_id": MODEL}
    response = await env.http.post("/v1/projects/proj-a/indexes", json=body, headers=env.auth())
    assert response.status_code == 202


def test_default_limit_is_max_request_bytes() -> None:
    import inspect

    limit = inspect.signature(create_app).parameters["max_request_bytes"].default
    assert limit == mosslite.types.MAX_REQUEST_BYTES


BAD_BODIES = [
    ("indexes", b'{"name": "faq", "docs": [', "invalid_argument"),
    ("indexes", b"\xff\xfe not utf-8", "invalid_argument"),
    ("indexes", b"", "invalid_argument"),
    ("indexes", b'[{"name": "faq"}]', "invalid_argument"),
    ("indexes", b"[" * 30_000 + b"]" * 30_000, "invalid_argument"),  # nested past the parser's depth
    ("indexes", b'{"name": "faq", "docs": [], "colour": "red"}', "invalid_argument"),
    ("indexes", b'{"docs": []}', "invalid_argument"),
    ("indexes", b'{"name": "faq", "docs": [], "model_id": 5}', "invalid_argument"),
    ("indexes", b'{"name": "faq", "docs": [{"id": "a", "text": "t", "colour": "red"}]}', "invalid_argument"),
    ("indexes", b'{"name": "faq", "docs": [{"id": "a"}]}', "invalid_argument"),
    ("indexes", b'{"name": "faq", "docs": [{"id": "a", "text": 7}]}', "invalid_document"),
    ("indexes", b'{"name": "faq", "docs": [{"id": "a", "text": "t", "metadata": {"k": 1}}]}', "invalid_document"),
    ("indexes", b'{"name": "faq", "docs": {"id": "a"}}', "invalid_document"),
    ("indexes", b'{"name": 42, "docs": []}', "invalid_name"),
    ("indexes/faq/docs", b'{"docs": [{"id": "z", "text": "t"}], "options": {"upsert": "yes"}}', "invalid_argument"),
    ("indexes/faq/docs", b'{"docs": [{"id": "z", "text": "t"}], "options": {"merge": true}}', "invalid_argument"),
    ("indexes/faq/docs", b'{"docs": [{"id": "z", "text": "t"}], "upsert": true}', "invalid_argument"),
    ("indexes/faq/docs/delete", b'{"ids": "d1"}', "invalid_argument"),
    ("indexes/faq/docs/delete", b'{"ids": null}', "invalid_argument"),
    ("indexes/faq/docs/delete", b'{"ids": [1, 2]}', "invalid_argument"),
    ("indexes/faq/docs/delete", b'{"ids": []}', "invalid_argument"),
    ("indexes/faq/docs/get", b'{"ids": "d1"}', "invalid_argument"),
    ("indexes/faq/docs/get", b'{"filter": [1]}', "invalid_argument"),
    ("indexes/faq/docs/get", b'{"filter": {"field": "n", "condition": {"$regex": "x"}}}', "invalid_filter"),
    ("indexes/faq/docs/get", b'{"where": {}}', "invalid_argument"),
    ("indexes/faq/docs/get", b'{"include_embedding": "no"}', "invalid_argument"),
]


@pytest.mark.parametrize(("path", "body", "code"), BAD_BODIES)
async def test_malformed_or_unknown_body_is_400(env: Env, path: str, body: bytes, code: str) -> None:
    await build(env)
    before = env.service.get_index("proj-a", "faq")
    response = await env.http.post(
        f"/v1/projects/proj-a/{path}", content=body, headers={**env.auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == code
    assert env.service.wait_idle(30)
    assert [i.name for i in env.service.list_indexes("proj-a")] == ["faq"]
    assert env.service.get_index("proj-a", "faq") == before


# -- hostile numbers (issue #8): a typed 4xx before any work, never a 500 ----------------

HUGE = "1" * 5000  # past the 4,300 digits Python's int() converts: it raises ValueError

HOSTILE_JSON = [
    ("indexes", '{"name": "faq", "docs": [], "model_id": %s}' % HUGE),
    ("indexes", '{"name": "faq", "docs": [{"id": "a", "text": "t", "embedding": [%s]}]}' % HUGE),
    ("indexes", '{"name": "faq", "docs": [{"id": "a", "text": "t", "embedding": [-%s]}]}' % HUGE),
    ("indexes", '{"name": "faq", "docs": [{"id": "a", "text": "t", "metadata": {"k": %s}}]}' % HUGE),
    ("indexes/faq/docs", '{"docs": [{"id": "a", "text": "t"}], "options": {"upsert": %s}}' % HUGE),
    ("indexes/faq/docs/delete", '{"ids": [%s]}' % HUGE),
    ("indexes/faq/docs/get", '{"filter": {"field": "n", "condition": {"$eq": %s}}}' % HUGE),
    ("indexes/faq/push", '{"diff_id": "diff-12345678", "changeset": "AA==", "dimension": %s}' % HUGE),
    ("indexes/faq/push", '{"diff_id": "diff-12345678", "changeset": "AA==", "dimension": 99999999999999999999}'),
    ("uploads", '{"index": "faq", "kind": "add_docs", "model_id": %s}' % HUGE),
    # Not JSON at all, though Python's parser takes them:
    ("indexes", '{"name": "faq", "docs": [{"id": "a", "text": "t", "embedding": [NaN]}]}'),
    ("indexes", '{"name": "faq", "docs": [{"id": "a", "text": "t", "embedding": [Infinity, 1]}]}'),
    ("indexes", '{"name": "faq", "docs": [{"id": "a", "text": "t", "embedding": [-Infinity, 1]}]}'),
    ("indexes/faq/docs/get", '{"filter": {"field": "n", "condition": {"$gt": NaN}}}'),
]


@pytest.mark.parametrize(("path", "body"), HOSTILE_JSON, ids=lambda v: v[:60])
async def test_hostile_json_numbers_are_400(env: Env, path: str, body: str) -> None:
    response = await env.http.post(
        f"/v1/projects/proj-a/{path}", content=body.encode(), headers={**env.auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == "invalid_argument"  # refused while parsing, before the body is looked at
    assert len(response.text) < 1000  # the number is not echoed whole
    assert env.service.wait_idle(30)
    assert env.service.list_indexes("proj-a") == []


async def test_a_float_past_a_double_is_an_invalid_document(env: Env) -> None:
    body = b'{"name": "faq", "docs": [{"id": "a", "text": "t", "embedding": [1e400, 1]}]}'  # inf, to json.loads
    response = await env.http.post("/v1/projects/proj-a/indexes", content=body, headers=env.auth())
    assert response.status_code == 400 and error_code(response) == "invalid_document"


HOSTILE_VERSIONS = [
    f"versions/{HUGE}",
    f"versions/{HUGE}/patch?from=1",
    f"versions/1/patch?from={HUGE}",
    "versions/1/patch?from=%C2%B2",  # '²': str.isdigit() says yes, int() says no
    "versions/%C2%B2",
    "versions/%C2%B2/patch?from=1",
    "versions/%D9%A3",  # an Arabic-Indic 3: int() would take it; a version is ASCII digits
    "versions/1/patch?from=%D9%A3",
    "versions/12345678901",  # 11 digits: more than a version holds
    "versions/1/patch?from=12345678901",
    "versions/-1",
    "versions/1/patch?from=-1",
    "versions/1/patch?from=%201",
    "versions/1/patch?from=",
    "versions/1/patch",
    "versions/one",
]


@pytest.mark.parametrize("path", HOSTILE_VERSIONS, ids=lambda v: v[:60])
async def test_hostile_version_numbers_are_400(env: Env, path: str) -> None:
    await build(env)
    url = f"/v1/projects/proj-a/indexes/faq/{path}"
    response = await env.http.get(url, headers=env.auth())
    assert response.status_code == 400, response.text
    assert error_code(response) == "invalid_argument"
    assert len(response.text) < 1000
    if "/patch" not in path:
        assert (await env.http.head(url, headers=env.auth())).status_code == 400


@pytest.mark.parametrize(
    ("declared", "status", "code"),
    [
        ("²".encode("latin-1"), 400, "invalid_argument"),
        (b"1" * 5000, 413, "payload_too_large"),
        (b"99999999999999999999999999", 413, "payload_too_large"),
        (b"-2", 400, "invalid_argument"),
        (b"0x10", 400, "invalid_argument"),
    ],
    ids=lambda v: repr(v)[:30],
)
async def test_bad_content_length_is_refused_before_reading(env: Env, declared: bytes, status: int, code: str) -> None:
    headers = [(b"Authorization", f"Bearer {env.key_a}".encode()), (b"Content-Length", declared)]
    response = await env.http.post("/v1/projects/proj-a/indexes", content=b"{}", headers=headers)
    assert response.status_code == status, response.text
    assert error_code(response) == code


async def test_conflict_is_409(env: Env) -> None:
    await build(env)
    transport = env.transport()
    with pytest.raises(ConflictError) as caught:
        await transport.add_docs("faq", [DocumentInfo(id="d1", text="again")], MutationOptions(upsert=False))
    assert "upsert" in (caught.value.hint or "")
    response = await env.http.post(
        "/v1/projects/proj-a/indexes", json={"name": "faq", "docs": [], "model_id": MODEL}, headers=env.auth()
    )
    assert response.status_code == 409 and error_code(response) == "conflict"
    await transport.aclose()


BAD_NAMES = ["..", "../escape", "a/b", "/abs", "a..b", ".hidden", "a\x00b", "a\nb", "tab\tname", "", "x" * 200, "é"]


async def test_bad_index_names_are_400_and_create_nothing(env: Env) -> None:
    before = env.files()
    for name in BAD_NAMES:
        body = {"name": name, "docs": [{"id": "a", "text": "t"}], "model_id": MODEL}
        response = await env.http.post("/v1/projects/proj-a/indexes", json=body, headers=env.auth())
        assert response.status_code == 400, name
        assert error_code(response) == "invalid_name"
    # In the path: anything that reaches the {name} segment is refused by name; an
    # escaped "/" makes the path match no route.
    raw_names = [("%2E%2E", 400), ("a%2E%2Eb", 400), ("a%01b", 400), ("a%0Ab", 400), ("a%2Fb", 404), ("a%2F..%2Fb", 404)]
    for raw, status in raw_names:
        for method, suffix in [("GET", ""), ("DELETE", ""), ("GET", "/manifest"), ("GET", "/versions/1")]:
            response = await env.http.request(method, f"/v1/projects/proj-a/indexes/{raw}{suffix}", headers=env.auth())
            assert response.status_code == status, (raw, method, suffix)
            check("error", response.json())
        body = {"docs": [{"id": "a", "text": "t"}]}
        posted = await env.http.post(f"/v1/projects/proj-a/indexes/{raw}/docs", json=body, headers=env.auth())
        assert posted.status_code == status, raw
    assert env.service.wait_idle(30)
    assert env.service.list_indexes("proj-a") == []
    assert env.files() == before

    transport = env.transport()
    for name in BAD_NAMES:
        with pytest.raises(InvalidNameError):
            await transport.create_index(name, faq_docs(1), MODEL)
        with pytest.raises(InvalidNameError):
            await transport.get_index(name)
    await transport.aclose()
    assert env.files() == before


# -- failures ----------------------------------------------------------------------


async def test_unexpected_error_is_500_internal_and_logged(
    env: Env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(project_id: str) -> list:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(env.service, "list_indexes", broken)
    with caplog.at_level(logging.ERROR, logger="mosslite"):
        response = await env.http.get("/v1/projects/proj-a/indexes", headers=env.auth())
    assert response.status_code == 500 and error_code(response) == "internal"
    assert "secret detail" not in response.text
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records)


async def test_unknown_route_and_method_answer_in_the_error_shape(env: Env) -> None:
    nowhere = await env.http.get("/v1/nowhere")
    assert nowhere.status_code == 404 and error_code(nowhere) == "not_found"
    wrong = await env.http.put("/v1/projects/proj-a/indexes", headers=env.auth())
    assert wrong.status_code == 405 and error_code(wrong) == "method_not_allowed"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_transport_maps_connection_failures_to_unavailable() -> None:
    transport = HTTPTransport(f"http://127.0.0.1:{free_port()}", "p", "k", timeout_s=2)
    with pytest.raises(UnavailableError) as caught:
        await transport.list_indexes()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    await transport.aclose()

    def timing_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    transport = HTTPTransport(BASE, "p", "k", transport=httpx.MockTransport(timing_out))
    with pytest.raises(TimeoutError_) as timed_out:
        await transport.get_index("faq")
    assert isinstance(timed_out.value, UnavailableError) and isinstance(timed_out.value.__cause__, httpx.ReadTimeout)
    await transport.aclose()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (502, b"<html>bad gateway</html>", UnavailableError),
        (404, b"not json", NotFoundError),
        (401, b"", UnauthorizedError),
        (404, json.dumps({"error": {"code": "job_not_found", "message": "m"}}).encode(), JobNotFoundError),
    ],
)
async def test_transport_rebuilds_error_bodies(status: int, body: bytes, expected: type) -> None:
    answer = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    transport = HTTPTransport(BASE, "p", "k", transport=answer)
    with pytest.raises(expected) as caught:
        await transport.get_job("j")
    assert type(caught.value) is expected
    await transport.aclose()


async def test_closed_transport_raises_closed_error(env: Env) -> None:
    transport = env.transport()
    await transport.aclose()
    with pytest.raises(ClosedError):
        await transport.list_indexes()
    with pytest.raises(ClosedError):
        await transport.download("faq", 1, Path(os.devnull))


# -- a real server -----------------------------------------------------------------


def wait_for_port(process: subprocess.Popen, port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mosslite serve exited early: {process.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("mosslite serve did not listen in time")


def read_line(stream: Any, timeout_s: float = 10.0) -> str:
    ready, _, _ = select.select([stream], [], [], timeout_s)
    assert ready, "no line on stdout"
    return stream.readline().decode()


async def test_real_server_round_trip(tmp_path: Path) -> None:
    data, port = tmp_path / "srv", free_port()
    mosslite_cmd = [sys.executable, "-m", "mosslite"]
    made = subprocess.run(
        [*mosslite_cmd, "keys", "create", "--project", "proj-a"],
        env={**os.environ, "MOSSLITE_DATA": str(data)},
        capture_output=True,
        check=True,
        timeout=60,
    )
    key = made.stdout.decode().strip()
    assert key.startswith("mk_") and "\n" not in key
    listed = subprocess.run(
        [*mosslite_cmd, "keys", "list", "--project", "proj-a", "--data", str(data)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    key_id = made.stderr.decode().split()[2]  # "key id <8 hex> ..."
    assert listed.stdout.decode().startswith(key_id) and key[:6] not in listed.stdout.decode()

    server = subprocess.Popen(
        [*mosslite_cmd, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(server, port)
        url = f"http://127.0.0.1:{port}"
        assert read_line(server.stdout) == f"mosslite serving {url} (data: {data})\n"
        transport = HTTPTransport(url, "proj-a", key)
        job = await transport.create_index("faq", faq_docs(), MODEL)
        deadline = time.monotonic() + 30
        while not (status := await transport.get_job(job.job_id)).done:
            assert time.monotonic() < deadline
            await anyio.sleep(0.05)
        assert status.status == "completed"
        info = await transport.get_index("faq")
        assert (info.version, info.doc_count, info.model) == (1, 6, MODEL)
        assert [d.id for d in await transport.get_docs("faq", ["d2"], None)] == ["d2"]
        manifest = await transport.manifest("faq")
        dest = tmp_path / "v.sqlite"
        await transport.download("faq", 1, dest)
        assert hashlib.sha256(dest.read_bytes()).hexdigest() == manifest.sha256
        with pytest.raises(UnauthorizedError):
            await HTTPTransport(url, "proj-a", "mk_wrong").list_indexes()
        await transport.aclose()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode == 0, server.stderr.read().decode()


# -- the hostile re-run (issue #8) --------------------------------------------------------

HOSTILE_BODIES = [
    # A lone surrogate is refused with an error that quotes it: rendering that error as
    # UTF-8 raised inside the boundary (a plain-text 500).
    ("indexes", {"name": "faq", "docs": [{"id": "\udc00", "text": "t"}], "model_id": MODEL}, "invalid_document"),
    ("indexes", {"name": "\ud800", "docs": [{"id": "a", "text": "t"}], "model_id": MODEL}, "invalid_name"),
    ("uploads", {"index": "\ud800", "kind": "create_index"}, "invalid_name"),
    # An empty model id was taken as the default model.
    ("indexes", {"name": "faq", "docs": [{"id": "a", "text": "t"}], "model_id": ""}, "model_not_found"),
    ("uploads", {"index": "faq", "kind": "create_index", "model_id": ""}, "model_not_found"),
]


@pytest.mark.parametrize(("path", "body", "code"), HOSTILE_BODIES, ids=lambda v: str(v)[:50])
async def test_hostile_bodies_get_a_json_error(env: Env, path: str, body: dict[str, Any], code: str) -> None:
    sent = json.dumps(body).encode()  # (escaped: "\\ud800", as any client would send it)
    response = await env.http.post(f"/v1/projects/proj-a/{path}", content=sent, headers=env.auth())
    assert response.status_code in (400, 404), response.text
    assert error_code(response) == code
    check("error", response.json())
    assert env.service.list_indexes("proj-a") == []


async def test_a_cursor_past_int64_is_a_400(env: Env) -> None:
    await build(env)
    first = await env.http.post("/v1/projects/proj-a/indexes/faq/docs/get", json={"limit": 1}, headers=env.auth())
    version, _, digest = first.json()["next_cursor"].split(".")
    for after in ("9" * 19, "9223372036854775808", "\u0661"):
        cursor = f"{version}.{after}.{digest}"
        response = await env.http.post(
            "/v1/projects/proj-a/indexes/faq/docs/get", json={"limit": 1, "cursor": cursor}, headers=env.auth()
        )
        assert response.status_code == 400 and "cursor" in response.json()["error"]["message"], response.text
