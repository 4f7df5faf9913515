"""A fresh `mosslite serve` process per test (refresh tests stop and restart it), and
versions whose documents say which version they belong to."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mosslite import DocumentInfo

from ..client.conftest import Server, free_port

MODEL = "hashed-ngrams-256"


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """Storing in its data folder; parametrized ``indirect`` with "s3", in the run's
    SeaweedFS (then clients download straight from it, by the manifest's links)."""
    srv = Server(data=tmp_path / "srv", port=free_port())
    if getattr(request, "param", "directory") == "s3":
        srv.s3, srv.s3_prefix = request.getfixturevalue("seaweedfs"), "sync-" + secrets.token_hex(6)
    srv.start()
    yield srv
    srv.stop()


#: The tests that also run with a server storing in S3 (issue #10).
BOTH_STORAGES = pytest.mark.parametrize("server", ["directory", "s3"], indirect=True)


def stored(server: Server, name: str, version: int) -> bytes:
    """Version ``version`` of index ``name`` (project "p") as the server stores it."""
    return server.storage().read_bytes(f"p/{name}/{version:010d}.sqlite")


def versioned_docs(version: int, n: int = 20) -> list[DocumentInfo]:
    """Every document of version N says so, in text and metadata: a result mixing
    versions is detectable."""
    return [DocumentInfo(id=f"d{i}", text=f"shared words item {i} marker v{version}", metadata={"v": str(version)}) for i in range(n)]


def publish(client, name: str, version: int) -> None:
    if version == 1:
        job = client.create_index(name, versioned_docs(1), model_id=MODEL)
    else:
        job = client.add_docs(name, versioned_docs(version))
    client.wait_for_job(job.job_id, poll_interval_seconds=0.01, timeout_seconds=30)


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait for work that is already due (a download in flight), not for a timer."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
