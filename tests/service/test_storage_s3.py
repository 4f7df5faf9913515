"""What is special to an object store, against the real SeaweedFS: multipart uploads
that fail leave nothing, listings past one page, retries with backoff on 5xx and
timeouts (provoked by a loopback proxy, tests/s3_proxy.py), presigned URLs."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from mosslite.errors import UnavailableError
from mosslite.service.storage.directory import DirectoryStorage
from mosslite.service.storage.memory import MemoryStorage
from mosslite.service.storage.s3 import PART_BYTES

from ..s3_proxy import FaultProxy
from ..seaweedfs import SeaweedFS
from .test_storage import s3_storage

#: Retries that give up fast (the default waits up to a minute).
FAST = {"max_retries": 2, "backoff": {"init_backoff": timedelta(milliseconds=10), "max_backoff": timedelta(milliseconds=50)}}


@pytest.fixture
def proxy(seaweedfs: SeaweedFS):
    with FaultProxy(seaweedfs.endpoint) as running:
        yield running


def big_file(tmp_path: Path, parts: int) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(PART_BYTES * parts + 12345))
    return path


def test_a_failed_multipart_upload_leaves_no_object_and_no_pending_upload(
    seaweedfs: SeaweedFS, proxy: FaultProxy, tmp_path: Path
) -> None:
    storage = s3_storage(seaweedfs, proxy.url, retry=FAST)
    storage.put_bytes("p/i/0000000001.sqlite", b"the old object")
    proxy.fail = lambda seen: 500 if seen.method == "PUT" and "partNumber=2" in seen.path else None
    with pytest.raises(UnavailableError, match="object store s3://"):
        storage.put("p/i/0000000001.sqlite", big_file(tmp_path, 3))
    assert any("partNumber=2" in s.path for s in proxy.failed)  # it was a multipart upload, cut
    assert storage.read_bytes("p/i/0000000001.sqlite") == b"the old object"  # readers saw no change
    assert seaweedfs.pending_uploads(storage.prefix) == []  # aborted: nothing left to pay for
    with pytest.raises(UnavailableError):
        storage.put("p/i/0000000002.sqlite", big_file(tmp_path, 3))
    assert storage.list("p/") == ["p/i/0000000001.sqlite"]


def test_a_large_file_goes_up_in_parts_and_comes_back_whole(seaweedfs: SeaweedFS, proxy: FaultProxy, tmp_path: Path) -> None:
    storage = s3_storage(seaweedfs, proxy.url)
    source = big_file(tmp_path, 2)
    storage.put("k", source, move=True)
    assert sum("partNumber=" in s.path for s in proxy.seen) == 3 and not source.exists()
    assert storage.size("k") == PART_BYTES * 2 + 12345


def test_a_listing_past_one_page(seaweedfs: SeaweedFS) -> None:
    storage = s3_storage(seaweedfs)
    keys = [f"p/i/{n:010d}.sqlite.pages" for n in range(1, 1051)]  # the store answers 1,000 a page
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: storage.put_bytes(key, b"x"), keys))
    assert storage.list("p/") == keys


def test_5xx_answers_are_retried_with_backoff(seaweedfs: SeaweedFS, proxy: FaultProxy) -> None:
    storage = s3_storage(seaweedfs, proxy.url, retry=FAST)
    proxy.fail = lambda seen: 503 if seen.number in (0, 1, 3) else None
    storage.put_bytes("k", b"value")  # 503, 503, then stored
    assert storage.read_bytes("k") == b"value"  # 503, then read
    assert [s.number for s in proxy.failed] == [0, 1, 3] and len(proxy.seen) == 5


def test_a_store_that_stays_down_is_unavailable(seaweedfs: SeaweedFS, proxy: FaultProxy) -> None:
    storage = s3_storage(seaweedfs, proxy.url, retry=FAST)
    proxy.fail = lambda seen: 503
    with pytest.raises(UnavailableError, match="503"):
        storage.read_bytes("k")
    assert len(proxy.failed) == 3  # the first try and two retries


def test_a_request_that_times_out_is_retried(seaweedfs: SeaweedFS, proxy: FaultProxy) -> None:
    # (1.5 s: the retry's own request must fit in it on a machine busy with other tests)
    storage = s3_storage(seaweedfs, proxy.url, retry=FAST, request_timeout_s=1.5)
    storage.put_bytes("k", b"value")
    proxy.stall_s = 4.0
    proxy.fail = lambda seen: "stall" if seen.number == 1 else None
    assert storage.read_bytes("k") == b"value"
    assert [s.number for s in proxy.failed] == [1] and proxy.seen[2].path == proxy.seen[1].path


def test_a_signed_url_opens_its_object_and_no_other(seaweedfs: SeaweedFS) -> None:
    storage = s3_storage(seaweedfs)
    storage.put_bytes("a/faq/0000000001.sqlite", b"project a's bytes")
    storage.put_bytes("b/faq/0000000001.sqlite", b"project b's bytes")
    url = storage.signed_url("a/faq/0000000001.sqlite", 60)
    assert httpx.get(url).content == b"project a's bytes"
    ranged = httpx.get(url, headers={"Range": "bytes=8-"})
    assert (ranged.status_code, ranged.content) == (206, b"a's bytes")
    assert httpx.get(url.replace("/a/faq/", "/b/faq/")).status_code == 403  # the signature covers the key
    assert httpx.put(url, content=b"overwritten").status_code == 403  # and the method
    assert storage.read_bytes("a/faq/0000000001.sqlite") == b"project a's bytes"


def test_a_signed_url_stops_working_when_it_expires(seaweedfs: SeaweedFS) -> None:
    storage = s3_storage(seaweedfs)
    storage.put_bytes("k", b"bytes")
    url = storage.signed_url("k", 3)  # (signed to the second: at least 2 s to use it, on a busy machine too)
    assert httpx.get(url).status_code == 200
    deadline = time.monotonic() + 30
    while httpx.get(url).status_code == 200:  # the store itself refuses it once expired: no clock of ours decides
        assert time.monotonic() < deadline, "a link of 3 s still opened its object after 30 s"
        time.sleep(0.5)
    assert httpx.get(url).status_code == 403


def test_other_backends_have_no_signed_urls(tmp_path: Path) -> None:
    assert DirectoryStorage(tmp_path).signed_url("k", 60) is None
    assert MemoryStorage().signed_url("k", 60) is None


