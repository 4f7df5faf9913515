"""Hydration, auto-refresh and hot swap: each guarantee of issue #4 as a test.

Time is controlled with ManualClock (the refresh timer), never by sleeping for
an interval; the short real waits below only wait for work already due.
"""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from mosslite import DocumentInfo, QueryOptions, SwapEvent, SyncMossClient
from mosslite.client.embedded import close_embedded_services
from mosslite.transport.http import source_folder
from mosslite.errors import (
    IndexNotFoundError,
    IndexNotLoadedError,
    InvalidArgumentError,
    UnavailableError,
)
from mosslite.index.page_patch import PageMap
from mosslite.sync.clock import ManualClock

from ..cache.conftest import damage_docs_page, versions_in
from ..client.conftest import Server
from .conftest import BOTH_STORAGES, MODEL, publish, stored, wait_for



def http_client(server: Server, home: Path, clock: ManualClock | None = None, key: str | None = None) -> SyncMossClient:
    return SyncMossClient("p", key or server.new_key("p"), url=server.url, cache_path=home, clock=clock)


def test_load_query_unload(server: Server, tmp_path: Path) -> None:
    with http_client(server, tmp_path / "home") as client:
        publish(client, "faq", 1)
        with pytest.raises(IndexNotLoadedError, match="load_index"):
            client.query("faq", "marker")
        info = client.load_index("faq")
        assert (info.version, info.doc_count, info.stale) == (1, 20, False)
        assert Path(info.path).parent == tmp_path / "home" / "cache" / source_folder(server.url) / "p" / "faq"
        result = client.query("faq", "item 3", QueryOptions(top_k=1, alpha=0.0))
        assert result.docs[0].id == "d3" and result.index_name == "faq"
        client.unload_index("faq")
        with pytest.raises(IndexNotLoadedError):
            client.query("faq", "marker")
        with pytest.raises(IndexNotLoadedError):
            client.unload_index("faq")


def test_load_again_is_a_blocking_refresh_without_redownload(server: Server, tmp_path: Path) -> None:
    with http_client(server, tmp_path / "home") as client:
        publish(client, "faq", 1)
        first = client.load_index("faq")
        mtime = Path(first.path).stat().st_mtime_ns
        again = client.load_index("faq", auto_refresh=True, polling_interval_in_seconds=30)
        assert again.path == first.path and Path(again.path).stat().st_mtime_ns == mtime
        assert (again.auto_refresh, again.polling_interval_s) == (True, 30.0)
        publish(client, "faq", 2)
        assert client.load_index("faq").version == 2
        assert client.loaded_index("faq").auto_refresh is False  # options replaced
        assert versions_in(Path(first.path).parent) == [2]  # the old file is gone


def test_cached_version_files_have_no_write_bits(server: Server, tmp_path: Path) -> None:
    # Whether downloaded, patched or hard-linked to the embedded service's own file:
    # sqlite3 (the README's inspection tool) then opens them read-only, not for editing.
    def writable(path: str) -> int:
        return stat.S_IMODE(Path(path).stat().st_mode) & 0o222

    with http_client(server, tmp_path / "home") as client:
        publish(client, "faq", 1)
        assert not writable(client.load_index("faq").path)
        publish(client, "faq", 2)
        swaps: list[SwapEvent] = []
        client.on_swap(swaps.append)
        assert not writable(client.load_index("faq").path)
        assert [s.patched_from for s in swaps] == [1]
    with SyncMossClient("p", "k", cache_path=tmp_path / "embedded") as client:
        publish(client, "faq", 1)
        assert not writable(client.load_index("faq").path)
    close_embedded_services()


def test_bad_load_arguments(server: Server, tmp_path: Path) -> None:
    with http_client(server, tmp_path / "home") as client:
        with pytest.raises(InvalidArgumentError):
            client.load_index("../etc")
        with pytest.raises(InvalidArgumentError):
            client.load_index("faq", polling_interval_in_seconds=0)
        with pytest.raises(IndexNotFoundError):
            client.load_index("missing")


