"""One home, many services: a cached copy is only ever served for the service it came
from (#12). Before, the cache was keyed by project and index only, so with the server
down, `--url` served the embedded index of the same name, and said it was stale."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from mosslite import DocumentInfo, SyncMossClient
from mosslite.errors import UnavailableError

from .conftest import Server, free_port

MODEL = "hashed-ngrams-256"


def created(client: SyncMossClient, *ids: str) -> None:
    docs = [DocumentInfo(id=i, text=f"zebra note {i}") for i in ids]
    client.wait_for_job(client.create_index("faq", docs, MODEL).job_id)


def test_each_service_keeps_its_own_copies_in_one_home(tmp_path: Path, server: Server) -> None:
    home = tmp_path / "home"
    project = "p-" + secrets.token_hex(4)
    key = server.new_key(project)
    with SyncMossClient(project, key, cache_path=home) as embedded, SyncMossClient(
        project, key, url=server.url, cache_path=home
    ) as remote:
        created(embedded, "embedded-1")
        created(remote, "server-1", "server-2")
        for client in (embedded, remote):
            client.load_index("faq")
        assert {d.id for d in embedded.query("faq", "zebra").docs} == {"embedded-1"}
        assert {d.id for d in remote.query("faq", "zebra").docs} == {"server-1", "server-2"}
        assert embedded.cache_dir == home / "cache" / "embedded" / project
        assert remote.cache_dir.parent.parent == home / "cache" and remote.cache_dir != embedded.cache_dir
        assert (embedded.cache_dir / "faq").is_dir() and (remote.cache_dir / "faq").is_dir()


def test_a_server_that_is_down_never_gets_another_services_copy(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with SyncMossClient("p", "k", cache_path=home) as embedded:
        created(embedded, "embedded-1")
        embedded.load_index("faq")
    down = f"http://127.0.0.1:{free_port()}"
    with SyncMossClient("p", "k", url=down, cache_path=home) as client:
        with pytest.raises(UnavailableError) as raised:
            client.load_index("faq")
    assert f"cannot reach the service at {down}" in str(raised.value)
    assert "mosslite serve" in str(raised.value)
