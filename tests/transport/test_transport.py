"""The Transport contract (mosslite/transport/base.py), run over both of its ends: the
in-process LocalTransport on a real Service, and HTTPTransport to a real
``mosslite serve`` on loopback. Every test asks the same of both: callers never
learn which transport they hold."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mosslite import DocumentInfo
from mosslite.errors import ConflictError, IndexNotFoundError, JobNotFoundError, NotFoundError
from mosslite.service import Service
from mosslite.transport.base import Transport
from mosslite.transport.http import HTTPTransport
from mosslite.transport.local import LocalTransport
from mosslite.types import JobStatus, MutationOptions

from ..client.conftest import Server
from ..test_changeset import GOOD, diff_of

pytestmark = pytest.mark.anyio

MODEL = "hashed-ngrams-256"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["local", "http"])
async def transport(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Transport]:
    project = "p-" + secrets.token_hex(4)
    if request.param == "local":
        service = Service(tmp_path / "service")
        local = LocalTransport(service, project, "k-" + project)
        yield local
        await local.aclose()
        service.close()
        return
    server: Server = request.getfixturevalue("server")
    http = HTTPTransport(server.url, project, server.new_key(project))
    yield http
    await http.aclose()


def docs(*ids: str) -> list[DocumentInfo]:
    return [DocumentInfo(id=i, text=f"document {i} about refunds", metadata={"n": i}) for i in ids]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def created(transport: Transport, name: str, *ids: str) -> None:
    sent = await transport.create_index(name, docs(*ids), MODEL)
    assert sent.doc_count == len(ids)
    job = await transport.wait_for_job(sent.job_id, 0.01, 60)
    assert job.status == JobStatus.COMPLETED


async def test_a_created_index_is_listed_published_and_downloadable(transport: Transport, tmp_path: Path) -> None:
    await created(transport, "faq", "a", "b", "c")
    info = await transport.get_index("faq")
    assert (info.name, info.version, info.doc_count, info.model) == ("faq", 1, 3, MODEL)
    assert [i.name for i in await transport.list_indexes()] == ["faq"]
    manifest = await transport.manifest("faq")
    assert (manifest.version, manifest.doc_count) == (1, 3)
    seen: list[int] = []
    dest = tmp_path / "v1.sqlite"
    digest = await transport.download("faq", 1, dest, progress=seen.append)
    assert sha256(dest) == manifest.sha256 and digest in (None, manifest.sha256)
    assert dest.stat().st_size == manifest.size_bytes and seen[-1] == manifest.size_bytes


async def test_a_download_resumes_from_where_a_partial_file_ends(transport: Transport, tmp_path: Path) -> None:
    await created(transport, "faq", "a", "b")
    manifest = await transport.manifest("faq")
    whole = tmp_path / "whole.sqlite"
    await transport.download("faq", 1, whole)
    partial = tmp_path / "partial.sqlite"
    partial.write_bytes(whole.read_bytes()[: manifest.size_bytes // 2])
    digest = await transport.download("faq", 1, partial, offset=manifest.size_bytes // 2)
    assert sha256(partial) == manifest.sha256 and digest in (None, manifest.sha256)


async def test_mutations_publish_versions_in_order(transport: Transport) -> None:
    await created(transport, "faq", "a", "b")
    added = await transport.add_docs("faq", docs("c"), MutationOptions(upsert=True))
    await transport.wait_for_job(added.job_id, 0.01, 60)
    deleted = await transport.delete_docs("faq", ["a"])
    await transport.wait_for_job(deleted.job_id, 0.01, 60)
    assert (await transport.manifest("faq")).version == 3
    assert sorted(d.id for d in await transport.get_docs("faq", None, None, False)) == ["b", "c"]


async def test_get_docs_walks_every_page(transport: Transport) -> None:
    await created(transport, "faq", *"abcde")
    first = await transport.get_docs_page("faq", None, None, False, limit=2)
    assert len(first.docs) == 2 and first.next_cursor is not None
    everything = await transport.get_docs("faq", None, None, include_embedding=False)
    assert sorted(d.id for d in everything) == list("abcde") and all(d.embedding is None for d in everything)
    [picked] = await transport.get_docs("faq", ["c", "missing"], None)
    assert picked.id == "c" and picked.embedding is not None


async def test_what_is_missing_is_the_same_typed_error(transport: Transport, tmp_path: Path) -> None:
    for missing in (
        transport.get_index("nosuch"),
        transport.manifest("nosuch"),
        transport.delete_index("nosuch"),
        transport.set_public("nosuch", False),
    ):
        with pytest.raises(IndexNotFoundError):
            await missing
    with pytest.raises(JobNotFoundError):
        await transport.get_job("job_nosuch")
    with pytest.raises(NotFoundError):
        await transport.get_push("nosuch", "diff_unknown_123")
    await created(transport, "faq", "a")
    await transport.delete_index("faq")
    with pytest.raises(IndexNotFoundError):
        await transport.download("faq", 1, tmp_path / "gone.sqlite")


async def test_public_read_mode_needs_a_public_url_and_private_is_always_possible(transport: Transport) -> None:
    await created(transport, "faq", "a")
    with pytest.raises(ConflictError, match="no public URL"):  # neither service here has one
        await transport.set_public("faq", True)
    info = await transport.set_public("faq", False)
    assert (info.name, info.public, info.public_manifest) == ("faq", False, None)
    assert await transport.get_index("faq") == info


async def test_a_push_is_idempotent_by_its_diff_id(transport: Transport) -> None:
    changeset = diff_of(GOOD)
    first = await transport.push("notes", "diff_12345678", changeset, "custom", 4)
    again = await transport.push("notes", "diff_12345678", changeset, "custom", 4)
    assert again.job_id == first.job_id and first.doc_count == 1
    await transport.wait_for_job(first.job_id, 0.01, 60)
    result = await transport.get_push("notes", "diff_12345678")
    assert (result.job_id, result.overwritten) == (first.job_id, 0)
    assert [d.id for d in await transport.get_docs("notes", None, None)] == ["good"]


async def test_list_versions_gives_every_published_version_newest_first(transport: Transport) -> None:
    await created(transport, "faq", "a")
    for doc_id in "bcde":
        added = await transport.add_docs("faq", docs(doc_id), MutationOptions(upsert=True))
        await transport.wait_for_job(added.job_id, 0.01, 60)
    versions = await transport.list_versions("faq")
    assert [(v.version, v.doc_count) for v in versions] == [(5, 5), (4, 4), (3, 3), (2, 2), (1, 1)]
    manifest = await transport.manifest("faq")
    newest = versions[0]
    assert (newest.sha256, newest.size_bytes, newest.created_at, newest.model_id) == (
        manifest.sha256, manifest.size_bytes, manifest.created_at, MODEL,
    )  # fmt: skip
    assert all(v.size_bytes > 0 and v.index_name == "faq" for v in versions)
    # The service keeps the newest 3 files (DEFAULT_KEEP_VERSIONS); job 4 pruned version 1
    # before job 5 ran (one index's jobs run in order). Version 2 goes once job 5 prunes.
    assert [v.kept for v in versions[:3]] == [True, True, True] and not versions[4].kept
    with pytest.raises(IndexNotFoundError):
        await transport.list_versions("nosuch")
