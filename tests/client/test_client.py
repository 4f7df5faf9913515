"""The client suite, run over both transports (embedded and a real HTTP server)."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

import numpy as np
import pytest

from mosslite import DocumentInfo, JobStatus, MossClient, MutationOptions, SyncMossClient
from mosslite.client.embedded import close_embedded_services
from mosslite.errors import (
    ClosedError,
    ConflictError,
    DimensionMismatchError,
    IndexNotFoundError,
    InvalidArgumentError,
    InvalidDocumentError,
    InvalidNameError,
    JobFailedError,
    JobNotFoundError,
    ModelNotFoundError,
    PayloadTooLargeError,
    UnauthorizedError,
)
from mosslite.types import MAX_DOC_TEXT_BYTES

from .conftest import Target

MODEL = "hashed-ngrams-256"
STATUS_ORDER = ["pending_upload", "uploading", "building", "completed"]
PHASE_ORDER = ["generating_embeddings", "building_index", "uploading", "publishing"]


def docs(n: int, prefix: str = "d", text: str = "document about refunds and shipping") -> list[DocumentInfo]:
    return [DocumentInfo(id=f"{prefix}{i}", text=f"{text} number {i}", metadata={"n": str(i)}) for i in range(n)]


def build(client, name: str = "faq", n: int = 5, model: str = MODEL):
    job = client.create_index(name, docs(n), model_id=model)
    return client.wait_for_job(job.job_id, poll_interval_seconds=0.02, timeout_seconds=30)


def test_create_wait_get(client) -> None:
    result = client.create_index("faq", docs(5), model_id=MODEL)
    assert result.index_name == "faq" and result.doc_count == 5 and result.job_id
    job = client.wait_for_job(result.job_id, poll_interval_seconds=0.02, timeout_seconds=30)
    assert (job.status, job.version, job.progress, job.error) == ("completed", 1, 100.0, None)
    info = client.get_index("faq")
    assert (info.name, info.version, info.status, info.doc_count, info.model) == ("faq", 1, "ready", 5, MODEL)
    assert [i.name for i in client.list_indexes()] == ["faq"]
    got = client.get_docs("faq", ids=["d3", "d1"])
    assert [d.id for d in got] == ["d3", "d1"] and got[0].metadata == {"n": "3"}
    filtered = client.get_docs("faq", filter={"field": "n", "condition": {"$gte": "3"}})
    assert sorted(d.id for d in filtered) == ["d3", "d4"]
    assert all(len(d.embedding) == 256 for d in got + filtered)
    bare = client.get_docs("faq", ids=["d3", "d1"], include_embedding=False)
    assert [(d.id, d.text, d.metadata, d.embedding) for d in bare] == [(d.id, d.text, d.metadata, None) for d in got]


def test_job_status_sequence_is_ordered(client) -> None:
    job = client.create_index("seq", docs(300), model_id="slow-hashed")
    seen: list[str] = []
    phases: list[str] = []
    progress: list[float] = []
    while True:
        status = client.get_job_status(job.job_id)
        if not seen or seen[-1] != status.status:
            seen.append(status.status)
        if status.current_phase and (not phases or phases[-1] != status.current_phase):
            phases.append(status.current_phase)
        progress.append(status.progress)
        if status.done:
            break
        time.sleep(0.01)
    # Polling may miss short states; what it sees must still be in order, never backwards.
    assert seen[-1] == "completed" and "building" in seen
    assert seen == sorted(seen, key=STATUS_ORDER.index)
    assert "generating_embeddings" in phases  # the long phase here
    assert phases == sorted(phases, key=PHASE_ORDER.index)
    assert progress == sorted(progress) and progress[-1] == 100.0


def test_add_and_delete_make_new_versions(client) -> None:
    build(client)
    add = client.add_docs("faq", [DocumentInfo(id="x", text="gift cards"), DocumentInfo(id="d0", text="changed")])
    assert add.doc_count == 2
    client.wait_for_job(add.job_id, poll_interval_seconds=0.02, timeout_seconds=30)
    assert client.get_index("faq").version == 2 and client.get_index("faq").doc_count == 6
    assert client.get_docs("faq", ids=["d0"])[0].text == "changed"
    delete = client.delete_docs("faq", ["x", "d1", "not-there"])
    client.wait_for_job(delete.job_id, poll_interval_seconds=0.02, timeout_seconds=30)
    info = client.get_index("faq")
    assert (info.version, info.doc_count) == (3, 4)


def test_jobs_on_one_index_run_in_order(client) -> None:
    build(client)
    jobs = [client.add_docs("faq", [DocumentInfo(id=f"k{i}", text=f"text {i}")]) for i in range(5)]
    done = [client.wait_for_job(j.job_id, poll_interval_seconds=0.02, timeout_seconds=30) for j in jobs]
    assert [j.version for j in done] == [2, 3, 4, 5, 6]
    assert client.get_index("faq").doc_count == 10


def test_failed_build_keeps_previous_version(client) -> None:
    build(client, model="flaky-hashed")
    bad = client.add_docs("faq", [DocumentInfo(id="boom", text="EXPLODE please")])
    with pytest.raises(JobFailedError, match="crashed on purpose"):
        client.wait_for_job(bad.job_id, poll_interval_seconds=0.02, timeout_seconds=30)
    job = client.get_job_status(bad.job_id)
    assert job.status == JobStatus.FAILED and "crashed on purpose" in job.error
    info = client.get_index("faq")
    assert (info.version, info.doc_count, info.status) == (1, 5, "ready")
    assert client.get_docs("faq", ids=["boom"]) == []
    ok = client.add_docs("faq", [DocumentInfo(id="fine", text="calm text")])
    assert client.wait_for_job(ok.job_id, poll_interval_seconds=0.02, timeout_seconds=30).version == 2


def test_failed_first_build_marks_index_failed(client) -> None:
    job = client.create_index("broken", [DocumentInfo(id="a", text="EXPLODE")], model_id="flaky-hashed")
    with pytest.raises(JobFailedError):
        client.wait_for_job(job.job_id, poll_interval_seconds=0.02, timeout_seconds=30)
    assert client.get_index("broken").status == "failed"


def test_custom_embeddings(client) -> None:
    vectors = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    job = client.create_index("vec", [DocumentInfo(id=f"v{i}", text="t", embedding=v) for i, v in enumerate(vectors)], model_id="custom")
    client.wait_for_job(job.job_id, poll_interval_seconds=0.02, timeout_seconds=30)
    info = client.get_index("vec")
    assert (info.model, info.dimension) == ("custom", 3)
    with pytest.raises(DimensionMismatchError):
        client.add_docs("vec", [DocumentInfo(id="w", text="t", embedding=[1.0, 2.0])])
    with pytest.raises(InvalidDocumentError, match="no embedding"):
        client.add_docs("vec", [DocumentInfo(id="w", text="t")])
    with pytest.raises(InvalidDocumentError):
        client.create_index("vec2", [DocumentInfo(id="w", text="t")], model_id="custom")


# -- bad input: typed errors, nothing stored ---------------------------------


@pytest.mark.parametrize("name", ["", "a/b", "..", "../x", "a\x00b", "a\nb", "x" * 200, ".hidden"])
def test_bad_index_names(client, name: str) -> None:
    with pytest.raises(InvalidNameError):
        client.create_index(name, docs(1), model_id=MODEL)
    assert client.list_indexes() == []


def test_existing_index_is_a_conflict(client) -> None:
    build(client)
    with pytest.raises(ConflictError):
        client.create_index("faq", docs(1), model_id=MODEL)
    assert client.get_index("faq").doc_count == 5


def test_insert_without_upsert_on_existing_id(client) -> None:
    build(client)
    with pytest.raises(ConflictError, match="upsert"):
        client.add_docs("faq", [DocumentInfo(id="d1", text="dup")], MutationOptions(upsert=False))
    assert client.get_index("faq").version == 1
    assert client.get_docs("faq", ids=["d1"])[0].text != "dup"
    ok = client.add_docs("faq", [DocumentInfo(id="new", text="fresh")], MutationOptions(upsert=False))
    client.wait_for_job(ok.job_id, poll_interval_seconds=0.02, timeout_seconds=30)


def test_oversized_document(client) -> None:
    build(client)
    with pytest.raises(PayloadTooLargeError):
        client.add_docs("faq", [DocumentInfo(id="big", text="x" * (MAX_DOC_TEXT_BYTES + 1))])


def test_duplicate_ids_in_batch(client) -> None:
    with pytest.raises(InvalidDocumentError, match="duplicate"):
        client.create_index("faq", [DocumentInfo(id="a", text="1"), DocumentInfo(id="a", text="2")], model_id=MODEL)
    assert client.list_indexes() == []


def test_wrong_argument_types_are_typed_errors(client) -> None:
    # Slips a user makes; each once surfaced as an AttributeError or TypeError from deep inside.
    build(client)
    for bad_docs in (None, DocumentInfo(id="a", text="one"), "text", [{"id": "a", "text": "x"}]):
        with pytest.raises(InvalidDocumentError):
            client.add_docs("faq", bad_docs)
        with pytest.raises(InvalidDocumentError):
            client.create_index("other", bad_docs, model_id=MODEL)
    with pytest.raises(InvalidArgumentError, match="MutationOptions"):
        client.add_docs("faq", docs(1), True)
    client.wait_for_job(client.add_docs("faq", (d for d in docs(2, prefix="gen"))).job_id, 0.02, 30)  # any iterable
    client.load_index("faq")
    with pytest.raises(InvalidArgumentError, match="QueryOptions"):
        client.query("faq", "refunds", {"top_k": 1})
    with pytest.raises(InvalidArgumentError, match="QueryOptions"):
        client.query_multi_index(["faq"], "refunds", {"top_k": 1})
    for interval in ("x", "5", 0, -1, float("nan"), float("inf"), True, None, [5]):
        with pytest.raises(InvalidArgumentError, match="polling_interval_in_seconds"):
            client.load_index("faq", auto_refresh=True, polling_interval_in_seconds=interval)
    for interval, seconds in ((np.int64(30), 30.0), (Decimal("0.5"), 0.5)):
        assert client.load_index("faq", auto_refresh=True, polling_interval_in_seconds=interval).polling_interval_s == seconds
    assert client.get_index("faq").doc_count == 7 and len(client.query("faq", "refunds").docs) == 5


def test_a_closed_client_says_so(target: Target) -> None:
    client = target.client()
    build(client)
    client.load_index("faq")
    async_client = client.async_client
    client.close()
    client.close()  # twice is fine
    for call in (lambda: client.list_indexes(), lambda: client.query("faq", "refunds"), lambda: client.load_index("faq")):
        with pytest.raises(ClosedError):
            call()
    with pytest.raises(ClosedError):
        async_client.query_local("faq", "refunds")
    with pytest.raises(ClosedError):
        asyncio.run(async_client.query("faq", "refunds"))
    with pytest.raises(ClosedError):
        asyncio.run(async_client.unload_index("faq"))
    close_embedded_services()


@pytest.mark.parametrize("url", ["localhost:8700", "127.0.0.1:8700", "ftp://host", "http://", "", "http://[::1"])
def test_a_malformed_service_url_is_an_invalid_argument(url: str, tmp_path) -> None:
    with pytest.raises(InvalidArgumentError, match="url must be"):
        MossClient("p", "k", url=url, cache_path=tmp_path)
    def loop_threads() -> set[threading.Thread]:  # (other tests' threads come and go meanwhile)
        return {t for t in threading.enumerate() if t.name == "mosslite-loop"}

    before = loop_threads()
    with pytest.raises(InvalidArgumentError, match="url must be"):
        SyncMossClient("p", "k", url=url, cache_path=tmp_path)
    assert loop_threads() <= before  # its loop thread stopped too


def test_unknown_things_are_not_found(client) -> None:
    with pytest.raises(IndexNotFoundError):
        client.get_index("nope")
    with pytest.raises(IndexNotFoundError):
        client.delete_index("nope")
    with pytest.raises(IndexNotFoundError):
        client.add_docs("nope", docs(1))
    with pytest.raises(IndexNotFoundError):
        client.delete_docs("nope", ["a"])
    with pytest.raises(IndexNotFoundError):
        client.get_docs("nope")
    with pytest.raises(JobNotFoundError):
        client.get_job_status("job_0000")
    with pytest.raises(ModelNotFoundError):
        client.create_index("faq", docs(1), model_id="no-such-model")


def test_delete_index(client) -> None:
    build(client)
    client.delete_index("faq")
    assert client.list_indexes() == []
    with pytest.raises(IndexNotFoundError):
        client.get_index("faq")
    build(client)  # the name is free again
    assert client.get_index("faq").version == 1


def test_wrong_key_is_unauthorized(target: Target) -> None:
    good = target.client("proj-a")
    try:
        build(good)
    finally:
        good.close()
    with pytest.raises(UnauthorizedError):
        bad = target.client("proj-a", key="wrong-key")
        bad.list_indexes()


def test_projects_are_isolated(target: Target) -> None:
    a, b = target.client("proj-a"), target.client("proj-b")
    try:
        build(a, "secret")
        job = a.add_docs("secret", docs(1, "z"))
        assert b.list_indexes() == []
        for call in (
            lambda: b.get_index("secret"),
            lambda: b.get_docs("secret"),
            lambda: b.add_docs("secret", docs(1)),
            lambda: b.delete_docs("secret", ["d0"]),
            lambda: b.delete_index("secret"),
        ):
            with pytest.raises(IndexNotFoundError):
                call()
        with pytest.raises(JobNotFoundError):
            b.get_job_status(job.job_id)
        assert a.get_index("secret").doc_count >= 5
    finally:
        a.close()
        b.close()


def test_wait_for_job_times_out(client) -> None:
    job = client.create_index("slow", docs(400), model_id="slow-hashed")
    from mosslite.errors import TimeoutError_

    with pytest.raises(TimeoutError_):
        client.wait_for_job(job.job_id, poll_interval_seconds=0.01, timeout_seconds=0.05)
    client.wait_for_job(job.job_id, poll_interval_seconds=0.05, timeout_seconds=60)


def test_async_client_directly(target: Target) -> None:
    async def main() -> None:
        kwargs = {"cache_path": target.home}
        if target.server is not None:
            kwargs["url"] = target.server.url
            key = target.server.new_key("proj-async2")
        else:
            key = "k"
        async with MossClient("proj-async2", key, **kwargs) as client:
            jobs = await asyncio.gather(*(client.create_index(f"i{n}", docs(3), model_id=MODEL) for n in range(3)))
            done = await asyncio.gather(*(client.wait_for_job(j.job_id, 0.02, 30) for j in jobs))
            assert all(j.status == "completed" for j in done)
            assert sorted(i.name for i in await client.list_indexes()) == ["i0", "i1", "i2"]

    asyncio.run(main())


def test_run_composes_calls_of_the_async_client_on_the_loop_thread(client) -> None:
    async def create_and_wait() -> int | None:
        job = await client.async_client.create_index("composed", docs(3), model_id=MODEL)
        return (await client.async_client.wait_for_job(job.job_id, 0.02, 30)).version

    assert client.run(create_and_wait()) == 1


def test_an_interrupt_in_a_document_generator_reaches_the_caller(client, target: Target) -> None:
    # Issue #8: a KeyboardInterrupt (or SystemExit) raised by the caller's generator,
    # read on a worker thread, once killed the client's loop thread: the call hung.
    build(client)
    if target.server is not None:  # several upload parts, so one is open when it stops
        client.async_client.transport.max_request_bytes = 8192
    batches = target.home / "service" / "batches" if target.server is None else target.server.data / "batches"

    def interrupted(exc: type[BaseException]):
        yield from docs(100, prefix="g")
        raise exc

    for exc in (KeyboardInterrupt, SystemExit):
        with pytest.raises(exc):
            client.create_index("interrupted", interrupted(exc), model_id=MODEL)
        with pytest.raises(exc):
            client.add_docs("faq", interrupted(exc))
    # The loop thread serves on, and nothing was left: no index, no job, no upload.
    assert [i.name for i in client.list_indexes()] == ["faq"]
    assert client.get_index("faq").version == 1
    assert batches.is_dir() and list(batches.glob("up_*")) == []
    assert client.wait_for_job(client.add_docs("faq", docs(2, prefix="after")).job_id, 0.02, 30).version == 2


def test_job_ids_and_wait_times_are_checked_before_any_request(client) -> None:
    # Issue #8: each once raised UnicodeEncodeError, TypeError or OverflowError.
    job = build(client)
    for bad in ("\ud800", "", 5, None, "j" * 600):
        with pytest.raises(InvalidArgumentError, match="job_id"):
            client.get_job_status(bad)
        with pytest.raises(InvalidArgumentError, match="job_id"):
            client.wait_for_job(bad)
    for bad in ("5", 10**400, 10**30, -1, float("nan"), float("inf"), True, None):
        with pytest.raises(InvalidArgumentError, match="timeout_seconds"):
            client.wait_for_job(job.job_id, timeout_seconds=bad)
    for bad in ("1", 10**400, 10**30, 0, -1, float("nan"), float("inf"), False):
        with pytest.raises(InvalidArgumentError, match="poll_interval_seconds"):
            client.wait_for_job(job.job_id, poll_interval_seconds=bad)
    assert client.wait_for_job(job.job_id, np.float32(0.01), Decimal(0)).status == JobStatus.COMPLETED


def test_refresh_options_are_bounded(client) -> None:
    # Issue #8: 1e-9 s made a loaded index poll the service in a busy loop.
    build(client)
    client.load_index("faq")
    for bad in (1e-9, 0.05, 10**30, 10**400, 8 * 24 * 3600):
        with pytest.raises(InvalidArgumentError, match="polling_interval_in_seconds"):
            client.load_index("faq", auto_refresh=True, polling_interval_in_seconds=bad)
    for bad in ("no", 1, None):
        with pytest.raises(InvalidArgumentError, match="auto_refresh"):
            client.load_index("faq", auto_refresh=bad)
    assert client.loaded_index("faq").auto_refresh is False  # refused before anything changed
    for seconds in (0.1, 7 * 24 * 3600):
        assert client.load_index("faq", auto_refresh=True, polling_interval_in_seconds=seconds).polling_interval_s == seconds
    client.load_index("faq")  # (stops the refresh task)


def test_a_cache_path_must_be_a_usable_folder(client, target: Target, tmp_path) -> None:
    # Issue #8: each once raised ValueError, NotADirectoryError, FileNotFoundError,
    # TypeError or RuntimeError, from wherever the path was first used.
    build(client)
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    bad_paths = ["\x00", "", str(a_file), a_file / "below", "/dev/null", "/proc/self/x", 5, b"/tmp/x",
                 "~no-such-user-mosslite/x"]
    for bad in bad_paths:
        with pytest.raises(InvalidArgumentError, match="cache_path"):
            client.load_index("faq", cache_path=bad)
        with pytest.raises(InvalidArgumentError, match="cache_path"):
            client.session("notes", model_id=MODEL, cache_path=bad)
        with pytest.raises(InvalidArgumentError, match="cache_path"):
            MossClient("p", "k", url=target.server.url if target.server else None, cache_path=bad)
    assert a_file.read_text() == "keep me"
    assert client.list_indexes()[0].name == "faq"


def test_an_index_loaded_from_one_cache_path_is_not_silently_reloaded_from_another(client, tmp_path) -> None:
    build(client)
    first = client.load_index("faq", cache_path=tmp_path / "one")
    assert first.path.startswith(str(tmp_path / "one"))
    with pytest.raises(ConflictError, match="already loaded from") as refused:
        client.load_index("faq", cache_path=tmp_path / "two")
    assert "unload_index" in refused.value.hint
    assert client.load_index("faq").path == first.path  # no cache_path: the loaded one
    assert client.load_index("faq", cache_path=tmp_path / "x" / ".." / "one").path == first.path
    client.unload_index("faq")
    assert client.load_index("faq", cache_path=tmp_path / "two").path.startswith(str(tmp_path / "two"))
