"""Real processes around one cache: two clients sharing it, and a client killed mid-download."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mosslite import DocumentInfo, SyncMossClient
from mosslite._fs import sha256_file
from mosslite.client.embedded import close_embedded_services
from mosslite.cache.layout import cached_versions, part_path, version_path
from mosslite.types import Manifest
from mosslite.wire import from_answer
from mosslite.transport.http import source_folder

from ..cache.conftest import versions_in
from ..client.conftest import Server, free_port
from ..s3_proxy import FaultProxy
from .test_refresh import publish

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from mosslite import SyncMossClient, QueryOptions
    url, key, home, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    client = SyncMossClient("p", key, url=url, cache_path=home)
    client.load_index("faq", auto_refresh=True, polling_interval_in_seconds=0.1)
    errors, queries, versions = [], 0, set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = client.query("faq", "marker", QueryOptions(top_k=5))
            seen = {d.metadata["v"] for d in result.docs}
            assert len(seen) == 1, seen
            versions |= seen
            queries += 1
        except Exception as exc:
            errors.append(repr(exc))
        time.sleep(0.001)
    print(json.dumps({"errors": errors, "queries": queries, "final": client.get_loaded_version("faq"),
                      "versions": sorted(versions)}), flush=True)
    client.close()
    """
)


def test_two_processes_share_one_cache(server: Server, tmp_path: Path) -> None:
    key = server.new_key("p")
    home = tmp_path / "shared-home"
    with SyncMossClient("p", key, url=server.url, cache_path=tmp_path / "writer") as writer:
        publish(writer, "faq", 1)
        children = [
            subprocess.Popen([sys.executable, "-c", CHILD, server.url, key, str(home), "6"], stdout=subprocess.PIPE)
            for _ in range(2)
        ]
        time.sleep(1.0)  # both children have loaded version 1
        for version in range(2, 12):
            publish(writer, "faq", version)
            time.sleep(0.15)
        reports = [json.loads(child.communicate(timeout=60)[0]) for child in children]
    for report in reports:
        assert report["errors"] == []
        assert report["final"] == 11 and report["queries"] > 100
    index_dir = home / "cache" / source_folder(server.url) / "p" / "faq"
    assert versions_in(index_dir) == [11]
    manifest = json.loads((server.data / "storage" / "p" / "faq" / "manifest.json").read_text())
    assert sha256_file(cached_versions(index_dir)[0].path) == manifest["sha256"]
    assert [p.name for p in index_dir.iterdir() if p.name.endswith(".part") or ".tmp-" in p.name] == []


THROTTLED = {"MOSSLITE_TEST_THROTTLE_BPS": "1000000"}  # 1 MB/s for indexes named slow-*


@pytest.fixture
def slow_server(request: pytest.FixtureRequest, tmp_path: Path):
    """Version files of indexes named slow-* leave at 1 MB/s: from the server, or (param
    "s3") from the object store, through a throttling proxy in front of SeaweedFS."""
    srv = Server(data=tmp_path / "slow-srv", port=free_port())
    with contextlib.ExitStack() as stack:
        if getattr(request, "param", "directory") == "s3":
            seaweedfs = request.getfixturevalue("seaweedfs")
            proxy = stack.enter_context(FaultProxy(seaweedfs.endpoint))
            rate = float(THROTTLED["MOSSLITE_TEST_THROTTLE_BPS"])
            proxy.throttle = lambda seen: rate if "X-Amz-Signature=" in seen.path and "/slow-" in seen.path else None
            srv.s3, srv.s3_prefix, srv.s3_endpoint = seaweedfs, "slow-" + secrets.token_hex(6), proxy.url
            srv.store_proxy = proxy  # type: ignore[attr-defined]  (what the store sent, for the test)
        srv.start(env=THROTTLED)
        yield srv
        srv.stop()


def bulk(version: int, n: int) -> list[DocumentInfo]:
    return [DocumentInfo(id=f"d{i}", text=f"bulk text {i} marker v{version}", metadata={"v": str(version)}) for i in range(n)]


def publish_docs(client: SyncMossClient, name: str, docs: list[DocumentInfo], create: bool) -> None:
    job = client.create_index(name, docs, model_id="hashed-ngrams-256") if create else client.add_docs(name, docs)
    client.wait_for_job(job.job_id, poll_interval_seconds=0.02, timeout_seconds=60)


KILLABLE = textwrap.dedent(
    """
    import sys
    from mosslite import SyncMossClient
    url, key, home = sys.argv[1:4]
    client = SyncMossClient("p", key, url=url, cache_path=home)
    print(client.load_index("slow-idx").version, flush=True)
    sys.stdin.readline()
    client.load_index("slow-idx")  # the refresh that gets killed
    print("refreshed", flush=True)
    """
)


