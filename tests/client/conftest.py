"""One client suite, two transports: the embedded service, and a real `mosslite serve`
process on a free loopback port, started here and stopped after."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mosslite import SyncMossClient
from mosslite.client.embedded import close_embedded_services
from mosslite.service.catalog import Catalog
from mosslite.service.storage import DirectoryStorage, S3Storage, Storage

from ..seaweedfs import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, SeaweedFS

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
sys.path.insert(0, str(PLUGINS))
import mosslite_test_models  # noqa: E402,F401  (registers the fault-test models here too)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    data: Path
    port: int
    process: subprocess.Popen | None = None
    #: Where it stores version files: None for its data folder, else an S3 store of the
    #: run's SeaweedFS (``--storage s3://...``; tests/seaweedfs.py).
    s3: SeaweedFS | None = None
    s3_prefix: str = ""
    #: Where it reaches that store, if not SeaweedFS itself (a proxy: tests/s3_proxy.py).
    s3_endpoint: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")])}
        environment.update(env or {})
        if self.s3 is not None:
            environment.update(self.s3.env())
            endpoint = self.s3_endpoint or self.s3.endpoint
            args = ("--storage", f"s3://{BUCKET}/{self.s3_prefix}", "--s3-endpoint", endpoint, *args)
        # Its log goes to a file, never to a pipe left unread: a server logging every refused
        # key (the fuzz test sends hundreds) would stall once the pipe's buffer filled.
        log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mosslite", "serve", "--data", str(self.data), "--host", "127.0.0.1",
             "--port", str(self.port), "--plugin", "mosslite_test_models", "--no-access-log", *args],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"mosslite serve exited: {log.read().decode(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosslite serve did not start listening")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def storage(self) -> Storage:
        """The server's storage, opened beside it (to read or damage stored objects)."""
        if self.s3 is None:
            return DirectoryStorage(self.data / "storage")
        return S3Storage(BUCKET, self.s3_prefix, endpoint=self.s3.endpoint, region=REGION,
                         credentials=(ACCESS_KEY, SECRET_KEY))

    def new_key(self, project: str) -> str:
        catalog = Catalog(self.data / "catalog.sqlite")
        try:
            return catalog.add_key(project)
        finally:
            catalog.close()


@dataclass
class Target:
    """How a test reaches the service: which transport, and how to make a client."""

    kind: str
    home: Path
    server: Server | None

    def client(self, project: str | None = None, key: str | None = None) -> SyncMossClient:
        project = project or "p-" + secrets.token_hex(4)
        if self.server is None:
            return SyncMossClient(project, key or "k-" + project, cache_path=self.home)
        return SyncMossClient(project, key or self.server.new_key(project), url=self.server.url, cache_path=self.home)


@pytest.fixture(params=["embedded", "http", "http-s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "embedded":
        return Target("embedded", tmp_path / "home", None)
    server = request.getfixturevalue("s3_server" if request.param == "http-s3" else "server")
    return Target(request.param, tmp_path / "home", server)


@pytest.fixture
def client(target: Target) -> Iterator[SyncMossClient]:
    c = target.client()
    yield c
    c.close()
    close_embedded_services()