@BOTH_STORAGES
def test_converges_within_one_polling_interval(server: Server, tmp_path: Path) -> None:
    clock = ManualClock()
    with http_client(server, tmp_path / "home", clock) as client:
        publish(client, "faq", 1)
        swaps = []
        client.on_swap(swaps.append)
        client.load_index("faq", auto_refresh=True, polling_interval_in_seconds=60)
        wait_for(lambda: clock.sleepers == 1)  # the refresh timer is armed
        publish(client, "faq", 2)
        clock.advance(59)
        time.sleep(0.2)
        assert client.get_loaded_version("faq") == 1  # not before the interval
        clock.advance(1)
        wait_for(lambda: client.get_loaded_version("faq") == 2 and swaps)  # the hook runs just after the swap
        assert [(s.old_version, s.new_version) for s in swaps] == [(1, 2)]
        assert swaps[0].duration_ms > 0
        assert {d.metadata["v"] for d in client.query("faq", "marker", QueryOptions(top_k=20)).docs} == {"2"}


def test_embedded_refresh_is_instant_with_watchfiles(tmp_path: Path) -> None:
    clock = ManualClock()  # never advanced: only the manifest watch can trigger the swap
    with SyncMossClient("p", "k", cache_path=tmp_path / "home", clock=clock) as client:
        publish(client, "faq", 1)
        client.load_index("faq", auto_refresh=True, polling_interval_in_seconds=3600)
        publish(client, "faq", 2)
        wait_for(lambda: client.get_loaded_version("faq") == 2)
    close_embedded_services()


def test_failed_checks_back_off_and_never_disturb_serving(server: Server, tmp_path: Path) -> None:
    clock = ManualClock()
    key = server.new_key("p")
    with http_client(server, tmp_path / "home", clock, key) as client:
        publish(client, "faq", 1)
        client.load_index("faq", auto_refresh=True, polling_interval_in_seconds=600)
        server.stop()
        wait_for(lambda: clock.sleepers == 1)
        clock.advance(600)  # check fails: service down
        wait_for(lambda: clock.sleepers == 1 and client.was_served_stale("faq"))
        assert client.query("faq", "marker").docs  # still serving v1
        clock.advance(1)  # backoff: retried after 1 s, not after another 600
        wait_for(lambda: clock.sleepers == 1)
        clock.advance(2)
        wait_for(lambda: clock.sleepers == 1)
        server.start()
        publish(SyncMossClient("p", key, url=server.url, cache_path=tmp_path / "other"), "faq", 2)
        clock.advance(4)
        wait_for(lambda: client.get_loaded_version("faq") == 2)
        assert client.was_served_stale("faq") is False


@BOTH_STORAGES
def test_offline_load_serves_the_cache_and_says_so(server: Server, tmp_path: Path) -> None:
    key = server.new_key("p")
    home = tmp_path / "home"
    with http_client(server, home, key=key) as client:
        publish(client, "faq", 1)
        client.load_index("faq")
    server.stop()
    with http_client(server, home, key=key) as offline:
        info = offline.load_index("faq", auto_refresh=True)
        assert info.stale and offline.was_served_stale("faq") and info.version == 1
        assert offline.query("faq", "marker").docs
        with pytest.raises(UnavailableError):
            offline.load_index("never-cached")


@BOTH_STORAGES
def test_a_damaged_cached_version_is_fetched_again(server: Server, tmp_path: Path) -> None:
    key, home = server.new_key("p"), tmp_path / "home"
    with http_client(server, home, key=key) as client:
        publish(client, "faq", 1)
        cached = Path(client.load_index("faq").path)
    damage_docs_page(cached)
    with http_client(server, home, key=key) as restarted:
        info = restarted.load_index("faq")
        assert (info.version, info.doc_count, info.stale) == (1, 20, False)
        assert restarted.query("faq", "item 3", QueryOptions(top_k=1, alpha=0.0)).docs[0].id == "d3"
    assert cached.read_bytes() == stored(server, "faq", 1)  # replaced by a fresh download
    damage_docs_page(cached)
    server.stop()
    with http_client(server, home, key=key) as offline:  # nothing usable offline: say so
        with pytest.raises(UnavailableError):
            offline.load_index("faq")


