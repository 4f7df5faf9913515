"""A session's pull goes through the client's cache (session/exchange.py, issue #9): a
version this process loaded, or any the cache holds, is not downloaded again; a newer
one is patched from the cached one; and the file a loaded index serves stays.

Downloads are counted by CopyingTransport (tests/cache/conftest.py): the in-process
transport over a real embedded service, its downloads copying bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mosslite import MossClient, QueryOptions
from mosslite.service import Service

from ..cache.conftest import MODEL, PROJECT, CopyingTransport, docs, versions_in

pytestmark = pytest.mark.anyio


@pytest.fixture
def service(tmp_path: Path):
    svc = Service(tmp_path / "svc")
    yield svc
    svc.close()


@pytest.fixture
async def client(service: Service, tmp_path: Path) -> AsyncIterator[MossClient]:
    client = MossClient(PROJECT, "k", cache_path=tmp_path / "home", transport=CopyingTransport(service))
    yield client
    await client.close()


async def publish(client: MossClient, start: int, count: int, *, create: bool = False) -> None:
    if create:
        job = await client.create_index("faq", docs(start, count), model_id=MODEL)
    else:
        job = await client.add_docs("faq", docs(start, count))
    await client.wait_for_job(job.job_id, poll_interval_seconds=0.01)


def counted(client: MossClient) -> CopyingTransport:
    transport = client.transport
    assert isinstance(transport, CopyingTransport)
    return transport


async def test_a_session_on_an_index_this_process_loaded_downloads_nothing(client: MossClient) -> None:
    await publish(client, 0, 50, create=True)
    await client.load_index("faq")
    assert counted(client).downloads == [(1, 0)]
    session = await client.session("faq")
    assert counted(client).downloads == [(1, 0)]  # the loaded version's file, linked from the cache
    assert session.base_version == 1 and session.doc_count == 50
    options = QueryOptions(top_k=3, alpha=0.5)
    assert [d.id for d in (await session.query("note 7 routers", options)).docs] == [
        d.id for d in (await client.query("faq", "note 7 routers", options)).docs
    ]
    assert not session.path.with_name("faq.base.sqlite").exists()  # its own link, gone after
    await session.close()


async def test_an_index_a_session_fetched_loads_from_the_cache(client: MossClient) -> None:
    await publish(client, 0, 50, create=True)
    session = await client.session("faq")
    info = await client.load_index("faq")
    assert counted(client).downloads == [(1, 0)]  # once, by the session
    assert info.version == 1 and Path(info.path).parent == client.cache_dir / "faq"
    await session.close()


async def test_a_session_load_patches_from_the_cached_version(client: MossClient) -> None:
    await publish(client, 0, 400, create=True)
    session = await client.session("faq")
    await publish(client, 400, 3)  # another agent's change: version 2
    assert await session.load() == 2 and session.doc_count == 403
    assert counted(client).downloads == [(1, 0)] and counted(client).patches == [(2, 1)]
    assert versions_in(client.cache_dir / "faq") == [2]  # the cache keeps the newest, as a load does
    await session.close()


async def test_the_file_a_loaded_index_serves_stays_when_a_session_fetches_a_newer_one(client: MossClient) -> None:
    await publish(client, 0, 50, create=True)
    loaded = Path((await client.load_index("faq")).path)
    await publish(client, 50, 5)
    session = await client.session("faq")
    assert session.base_version == 2
    assert loaded.exists() and versions_in(client.cache_dir / "faq") == [2, 1]  # v1 still serves
    assert client.get_loaded_version("faq") == 1 and (await client.query("faq", "note 3")).docs[0].id == "d3"
    downloads = list(counted(client).downloads)
    assert (await client.load_index("faq")).version == 2  # the session's version, from the cache
    assert counted(client).downloads == downloads
    await session.close()
