"""Downloads that bypass the service (issue #10): a real `mosslite serve --storage s3://...`
on the run's SeaweedFS, with a counting proxy (tests/s3_proxy.py) in front of each,
so every byte either side sends is seen."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mosslite import SyncMossClient

from ..client.conftest import Server, free_port
from ..s3_proxy import FaultProxy, Seen
from ..seaweedfs import SeaweedFS
from ..sync.test_patch_refresh import MODEL, docs

LIFETIME_S = 900


@dataclass
class Env:
    server: Server
    service: FaultProxy  # in front of the mosslite server: what clients reach
    store: FaultProxy  # in front of SeaweedFS: what the server signs links for

    def client(self, home: Path, key: str, project: str = "p") -> SyncMossClient:
        return SyncMossClient(project, key, url=self.service.url, cache_path=home)

    def publish(self, key: str, start: int, count: int, project: str = "p") -> None:
        with SyncMossClient(project, key, url=self.server.url, cache_path=self.server.data.parent / "writer") as w:
            job = w.create_index("faq", docs(start, count), model_id=MODEL) if start == 0 else w.add_docs("faq", docs(start, count))
            w.wait_for_job(job.job_id, poll_interval_seconds=0.01, timeout_seconds=60)

    def stored(self, version: int, project: str = "p") -> bytes:
        return self.server.storage().read_bytes(f"{project}/faq/{version:010d}.sqlite")


@pytest.fixture
def env(seaweedfs: SeaweedFS, tmp_path: Path) -> Iterator[Env]:
    with FaultProxy(seaweedfs.endpoint) as store:
        server = Server(data=tmp_path / "srv", port=free_port(), s3=seaweedfs,
                        s3_prefix="direct-" + secrets.token_hex(6), s3_endpoint=store.url)
        server.start(args=("--link-lifetime", str(LIFETIME_S)))
        try:
            with FaultProxy(server.url) as service:
                yield Env(server, service, store)
        finally:
            server.stop()


def by_link(seen: Seen) -> bool:
    return "X-Amz-Signature=" in seen.path


def test_a_load_and_a_patch_refresh_cost_the_service_only_manifests(env: Env, tmp_path: Path) -> None:
    key = env.server.new_key("p")
    env.publish(key, 0, 400)
    with env.client(tmp_path / "home", key) as client:
        assert client.load_index("faq").version == 1
        env.publish(key, 400, 3)
        swaps = []
        client.on_swap(swaps.append)
        info = client.load_index("faq")
    v1, v2 = env.stored(1), env.stored(2)
    assert Path(info.path).read_bytes() == v2 and [s.patched_from for s in swaps] == [1]

    from_service = env.service.answered
    assert {seen.path.rsplit("/", 1)[-1] for seen, _, _ in from_service} == {"manifest"}
    sent = sum(size for _, _, size in from_service)
    assert sent < 0.01 * len(v1)  # the fleet benchmark's bar: < 1% of the version bytes
    assert all(size < 2000 for _, _, size in from_service)

    # The change from v1 is one object the service stored at publish: one request.
    whole, patch = [(seen, status, size) for seen, status, size in env.store.answered if by_link(seen)]
    assert (whole[1], whole[2]) == (200, len(v1)) and "/0000000001.sqlite?" in whole[0].path
    assert patch[1] == 200 and "/0000000002.sqlite.from-1.patch?" in patch[0].path
    assert patch[2] < len(v2) // 5  # only the pages that changed


def refresh(env: Env, key: str, home: Path, change: Callable[[], None]) -> list[tuple[Seen, int, int]]:
    """Load the newest version into ``home``, ``change`` the index, load again: what the
    store answered to the second load's links."""
    with env.client(home, key) as client:
        client.load_index("faq")
        change()
        since = len(env.store.answered)
        info = client.load_index("faq")
        newest = client.get_index("faq").version
    assert Path(info.path).read_bytes() == env.stored(newest)  # (installed after its sha256 matched)
    return [(seen, status, size) for seen, status, size in env.store.answered[since:] if by_link(seen)]


def from_the_page_map(fetched: list[tuple[Seen, int, int]], version: int) -> int:
    """Bytes of a patch assembled from ``version``'s page map and ranged reads of its file."""
    page_map, *pages = fetched
    assert page_map[1] == 200 and f"/{version:010d}.sqlite.pages?" in page_map[0].path
    assert pages and all(status == 206 and f"/{version:010d}.sqlite?" in seen.path for seen, status, _ in pages)
    return sum(size for _, _, size in fetched)


def test_a_device_two_versions_behind_patches_from_the_page_map(env: Env, tmp_path: Path) -> None:
    key = env.server.new_key("p")
    env.publish(key, 0, 400)
    fetched = refresh(env, key, tmp_path / "home", lambda: (env.publish(key, 400, 3), env.publish(key, 403, 3)))
    from_the_page_map(fetched, 3)  # it holds v1; the stored patch is from v2: not asked for


