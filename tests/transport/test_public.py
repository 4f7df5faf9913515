"""Public read mode (issue #10) on a real `mosslite serve --storage s3://... --public-url`
and the run's SeaweedFS, which lets anyone read `_public/` without credentials and
nothing else (tests/seaweedfs.py). Devices reach the service through one counting
proxy and the public URL through another (tests/s3_proxy.py), so every request of
theirs is seen."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mosslite import SyncMossClient

from ..client.conftest import Server, free_port
from ..s3_proxy import FaultProxy, Seen
from ..seaweedfs import BUCKET, SeaweedFS
from ..sync.test_patch_refresh import MODEL, docs


@dataclass
class Env:
    server: Server
    service: FaultProxy  # in front of the mosslite server: what devices reach of it
    public: FaultProxy  # in front of SeaweedFS, at the public URL: what devices read with no key
    store: str  # SeaweedFS itself, for the test's own unsigned reads

    @property
    def public_url(self) -> str:
        return f"{self.public.url}/{BUCKET}/{self.server.s3_prefix}"

    def manifest_url(self, project: str = "p") -> str:
        return f"{self.public_url}/_public/{project}/faq/manifest.json"

    def device(self, home: Path, key: str) -> SyncMossClient:
        return SyncMossClient("p", key, url=self.service.url, cache_path=home)

    def writer(self, key: str) -> SyncMossClient:
        return SyncMossClient("p", key, url=self.server.url, cache_path=self.server.data.parent / "writer")

    def publish(self, key: str, start: int, count: int) -> None:
        with self.writer(key) as w:
            job = w.create_index("faq", docs(start, count), model_id=MODEL) if start == 0 else w.add_docs("faq", docs(start, count))
            w.wait_for_job(job.job_id, poll_interval_seconds=0.01, timeout_seconds=60)

    def public_index(self, count: int) -> str:
        """Index faq of project p, its first version of ``count`` documents, made public; the key."""
        key = self.server.new_key("p")
        self.publish(key, 0, count)
        self.set_public(key, True)
        return key

    def set_public(self, key: str, public: bool) -> None:
        with self.writer(key) as w:
            w.set_public("faq", public)

    def unsigned(self, key: str) -> httpx.Response:
        """An unsigned GET of a storage key, straight from SeaweedFS (not counted)."""
        return httpx.get(f"{self.store}/{BUCKET}/{self.server.s3_prefix}/{key}")

    def wait_public(self, version: int) -> dict:
        """The public manifest once it names ``version`` (it is written just after the
        publish that the job's completion reports)."""
        deadline = time.monotonic() + 60  # (only so that a broken mirror cannot hang the suite)
        while True:
            answer = self.unsigned("_public/p/faq/manifest.json")
            if answer.status_code == 200 and answer.json()["version"] == version:
                return answer.json()
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.02)

    def stored(self, version: int) -> bytes:
        return self.server.storage().read_bytes(f"p/faq/{version:010d}.sqlite")


@contextmanager
def public_env(seaweedfs: SeaweedFS, tmp_path: Path, *args: str) -> Iterator[Env]:
    """A server storing in the run's SeaweedFS, with ``--public-url`` and ``args``."""
    prefix = "public-" + secrets.token_hex(6)
    with FaultProxy(seaweedfs.endpoint) as public:
        server = Server(data=tmp_path / "srv", port=free_port(), s3=seaweedfs, s3_prefix=prefix)
        server.start(args=("--public-url", f"{public.url}/{BUCKET}/{prefix}", *args))
        try:
            with FaultProxy(server.url) as service:
                yield Env(server, service, public, seaweedfs.endpoint)
        finally:
            server.stop()


@pytest.fixture
def env(seaweedfs: SeaweedFS, tmp_path: Path) -> Iterator[Env]:
    with public_env(seaweedfs, tmp_path) as started:
        yield started


def service_calls(env: Env) -> list[str]:
    return [seen.path.rsplit("/", 1)[-1] for seen, _, _ in env.service.answered]


def public_reads(env: Env) -> list[tuple[str, int]]:
    """(object name, status) of every request to the public URL; none carries a key."""
    assert all(dict(seen.headers).get("authorization") is None for seen, _, _ in env.public.answered)
    assert not any("X-Amz-" in seen.path for seen, _, _ in env.public.answered)
    return [(seen.path.rsplit("/", 1)[-1], status) for seen, status, _ in env.public.answered]