def test_deleted_index_is_not_served_from_cache(server: Server, tmp_path: Path) -> None:
    key = server.new_key("p")
    home = tmp_path / "home"
    with http_client(server, home, key=key) as client:
        publish(client, "faq", 1)
        client.load_index("faq")
        client.delete_index("faq")
    with http_client(server, home, key=key) as later:
        with pytest.raises(IndexNotFoundError):
            later.load_index("faq")
    assert versions_in(home / "cache" / source_folder(server.url) / "p" / "faq") == []


@BOTH_STORAGES
@pytest.mark.parametrize("damage", ["tamper", "truncate"])
def test_bad_download_is_rejected_and_old_version_keeps_serving(server: Server, tmp_path: Path, damage: str) -> None:
    with http_client(server, tmp_path / "home") as client:
        publish(client, "faq", 1)
        client.load_index("faq")
        publish(client, "faq", 2)
        data = bytearray(stored(server, "faq", 2))
        if damage == "tamper":  # in a page that changed, so the page patch carries it too
            pages = PageMap.of_chunks([bytes(data)])
            changed = pages.changed_since(PageMap.of_chunks([stored(server, "faq", 1)]))
            data[int(changed[-1]) * pages.page_size + 100] ^= 0xFF
        else:
            data = data[: len(data) // 2]
        server.storage().put_bytes("p/faq/0000000002.sqlite", bytes(data))  # (in S3: the object replaced)
        server.storage().delete("p/faq/0000000002.sqlite.from-1.patch")  # made at publish: the file is read
        from mosslite.errors import ChecksumMismatchError

        with pytest.raises(ChecksumMismatchError):
            client.load_index("faq")
        assert client.get_loaded_version("faq") == 1
        assert client.query("faq", "marker").docs[0].metadata["v"] == "1"
        index_dir = client.cache_dir / "faq"
        assert sorted(p.name for p in index_dir.iterdir()) == [".lock", Path(client.loaded_index("faq").path).name]


def test_load_indexes_reports_each_outcome(server: Server, tmp_path: Path) -> None:
    with http_client(server, tmp_path / "home") as client:
        publish(client, "a", 1)
        publish(client, "b", 1)
        result = client.load_indexes(["a", "b", "ghost", "bad/name"])
        assert sorted(result.loaded) == ["a", "b"]
        assert set(result.failed) == {"ghost", "bad/name"} and "not found" in result.failed["ghost"]


def test_query_multi_index_fuses_ranks(server: Server, tmp_path: Path) -> None:
    with http_client(server, tmp_path / "home") as client:
        for name in ("a", "b"):
            job = client.create_index(name, [DocumentInfo(id=f"{name}{i}", text=f"{name} topic {i} refunds") for i in range(5)], model_id=MODEL)
            client.wait_for_job(job.job_id, poll_interval_seconds=0.01)
        client.load_indexes(["a", "b"])
        fused = client.query_multi_index(["a", "b"], "refunds", QueryOptions(top_k=6))
        assert len(fused.docs) == 6
        assert {d.index_name for d in fused.docs} == {"a", "b"}
        assert fused.docs[0].score == 1.0 and fused.docs[1].score == 1.0  # the two first places
        scores = [d.score for d in fused.docs]
        assert scores == sorted(scores, reverse=True)
        with pytest.raises(IndexNotLoadedError):
            client.query_multi_index(["a", "zzz"], "refunds")


def test_an_index_deleted_and_made_again_is_never_served_from_the_old_files(server: Server, tmp_path: Path) -> None:
    """Version numbers restart when an index is made again under its name: a loaded or
    cached file with the same (or a higher) number is the old index's, not the new one's."""
    key, home = server.new_key("p"), tmp_path / "home"

    def remake(client, marker: str, versions: int) -> None:
        client.delete_index("faq")
        for version in range(1, versions + 1):
            docs = [DocumentInfo(id=f"d{i}", text=f"shared words {marker}", metadata={"v": marker}) for i in range(5)]
            job = client.create_index("faq", docs, model_id=MODEL) if version == 1 else client.add_docs("faq", docs)
            client.wait_for_job(job.job_id, poll_interval_seconds=0.01, timeout_seconds=30)

    with http_client(server, home, key=key) as client:
        publish(client, "faq", 1)
        publish(client, "faq", 2)
        assert client.load_index("faq").version == 2
        remake(client, "second", 1)  # loaded: v2 of the old index; published: v1 of the new
        assert client.load_index("faq").version == 1
        assert {d.metadata["v"] for d in client.query("faq", "shared words").docs} == {"second"}
        remake(client, "third", 1)  # loaded: v1 of the second index; published: v1 of the third
        client.load_index("faq")
        assert {d.metadata["v"] for d in client.query("faq", "shared words").docs} == {"third"}
    with http_client(server, home, key=key) as other:
        remake(other, "fourth", 1)  # while the first client is gone; its cache holds the third's v1
    with http_client(server, home, key=key) as restarted:
        assert restarted.load_index("faq").version == 1
        assert {d.metadata["v"] for d in restarted.query("faq", "shared words").docs} == {"fourth"}


def test_a_reader_of_the_old_index_reads_its_own_file_while_the_new_one_arrives(server: Server, tmp_path: Path) -> None:
    """The old index's v1 and the new index's v1 are two files. A query still running on
    the old reader when the new one is installed, and needing one more connection,
    once opened the new index's file, put under the same name."""
    key, home = server.new_key("p"), tmp_path / "home"

    def make(client, marker: str) -> None:
        docs = [DocumentInfo(id=f"d{i}", text=f"shared words {marker}", metadata={"v": marker}) for i in range(5)]
        client.wait_for_job(client.create_index("faq", docs, model_id=MODEL).job_id, timeout_seconds=30)

    with http_client(server, home, key=key) as client:
        make(client, "first")
        old_path = Path(client.load_index("faq").path)
        with client._client._loaded["faq"].live.lease() as old:  # a query on the old reader ...
            client.delete_index("faq")
            make(client, "second")
            new_path = Path(client.load_index("faq").path)
            with old._conn():  # ... holds a connection: the next one is opened now
                assert {d.metadata["v"] for d in old.query("shared words").docs} == {"first"}
        assert client.get_loaded_version("faq") == 1 and new_path != old_path
        assert {d.metadata["v"] for d in client.query("faq", "shared words").docs} == {"second"}
    assert versions_in(new_path.parent) == [1] and not old_path.exists()  # the old file went with its reader


def test_offline_load_never_serves_an_earlier_index_of_the_same_name(server: Server, tmp_path: Path) -> None:
    """A cache can hold the old index's v2 beside the new index's v1: the newest file
    by number is not the one to serve offline."""
    key, home = server.new_key("p"), tmp_path / "home"
    with http_client(server, home, key=key) as client:
        publish(client, "faq", 1)
        publish(client, "faq", 2)
        assert client.load_index("faq").version == 2  # the cache keeps v2 after this client exits
    with http_client(server, tmp_path / "elsewhere", key=key) as other:
        other.delete_index("faq")
        publish(other, "faq", 1)
    with http_client(server, home, key=key) as restarted:
        assert restarted.load_index("faq").version == 1
    assert versions_in(home / "cache" / source_folder(server.url) / "p" / "faq") == [1]  # the old index's v2 is gone
    server.stop()
    with http_client(server, home, key=key) as offline:
        assert offline.load_index("faq").version == 1 and offline.was_served_stale("faq")
