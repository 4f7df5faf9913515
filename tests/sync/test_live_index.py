"""LiveIndex (sync/live_index.py): a query keeps the reader it started on, a swap is
atomic, and a retired reader is closed, and its file deleted, only after its last
query (issue #4). On real version files."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from mosslite import MossClient, QueryOptions, SyncMossClient, Version, build_version
from mosslite.client.embedded import close_embedded_services
from mosslite.embeddings.hashed import HashedNgramEmbedder
from mosslite.index.reader import IndexReader
from mosslite.sync.live_index import LiveIndex

from .conftest import MODEL, publish, versioned_docs, wait_for


def version_file(folder: Path, version: int) -> Path:
    path = folder / Version(version).filename()
    build_version(path, embedder=HashedNgramEmbedder(), index_name="faq", version=Version(version), upserts=versioned_docs(version))
    return path


def test_a_lease_keeps_its_reader_across_a_swap_and_the_last_one_retires_it(tmp_path: Path) -> None:
    retired: list[IndexReader] = []
    live = LiveIndex(IndexReader(version_file(tmp_path, 1)), on_retired=retired.append)
    with live.lease() as old:
        old_reader = live.swap(IndexReader(version_file(tmp_path, 2)))
        assert old_reader is old and live.version == 2  # new leases get v2 at once
        with live.lease() as new:
            assert new.query("marker").docs[0].metadata["v"] == "2"
        assert old.query("marker").docs[0].metadata["v"] == "1"  # the running query: still v1
        assert not old.closed and old.path.exists() and retired == []
    wait_for(lambda: retired == [old])  # released: closed and deleted (off-thread)
    assert old.closed and not old.path.exists()
    live.close()


def test_a_reader_no_query_holds_is_retired_by_the_swap_itself(tmp_path: Path) -> None:
    retired: list[IndexReader] = []
    first = IndexReader(version_file(tmp_path, 1))
    live = LiveIndex(first, on_retired=retired.append)
    live.swap(IndexReader(version_file(tmp_path, 2)))
    assert retired == [first] and first.closed and not first.path.exists()  # before swap returned
    live.close()


def test_a_swap_to_the_same_file_keeps_it(tmp_path: Path) -> None:
    path = version_file(tmp_path, 1)
    first = IndexReader(path)
    live = LiveIndex(first)
    live.swap(IndexReader(path))
    assert first.closed and path.exists() and not live.reader.closed
    live.close()


def test_close_keeps_the_file_unless_asked_and_is_idempotent(tmp_path: Path) -> None:
    kept, deleted = version_file(tmp_path, 1), version_file(tmp_path, 2)
    for path, delete_file in ((kept, False), (deleted, True)):
        retired: list[IndexReader] = []
        live = LiveIndex(IndexReader(path), on_retired=retired.append)
        live.close(delete_file=delete_file)
        live.close(delete_file=delete_file)
        wait_for(lambda: len(retired) == 1)
        assert retired[0].closed and path.exists() is not delete_file


def test_zero_dropped_queries_across_50_swaps(tmp_path: Path) -> None:
    """Threads and asyncio tasks query without pause while 50 versions are swapped in:
    no query fails, and every result comes from exactly one version."""

    async def main() -> tuple[int, list[BaseException], int]:
        async with MossClient("p", "k", cache_path=tmp_path / "home") as client:
            await client.wait_for_job((await client.create_index("faq", versioned_docs(1), model_id=MODEL)).job_id, 0.01)
            await client.load_index("faq")
            swaps: list = []
            client.on_swap(swaps.append)
            stop = threading.Event()
            errors: list[BaseException] = []
            counted = [0]

            def check(result) -> None:
                versions = {d.metadata["v"] for d in result.docs}
                if len(versions) != 1 or len(result.docs) != 5:
                    raise AssertionError(f"mixed or short result: {versions}")
                counted[0] += 1

            def thread_worker() -> None:
                while not stop.is_set():
                    try:
                        check(client.query_local("faq", "shared words marker", QueryOptions(top_k=5, alpha=0.5)))
                    except BaseException as exc:  # noqa: BLE001
                        errors.append(exc)

            async def task_worker() -> None:
                while not stop.is_set():
                    try:
                        check(await client.query("faq", "item marker", QueryOptions(top_k=5)))
                    except BaseException as exc:  # noqa: BLE001
                        errors.append(exc)
                    await asyncio.sleep(0)

            threads = [threading.Thread(target=thread_worker) for _ in range(4)]
            for t in threads:
                t.start()
            tasks = [asyncio.create_task(task_worker()) for _ in range(4)]
            for version in range(2, 52):
                job = await client.add_docs("faq", versioned_docs(version))
                await client.wait_for_job(job.job_id, 0.005)
                await client.load_index("faq")  # a blocking refresh: one swap per version
            stop.set()
            await asyncio.gather(*tasks)
            for t in threads:
                t.join()
            assert client.get_loaded_version("faq") == 51
            return len(swaps), errors, counted[0]

    swaps, errors, counted = asyncio.run(main())
    close_embedded_services()
    assert errors == []
    assert swaps == 50
    assert counted > 200


def test_in_flight_query_finishes_on_the_old_version(tmp_path: Path) -> None:
    with SyncMossClient("p", "k", cache_path=tmp_path / "home") as client:
        publish(client, "faq", 1)
        client.load_index("faq")
        live = client.async_client._loaded["faq"].live
        with live.lease() as old_reader:  # a query that started before the swap
            publish(client, "faq", 2)
            client.load_index("faq")
            assert client.query("faq", "marker").docs[0].metadata["v"] == "2"  # new queries: new version
            assert old_reader.query("marker").docs[0].metadata["v"] == "1"  # in flight: old version
            assert not old_reader.closed and old_reader.path.exists()
        wait_for(lambda: old_reader.closed and not old_reader.path.exists())  # drained, closed, deleted (off-thread)
    close_embedded_services()

