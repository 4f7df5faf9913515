"""Session tests run over both transports: the embedded service, and a real
`mosslite serve` process (the `server` fixture of tests/conftest.py, one per test run)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mosslite import MossClient
from mosslite.client.embedded import close_embedded_services

from ..client.conftest import Server

MODEL = "hashed-ngrams-256"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Target:
    """Makes clients of one project, each with its own home (its own device)."""

    kind: str
    root: Path
    server: Server | None
    project: str
    key: str

    def client(self, device: str = "a") -> MossClient:
        home = self.root / device
        if self.server is None:
            # One embedded service shared by every "device" of the test: the cloud.
            return _embedded_client(self.project, self.key, self.root / "cloud", home)
        return MossClient(self.project, self.key, url=self.server.url, cache_path=home)

    def session_dir(self, device: str = "a") -> Path:
        return self.root / device / "sessions"


def _embedded_client(project: str, key: str, cloud: Path, home: Path) -> MossClient:
    from mosslite.client.embedded import embedded_service
    from mosslite.transport.local import LocalTransport

    transport = LocalTransport(embedded_service(cloud / "service"), project, key)
    return MossClient(project, key, cache_path=home, transport=transport)


@pytest.fixture(params=["embedded", "http"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    project = "p-" + secrets.token_hex(4)
    if request.param == "embedded":
        yield Target("embedded", tmp_path, None, project, "k-" + project)
        close_embedded_services()
        return
    server: Server = request.getfixturevalue("server")
    yield Target("http", tmp_path, server, project, server.new_key(project))


@pytest.fixture
async def clients(target: Target) -> AsyncIterator[Callable[[str], MossClient]]:
    made: list[MossClient] = []

    def make(device: str = "a") -> MossClient:
        client = target.client(device)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