def test_a_cdn_may_answer_the_manifest_for_the_max_age_the_service_was_given(seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    # mosslite serve --public-max-age: what keeps a million devices' polls off the bucket
    # (docs/scaling.md); devices see a new version up to that much later.
    with public_env(seaweedfs, tmp_path, "--public-max-age", "30") as env:
        key = env.public_index(10)
        assert httpx.get(env.manifest_url()).headers["cache-control"] == "public, max-age=30"
        env.publish(key, 10, 5)
        assert env.wait_public(2)["doc_count"] == 15  # each publish writes it with the same header
        assert httpx.get(env.manifest_url()).headers["cache-control"] == "public, max-age=30"


def test_a_private_index_is_not_readable_without_a_key_and_a_public_one_is(env: Env) -> None:
    key = env.server.new_key("p")
    env.publish(key, 0, 50)
    private = ["p/faq/0000000001.sqlite", "p/faq/0000000001.sqlite.pages", "p/faq/manifest.json"]
    assert [env.unsigned(k).status_code for k in private] == [403, 403, 403]
    assert env.unsigned("_public/p/faq/manifest.json").status_code == 404  # nothing public yet

    with env.writer(key) as w:
        info = w.set_public("faq", True)
        assert (info.public, info.public_manifest) == (True, env.manifest_url())
        assert w.get_index("faq") == info
    answer = httpx.get(env.manifest_url())
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-cache"
    body = answer.json()
    assert {k: body[k] for k in ("format", "index_name", "version", "doc_count", "model_id")} == {
        "format": 1, "index_name": "faq", "version": 1, "doc_count": 50, "model_id": MODEL,
    }  # fmt: skip
    file = httpx.get(httpx.URL(env.manifest_url()).join(body["version_file"]))
    assert file.content == env.stored(1) and hashlib.sha256(file.content).hexdigest() == body["sha256"]
    assert len(file.content) == body["size_bytes"]
    assert httpx.get(httpx.URL(env.manifest_url()).join(body["page_map"])).status_code == 200
    assert [env.unsigned(k).status_code for k in private] == [403, 403, 403]  # still

    env.set_public(key, False)
    assert env.unsigned("_public/p/faq/manifest.json").status_code == 404
    assert env.unsigned("_public/p/faq/0000000001.sqlite").status_code == 404
    assert env.server.storage().list("_public/") == []


def test_polls_downloads_and_patches_of_a_public_index_cost_the_service_one_manifest(env: Env, tmp_path: Path) -> None:
    key = env.public_index(400)
    with env.device(tmp_path / "home", key) as device:
        assert device.load_index("faq").version == 1  # the service's answer names the public manifest
        for _ in range(5):
            assert device.load_index("faq").version == 1  # nothing new: the store's 304 (but the first)
        env.publish(key, 400, 3)
        env.wait_public(2)
        swaps = []
        device.on_swap(swaps.append)
        info = device.load_index("faq")
    assert Path(info.path).read_bytes() == env.stored(2) and [s.patched_from for s in swaps] == [1]
    assert info.doc_count == 403

    assert service_calls(env) == ["manifest"]  # the first load's; nothing after
    reads = public_reads(env)
    assert reads[:5] == [("manifest.json", 200)] + [("manifest.json", 304)] * 4
    assert reads[5:] == [("manifest.json", 200), ("0000000002.sqlite.from-1.patch", 200)]  # the change: one GET
    sent = sum(size for seen, _, size in env.public.answered if seen.path.endswith(".patch"))
    assert sent < len(env.stored(2)) // 5  # only the changed pages
    body = json.loads(env.unsigned("_public/p/faq/manifest.json").content)
    assert (body["patch_from"], body["patch_file"]) == (1, "0000000002.sqlite.from-1.patch")


def test_a_device_on_a_public_index_downloads_it_from_the_public_url(env: Env, tmp_path: Path) -> None:
    key = env.public_index(40)
    with env.device(tmp_path / "first", key) as device:
        device.load_index("faq")  # learns the public manifest
        env.publish(key, 40, 400)  # most pages change: no patch, the whole file
        env.wait_public(2)
        info = device.load_index("faq")
    assert Path(info.path).read_bytes() == env.stored(2)
    whole = [(seen, status, size) for seen, status, size in env.public.answered if seen.path.endswith("2.sqlite")]
    assert [(status, size) for _, status, size in whole] == [(200, len(env.stored(2)))]
    assert service_calls(env) == ["manifest"]


def test_going_private_stops_devices_at_their_next_poll_and_they_keep_working(env: Env, tmp_path: Path) -> None:
    key = env.public_index(50)
    with env.device(tmp_path / "home", key) as device:
        device.load_index("faq")
        device.load_index("faq")  # polls the public manifest
        env.set_public(key, False)
        assert device.load_index("faq").version == 1  # its public manifest is gone: the service answers
        assert device.load_index("faq").version == 1  # and goes on answering
        env.publish(key, 50, 5)
        assert device.load_index("faq").doc_count == 55
    assert service_calls(env) == ["manifest"] * 4
    assert public_reads(env) == [("manifest.json", 200), ("manifest.json", 404)]
    assert env.unsigned("_public/p/faq/manifest.json").status_code == 404


def test_a_failing_public_url_leaves_each_poll_and_fetch_to_the_service_once(env: Env, tmp_path: Path) -> None:
    key = env.public_index(400)
    with env.device(tmp_path / "home", key) as device:
        device.load_index("faq")
        env.public.fail = lambda seen: 503
        assert device.load_index("faq").version == 1  # the public poll fails: the service's manifest
        assert service_calls(env) == ["manifest", "manifest"]

        def no_version_files(seen: Seen) -> int | None:  # a CDN that lost the files
            return 404 if ".sqlite" in seen.path else None

        env.public.fail = no_version_files
        env.publish(key, 400, 3)
        env.wait_public(2)
        info = device.load_index("faq")  # public manifest; its patch and page map refused: the service's links
    assert Path(info.path).read_bytes() == env.stored(2)
    assert service_calls(env) == ["manifest"] * 3  # never a byte of a version from the service
    refused = [("0000000002.sqlite.from-1.patch", 404), ("0000000002.sqlite.pages", 404)]
    assert public_reads(env)[-3:] == [("manifest.json", 200), *refused]


def test_the_public_manifest_is_read_from_a_plain_http_client(env: Env) -> None:
    """What a device without mosslite does (the fleet benchmark's public setup): poll
    with If-None-Match, read the format, fetch the file."""
    key = env.public_index(20)
    with httpx.Client() as http:
        first = http.get(env.manifest_url())
        again = http.get(env.manifest_url(), headers={"If-None-Match": first.headers["etag"]})
        assert (first.status_code, again.status_code, again.content) == (200, 304, b"")
        body = json.loads(first.content)
        file = http.get(str(httpx.URL(env.manifest_url()).join(body["version_file"])), headers={"Range": "bytes=0-15"})
    assert file.status_code == 206 and file.content == b"SQLite format 3\x00"
