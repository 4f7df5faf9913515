"""Refresh by page patch, against a real `mosslite serve`: only the changed pages
cross the wire, the installed file is the published one byte for byte, and a
wrong patch falls back to downloading the whole version (issue #4)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import numpy as np
import pytest

from mosslite import DocumentInfo, QueryOptions, SyncMossClient
from mosslite.client.embedded import close_embedded_services
from mosslite.transport.local import LocalTransport
from mosslite.errors import IndexNotFoundError
from mosslite.index.page_patch import PageMap
from mosslite.service import Service

from ..client.conftest import Server, free_port
from .conftest import BOTH_STORAGES
from .conftest import stored as stored_bytes

MODEL = "hashed-ngrams-256"


def docs(start: int, count: int) -> list[DocumentInfo]:
    return [DocumentInfo(id=f"d{i}", text=f"note {i} on routers, printers and cables " * 8) for i in range(start, start + count)]


def client_of(server: Server, home: Path, key: str) -> SyncMossClient:
    return SyncMossClient("p", key, url=server.url, cache_path=home)


def add(client: SyncMossClient, start: int, count: int) -> None:
    client.wait_for_job(client.add_docs("faq", docs(start, count)).job_id, poll_interval_seconds=0.01)


def stored(server: Server, version: int) -> bytes:
    return stored_bytes(server, "faq", version)


def page_map(data: bytes) -> PageMap:
    return PageMap.of_chunks([data])


@BOTH_STORAGES
def test_refresh_fetches_only_the_changed_pages(server: Server, tmp_path: Path) -> None:
    with client_of(server, tmp_path / "home", server.new_key("p")) as client:
        client.wait_for_job(client.create_index("faq", docs(0, 400), model_id=MODEL).job_id, poll_interval_seconds=0.01)
        client.load_index("faq")
        swaps = []
        client.on_swap(swaps.append)
        add(client, 400, 3)
        info = client.load_index("faq")
        size = len(stored(server, 2))
        assert [(s.old_version, s.new_version, s.patched_from) for s in swaps] == [(1, 2, 1)]
        assert 0 < swaps[0].downloaded_bytes < size // 5
        assert Path(info.path).read_bytes() == stored(server, 2)
        assert [d.id for d in client.query("faq", "note 402", QueryOptions(top_k=1, alpha=0.0)).docs] == ["d402"]


@BOTH_STORAGES
def test_a_restarted_client_patches_from_its_cached_version(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key, home = server.new_key("p"), tmp_path / "home"
    with client_of(server, home, key) as client:
        client.wait_for_job(client.create_index("faq", docs(0, 400), model_id=MODEL).job_id, poll_interval_seconds=0.01)
        client.load_index("faq")
        add(client, 400, 2)
        add(client, 402, 2)
    with caplog.at_level(logging.INFO, logger="mosslite.sync"), client_of(server, home, key) as restarted:
        info = restarted.load_index("faq")  # v1 cached, v3 published
        assert info.version == 3 and Path(info.path).read_bytes() == stored(server, 3)
    assert any("v3 (patch from v1" in r.getMessage() for r in caplog.records)


@BOTH_STORAGES
def test_a_wrong_patch_falls_back_to_the_whole_version(server: Server, tmp_path: Path) -> None:
    with client_of(server, tmp_path / "home", server.new_key("p")) as client:
        client.wait_for_job(client.create_index("faq", docs(0, 400), model_id=MODEL).job_id, poll_interval_seconds=0.01)
        client.load_index("faq")
        add(client, 400, 3)
        # The stored map of v2 lies: it claims v2 kept every page of v1 (its sha256 still
        # names v2, so the service, or a client reading it by link, trusts it): the patch
        # carries only the pages v1 lacks, and the file it makes is not v2.
        lying, v1 = page_map(stored(server, 2)), page_map(stored(server, 1))
        shared = min(lying.page_count, v1.page_count)
        digests = np.concatenate([v1.digests[:shared], lying.digests[shared:]])
        lying = PageMap(lying.sha256, lying.page_size, lying.size_bytes, digests)
        server.storage().put_bytes("p/faq/0000000002.sqlite.pages", lying.to_bytes())
        server.storage().delete("p/faq/0000000002.sqlite.from-1.patch")  # (made at publish, right: by link, the map is read)
        swaps = []
        client.on_swap(swaps.append)
        info = client.load_index("faq")
        assert [(s.new_version, s.patched_from, s.downloaded_bytes) for s in swaps] == [(2, None, len(stored(server, 2)))]
        assert Path(info.path).read_bytes() == stored(server, 2)
        assert sorted(p.name for p in Path(info.path).parent.iterdir()) == [".lock", Path(info.path).name]


def test_embedded_refresh_links_the_whole_file(tmp_path: Path) -> None:
    with SyncMossClient("p", "k", cache_path=tmp_path / "home") as client:
        client.wait_for_job(client.create_index("faq", docs(0, 50), model_id=MODEL).job_id, poll_interval_seconds=0.01)
        client.load_index("faq")
        swaps = []
        client.on_swap(swaps.append)
        add(client, 50, 1)
        client.load_index("faq")
        assert [s.patched_from for s in swaps] == [None]  # a hard link costs less than any patch
    close_embedded_services()


def test_page_maps_of_consecutive_versions_share_most_pages(server: Server, tmp_path: Path) -> None:
    with client_of(server, tmp_path / "home", server.new_key("p")) as client:
        client.wait_for_job(client.create_index("faq", docs(0, 400), model_id=MODEL).job_id, poll_interval_seconds=0.01)
        add(client, 400, 1)
    old, new = page_map(stored(server, 1)), page_map(stored(server, 2))
    assert len(new.changed_since(old)) < new.page_count // 10
    assert np.array_equal(new.changed_since(new), [])


def test_a_version_deleted_before_its_download_gives_way_to_the_newest(tmp_path: Path) -> None:
    server = Server(data=tmp_path / "srv", port=free_port())
    server.start(args=("--keep-versions", "1"))
    try:
        with client_of(server, tmp_path / "home", server.new_key("p")) as client:
            client.wait_for_job(client.create_index("faq", docs(0, 50), model_id=MODEL).job_id, poll_interval_seconds=0.01)
            transport = client.async_client.transport
            stale = client._loop.run(transport.manifest("faq"))
            add(client, 50, 1)  # v2 published: v1's file is deleted (--keep-versions 1)...
            deadline = time.monotonic() + 30
            while "p/faq/0000000001.sqlite" in server.storage().list("p/") and time.monotonic() < deadline:
                time.sleep(0.01)  # ...just after its job completes: pruning follows the publish
            real = transport.manifest
            answers = [stale]

            async def late(name: str):  # the first answer was read just before v2 came out
                return answers.pop() if answers else await real(name)

            transport.manifest = late
            info = client.load_index("faq")
            assert info.version == 2 and not answers
            assert Path(info.path).read_bytes() == stored(server, 2)
    finally:
        server.stop()


def test_the_embedded_transport_says_a_deleted_version_is_not_found(tmp_path: Path) -> None:
    service = Service(tmp_path / "svc", keep_versions=1)
    transport = LocalTransport(service, "p", "k")
    try:
        service.create_index("p", "faq", docs(0, 5), MODEL)
        assert service.wait_idle(30)
        service.add_docs("p", "faq", docs(5, 1), None)
        assert service.wait_idle(30)
        with pytest.raises(IndexNotFoundError, match="no longer has version 1"):
            asyncio.run(transport.download("faq", 1, tmp_path / "v1.sqlite"))
        asyncio.run(transport.download("faq", 2, tmp_path / "v2.sqlite"))
    finally:
        service.close()
