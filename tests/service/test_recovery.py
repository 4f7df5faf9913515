"""The service killed with SIGKILL mid-build: after a restart the catalog and
storage agree, no half-published version exists, and the job is resumed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mosslite import DocumentInfo, SyncMossClient
from mosslite._fs import sha256_file
from mosslite.client.embedded import close_embedded_services
from mosslite.index.batch import BatchWriter
from mosslite.index.pages import PageMap
from mosslite.service import Service
from mosslite.service.catalog import Catalog

from ..client.conftest import PLUGINS, Server, free_port

SLOW_ENV = {"MOSSLITE_TEST_SLOW_BATCH_S": "0.15"}
BIG = 640  # 10 embedding batches at 0.15 s: a build long enough to kill in the middle


def big_docs() -> list[DocumentInfo]:
    return [DocumentInfo(id=f"b{i}", text=f"bulk document {i}") for i in range(BIG)]


def wait_until_embedding(catalog_path: Path, job_id: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        catalog = Catalog(catalog_path)
        try:
            job = catalog.get_job(catalog.job_project(job_id), job_id)
        finally:
            catalog.close()
        if job.current_phase == "generating_embeddings" and 0 < job.progress < 60:
            return
        assert not job.done, job
        time.sleep(0.02)
    raise AssertionError("the build never reached generating_embeddings")


def assert_consistent(data: Path, project: str, index: str, expect_versions: list[int]) -> None:
    """Every published version has its file with the recorded sha256 and the page map
    of that file, and no other version file or map exists."""
    catalog = Catalog(data / "catalog.sqlite")
    try:
        info = catalog.get_index(project, index)
        assert info.version == expect_versions[-1]
        for version in expect_versions:
            record = catalog.get_version(project, index, version)
            assert record is not None
            path = data / "storage" / record.storage_key
            assert sha256_file(path) == record.manifest.sha256
            page_map = PageMap.from_bytes(Path(f"{path}.pages").read_bytes())
            assert page_map.sha256 == record.manifest.sha256
    finally:
        catalog.close()
    files = sorted(p.name for p in (data / "storage" / project / index).iterdir())
    versions = [f"{v:010d}.sqlite" for v in expect_versions]
    assert files == sorted([*versions, *(f"{v}.pages" for v in versions), "manifest.json"])


def test_http_service_killed_mid_build(tmp_path: Path) -> None:
    srv = Server(data=tmp_path / "data", port=free_port())
    srv.start(env=SLOW_ENV)
    key = srv.new_key("p")
    try:
        with SyncMossClient("p", key, url=srv.url, cache_path=tmp_path / "home") as client:
            first = client.create_index("idx", [DocumentInfo(id="a", text="alpha")], model_id="slow-hashed")
            client.wait_for_job(first.job_id, poll_interval_seconds=0.05, timeout_seconds=30)
            job = client.add_docs("idx", big_docs())
            wait_until_embedding(srv.data / "catalog.sqlite", job.job_id)
            srv.kill()

            # Dead service: version 1 is still the published one, intact.
            assert_consistent(srv.data, "p", "idx", [1])

            srv.start(env=SLOW_ENV)
            done = client.wait_for_job(job.job_id, poll_interval_seconds=0.05, timeout_seconds=60)
            assert done.version == 2
            assert client.get_index("idx").doc_count == BIG + 1
        assert_consistent(srv.data, "p", "idx", [1, 2])
        assert [p for p in (srv.data / "staging").iterdir() if p.is_file()] == []
        assert list((srv.data / "batches").iterdir()) == []  # the resumed job's documents went with it
    finally:
        srv.stop()


def test_embedded_service_killed_mid_build(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(PLUGINS)!r})
        import mosslite_test_models
        from mosslite import DocumentInfo, SyncMossClient
        client = SyncMossClient("p", "key", cache_path={str(home)!r})
        job = client.create_index("idx", [DocumentInfo(id="a", text="alpha")], model_id="slow-hashed")
        client.wait_for_job(job.job_id, poll_interval_seconds=0.05)
        job = client.add_docs("idx", [DocumentInfo(id=f"b{{i}}", text=f"bulk document {{i}}") for i in range({BIG})])
        print(job.job_id, flush=True)
        time.sleep(120)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env={**os.environ, **SLOW_ENV})
    try:
        job_id = child.stdout.readline().decode().strip()
        assert job_id.startswith("job_")
        data = home / "service"
        wait_until_embedding(data / "catalog.sqlite", job_id)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert_consistent(data, "p", "idx", [1])
    assert [p.name for p in (data / "batches").iterdir()] == [f"{job_id}.sqlite"]  # kept for the resume

    service = Service(data)  # a restart: recovers the dead owner's job
    try:
        assert service.wait_idle(60)
        job = service.get_job("p", job_id)
        assert (job.status, job.version) == ("completed", 2)
        assert service.get_index("p", "idx").doc_count == BIG + 1
    finally:
        service.close()
    assert_consistent(data, "p", "idx", [1, 2])
    assert list((data / "batches").iterdir()) == []
    close_embedded_services()


@pytest.mark.parametrize("stored", [False, True])
def test_job_of_a_dead_owner_before_upload(tmp_path: Path, stored: bool) -> None:
    """A job whose batch was never stored (still pending_upload: written, not fsynced)
    cannot be resumed: it is marked failed. One stored (uploading) is resumed. Either
    way its batch file is gone once the job ended."""
    data = tmp_path / "data"
    service = Service(data)
    service.adopt_key("p", "k")
    service.create_index("p", "idx", [DocumentInfo(id="a", text="alpha")], model_id="hashed-ngrams-256")
    assert service.wait_idle(30)
    service.close()
    catalog = Catalog(data / "catalog.sqlite")
    job_id = catalog.create_job("p", "idx", "delete_docs", 1)
    # Owned by a process of this host that no longer exists.
    catalog.update_job(job_id, owner=f"{socket.gethostname()}:999999999", **({"status": "uploading"} if stored else {}))
    catalog.close()
    batch = data / "batches" / f"{job_id}.sqlite"
    writer = BatchWriter(batch, dimension=256, computes_embeddings=True)
    writer.add_deletes(["a"])
    writer.close()
    service = Service(data)
    try:
        assert service.wait_idle(30)
        job = service.get_job("p", job_id)
        if stored:
            assert job.status == "completed" and service.get_index("p", "idx").doc_count == 0
        else:
            assert job.status == "failed" and "submit it again" in job.error
            assert service.get_index("p", "idx").version == 1
        assert not batch.exists()
    finally:
        service.close()