def test_a_stored_patch_gone_or_refused_falls_back_to_the_page_map(env: Env, tmp_path: Path) -> None:
    key = env.server.new_key("p")
    env.publish(key, 0, 400)
    stored_patch = "p/faq/0000000002.sqlite.from-1.patch"
    patch_bytes: list[int] = []

    def publish_and_delete_the_patch() -> None:
        env.publish(key, 400, 3)
        patch_bytes.append(env.server.storage().size(stored_patch))
        env.server.storage().delete(stored_patch)

    gone, *rest = refresh(env, key, tmp_path / "a", publish_and_delete_the_patch)
    assert gone[1] == 404 and "/0000000002.sqlite.from-1.patch?" in gone[0].path
    assert patch_bytes[0] < from_the_page_map(rest, 2)  # the stored patch costs fewer bytes too

    env.store.fail = lambda seen: 403 if ".patch?" in seen.path else None
    refused, *rest = refresh(env, key, tmp_path / "b", lambda: env.publish(key, 403, 3))
    assert refused[1] == 403 and "/0000000003.sqlite.from-2.patch?" in refused[0].path
    from_the_page_map(rest, 3)


def test_a_refused_link_makes_the_client_read_the_manifest_again(env: Env, tmp_path: Path) -> None:
    key = env.server.new_key("p")
    env.publish(key, 0, 50)
    refusals: list[Seen] = []

    def expired_once(seen: Seen) -> int | None:  # as the store answers a link past its lifetime
        if by_link(seen) and not refusals:
            refusals.append(seen)
            return 403
        return None

    env.store.fail = expired_once
    with env.client(tmp_path / "home", key) as client:
        info = client.load_index("faq")
    assert Path(info.path).read_bytes() == env.stored(1)
    assert [seen.path.rsplit("/", 1)[-1] for seen, _, _ in env.service.answered] == ["manifest", "manifest"]
    by_store = [status for seen, status, _ in env.store.answered if by_link(seen)]
    assert by_store == [403, 200]  # the link of the manifest read again (signed again: the same
    # URL within the same second) brought the file; the service sent none of it


def test_links_the_store_keeps_refusing_leave_the_download_to_the_service(env: Env, tmp_path: Path) -> None:
    key = env.server.new_key("p")
    env.publish(key, 0, 50)
    env.store.fail = lambda seen: 403 if by_link(seen) else None
    with env.client(tmp_path / "home", key) as client:
        info = client.load_index("faq")
    assert Path(info.path).read_bytes() == env.stored(1)
    paths = [seen.path for seen, _, _ in env.service.answered]
    assert paths[-1].endswith("/indexes/faq/versions/1") and sum(p.endswith("/manifest") for p in paths) == 2


def test_a_key_for_project_a_never_gets_a_link_that_opens_project_b(env: Env) -> None:
    key_a, key_b = env.server.new_key("proj-a"), env.server.new_key("proj-b")
    env.publish(key_a, 0, 5, project="proj-a")
    env.publish(key_b, 0, 5, project="proj-b")
    mine = httpx.get(f"{env.server.url}/v1/projects/proj-a/indexes/faq/manifest", headers={"Authorization": f"Bearer {key_a}"})
    links = mine.json()["download"]
    prefix = env.server.s3_prefix
    assert f"/{prefix}/proj-a/faq/0000000001.sqlite?" in links["version_url"]
    assert f"/{prefix}/proj-a/faq/0000000001.sqlite.pages?" in links["pages_url"]
    assert httpx.get(links["version_url"]).content == env.stored(1, "proj-a")
    theirs = httpx.get(f"{env.server.url}/v1/projects/proj-b/indexes/faq/manifest", headers={"Authorization": f"Bearer {key_a}"})
    assert theirs.status_code == 404 and "download" not in theirs.text
    for url in (links["version_url"], links["pages_url"]):
        assert httpx.get(url.replace("/proj-a/", "/proj-b/")).status_code == 403  # the signature names A's key


def test_the_manifest_is_revalidated_within_its_links_window(env: Env) -> None:
    key = env.server.new_key("p")
    env.publish(key, 0, 5)
    url = f"{env.server.url}/v1/projects/p/indexes/faq/manifest"
    auth = {"Authorization": f"Bearer {key}"}
    first = httpx.get(url, headers=auth)
    etag, cache = first.headers["etag"], first.headers["cache-control"]
    sha256 = first.json()["sha256"]
    assert etag.startswith(f'W/"{sha256}.') and cache.startswith("private, max-age=")
    assert 0 <= int(cache.rpartition("=")[2]) <= LIFETIME_S // 3  # no cache keeps it past the window
    again = httpx.get(url, headers={**auth, "If-None-Match": etag})
    assert again.status_code in (304, 200)  # 200 only if the window turned in between
    if again.status_code == 304:
        assert again.content == b"" and again.headers["etag"] == etag
    assert httpx.get(url, headers={**auth, "If-None-Match": f'"{sha256}"'}).status_code == 200  # links of no window