@pytest.mark.parametrize("slow_server", ["directory", "s3"], indirect=True)
def test_client_killed_mid_download_keeps_previous_version(slow_server: Server, tmp_path: Path) -> None:
    key = slow_server.new_key("p")
    home = tmp_path / "home"
    index_dir = home / "cache" / source_folder(slow_server.url) / "p" / "slow-idx"
    with SyncMossClient("p", key, url=slow_server.url, cache_path=tmp_path / "writer") as writer:
        publish_docs(writer, "slow-idx", bulk(1, 10), create=True)
        child = subprocess.Popen(
            [sys.executable, "-c", KILLABLE, slow_server.url, key, str(home)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        try:
            assert child.stdout.readline().strip() == b"1"
            publish_docs(writer, "slow-idx", bulk(2, 1500), create=False)
            child.stdin.write(b"go\n")
            child.stdin.flush()
            # (Found by its number: the job completes before manifest.json is written.)
            deadline = time.monotonic() + 30
            while not ((part := next(index_dir.glob("0000000002-*.sqlite.part"), None)) and part.stat().st_size > 300_000):
                assert time.monotonic() < deadline and child.poll() is None
                time.sleep(0.02)
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
        assert versions_in(index_dir) == [1]  # the torn download has no final name
        partial = part.stat().st_size
        assert 0 < partial < writer.get_index("slow-idx").doc_count * 10_000

        # Restart: the previous version is usable, and the next load resumes and installs v2.
        with SyncMossClient("p", key, url=slow_server.url, cache_path=home) as restarted:
            info = restarted.load_index("slow-idx")
            assert info.version == 2 and restarted.query("slow-idx", "marker").docs[0].metadata["v"] == "2"
        leftovers = [p.name for p in index_dir.iterdir() if p.name.endswith(".part") or ".tmp-" in p.name]
        assert leftovers == [] and versions_in(index_dir) == [2]
        store = getattr(slow_server, "store_proxy", None)
        if store is not None:  # the restart resumed from the store, by link, with a Range request
            resumed = [(seen, status) for seen, status, _ in store.answered if "/slow-idx/0000000002.sqlite?" in seen.path]
            assert [status for _, status in resumed] == [200, 206]
        manifest = from_answer(Manifest, json.loads(slow_server.storage().read_bytes("p/slow-idx/manifest.json")))
        assert part == part_path(version_path(index_dir, manifest))  # the part resumed had v2's name
        assert sha256_file(version_path(index_dir, manifest)) == manifest.sha256


def test_one_slow_index_never_delays_another(slow_server: Server, tmp_path: Path) -> None:
    from mosslite import QueryOptions
    from mosslite.sync.clock import ManualClock

    key = slow_server.new_key("p")
    clock = ManualClock()
    with SyncMossClient("p", key, url=slow_server.url, cache_path=tmp_path / "writer") as writer, \
            SyncMossClient("p", key, url=slow_server.url, cache_path=tmp_path / "home", clock=clock) as client:
        publish_docs(writer, "slow-a", bulk(1, 5), create=True)
        publish_docs(writer, "fast-b", bulk(1, 5), create=True)
        client.load_index("slow-a", auto_refresh=True, polling_interval_in_seconds=60)
        client.load_index("fast-b", auto_refresh=True, polling_interval_in_seconds=60)
        publish_docs(writer, "slow-a", bulk(2, 2000), create=False)  # several seconds to download
        publish_docs(writer, "fast-b", bulk(2, 5), create=False)
        deadline = time.monotonic() + 10
        while clock.sleepers < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        clock.advance(60)  # both timers fire together
        while client.get_loaded_version("fast-b") != 2:
            assert time.monotonic() < deadline + 20
            # Queries on both indexes are answered while slow-a downloads.
            assert client.query("slow-a", "marker", QueryOptions(top_k=1)).docs[0].metadata["v"] == "1"
            assert client.query("fast-b", "marker", QueryOptions(top_k=1)).docs
            time.sleep(0.01)
        assert client.get_loaded_version("slow-a") == 1  # still downloading: it did not hold fast-b up
        while client.get_loaded_version("slow-a") != 2:
            assert time.monotonic() < deadline + 60
            time.sleep(0.05)


LOAD = textwrap.dedent(
    """
    import sys
    from mosslite import SyncMossClient
    with SyncMossClient("p", "k", cache_path=sys.argv[1]) as client:
        print(client.load_index("faq").version)
    """
)


def as_an_ordinary_user(argv: list[str]) -> list[str]:
    """root ignores permission bits; run without the capabilities that let it."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop root's permission override")
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search,-fowner", *argv]


def test_a_load_killed_after_linking_the_version_file_recovers(tmp_path: Path) -> None:
    # The embedded client hard-links the (read-only) published file to <v>.sqlite.part,
    # then verifies and renames it. Killed in between, the next load once tried to
    # resume the link by appending to it: PermissionError on every load after.
    home = tmp_path / "home"
    with SyncMossClient("p", "k", cache_path=home) as client:
        publish(client, "faq", 1)
    close_embedded_services()
    stored = next((home / "service" / "storage").rglob("0000000001.sqlite"))
    cache = home / "cache" / "embedded" / "p" / "faq"
    cache.mkdir(parents=True)
    manifest = from_answer(Manifest, json.loads(stored.with_name("manifest.json").read_text()))
    os.link(stored, part_path(version_path(cache, manifest)))  # the state such a kill leaves
    argv = as_an_ordinary_user([sys.executable, "-c", LOAD, str(home)])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1" and versions_in(cache) == [1]


def test_making_another_users_file_read_only_is_only_attempted(tmp_path: Path) -> None:
    # A hard link into a cache shared with another user can be a file that user owns,
    # with write bits (written before version files lost theirs): chmod is refused,
    # and the bits are a safeguard, not worth failing a load over.
    if os.geteuid() != 0:
        pytest.skip("needs root to make a file another user owns")
    theirs = tmp_path / "theirs.sqlite"
    theirs.write_bytes(b"published bytes")
    theirs.chmod(0o664)
    os.chown(theirs, 65534, 65534)
    tmp_path.chmod(0o755)
    code = "import sys; from mosslite._fs import make_read_only; make_read_only(sys.argv[1])"
    done = subprocess.run(as_an_ordinary_user([sys.executable, "-c", code, str(theirs)]), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o664
