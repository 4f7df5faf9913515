"""Shared fixtures: small real index files built with the dependency-free embedder."""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from mosslite import DocumentInfo, Version, _fs, build_version
from mosslite.embeddings.hashed import HashedNgramEmbedder

from .client.conftest import Server, free_port
from .seaweedfs import SeaweedFS

# A suite started in the background of a script (`make test &`) has SIGINT ignored, and
# every process it starts would inherit that: the tests that press Ctrl-C (the CLI's
# jobs, sends and query shell) need Python's own handler back, as a terminal gives it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

FAQ = [
    ("refund-1", "How do I get a refund for a damaged product?", {"category": "returns", "price": "0", "loc": "52.5200,13.4050"}),
    ("refund-2", "Getting your money back: returns are accepted within 30 days.", {"category": "returns", "price": "5"}),
    ("ship-1", "Standard shipping takes three to five business days.", {"category": "shipping", "price": "4.99"}),
    ("ship-2", "Express delivery arrives the next day if ordered before noon.", {"category": "shipping", "price": "14.99", "loc": "48.8566,2.3522"}),
    ("bt-1", "Pair your headphones over Bluetooth by holding the power button.", {"category": "audio", "price": "129.99"}),
    ("bt-2", "Speakers reconnect automatically to the last paired phone.", {"category": "audio", "price": "89", "loc": "52.5100,13.3900"}),
    ("battery-1", "Charge the battery fully before first use to calibrate it.", {"category": "audio", "price": "abc"}),
    ("account-1", "Reset your password from the account settings page.", {"category": "account"}),
]


class CountingEmbedder(HashedNgramEmbedder):
    """Counts every text it embeds, to prove which documents were (re-)embedded."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        return super().embed(texts)


def faq_docs() -> list[DocumentInfo]:
    return [DocumentInfo(id=i, text=t, metadata=m, payload=f"payload:{i}") for i, t, m in FAQ]


@pytest.fixture
def written_back(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (start, length) of every sync_file_range call (_fs.copy_written_back), each made for real."""
    real = _fs._sync_file_range()
    if real is None:
        pytest.skip("sync_file_range is Linux's")
    calls: list[tuple[int, int]] = []

    def recording(fd: int, start: int, length: int, flags: int) -> int:
        calls.append((start, length))
        return real(fd, start, length, flags)

    monkeypatch.setattr(_fs, "_sync_file_range", lambda: recording)
    return calls


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def faq_index(tmp_path: Path) -> Path:
    path = tmp_path / Version(1).filename()
    build_version(path, embedder=HashedNgramEmbedder(), index_name="faq", version=Version(1), upserts=faq_docs())
    return path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real ``mosslite serve`` process on 127.0.0.1 for the whole run, shared by
    the client and session suites (each test works in its own project or index)."""
    srv = Server(data=tmp_path_factory.mktemp("server-data"), port=free_port())
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory, seaweedfs: SeaweedFS) -> Iterator[Server]:
    """One real ``mosslite serve --storage s3://...`` on the run's SeaweedFS, shared like ``server``."""
    srv = Server(data=tmp_path_factory.mktemp("s3-server-data"), port=free_port(), s3=seaweedfs, s3_prefix="s3-server")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One real S3-compatible object store (SeaweedFS) for the whole run, on loopback;
    tests keep apart by prefix. Stopped after the run, whatever failed."""
    store = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    store.start()
    try:
        yield store
    finally:
        store.stop()
