"""The job pipeline as the service sees it: every status and phase, in order, and
the requests it refuses before a job exists."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from mosslite import DocumentInfo, Job
from mosslite._background import LOW_PRIORITY_NICE
from mosslite.errors import ProjectNotFoundError
from mosslite._fs import sha256_file
from mosslite.service import Service, build
from mosslite.service.storage.memory import MemoryStorage

from ..test_fs import nice_of_this_thread


def test_full_status_and_phase_sequence(tmp_path: Path) -> None:
    service = Service(tmp_path)
    events: list[Job] = []
    service.listeners.append(lambda project, job: events.append(job))
    service.adopt_key("p", "k")
    try:
        result = service.create_index("p", "faq", [DocumentInfo(id=f"d{i}", text=f"text {i}") for i in range(100)],
                                      model_id="hashed-ngrams-256")
        assert service.wait_idle(30)
    finally:
        service.close()
    assert {e.job_id for e in events} == {result.job_id}
    statuses = [e.status for e in events]
    assert statuses[:3] == ["pending_upload", "uploading", "building"] and statuses[-1] == "completed"
    assert set(statuses[2:-1]) == {"building"}
    phases = [e.current_phase for e in events if e.current_phase]
    order = ["generating_embeddings", "building_index", "uploading", "publishing"]
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == order
    progress = [e.progress for e in events]
    assert progress == sorted(progress) and progress[-1] == 100.0
    assert events[-1].version == 1 and events[-1].completed_at


def test_mutation_without_embedding_work_skips_that_phase(tmp_path: Path) -> None:
    service = Service(tmp_path)
    service.adopt_key("p", "k")
    service.create_index("p", "faq", [DocumentInfo(id="a", text="x")], model_id="hashed-ngrams-256")
    assert service.wait_idle(30)
    events: list[Job] = []
    service.listeners.append(lambda project, job: events.append(job))
    try:
        service.delete_docs("p", "faq", ["a"])
        assert service.wait_idle(30)
    finally:
        service.close()
    phases = {e.current_phase for e in events} - {None}
    assert phases == {"building_index", "uploading", "publishing"}
    assert events[-1].status == "completed" and events[-1].doc_count == 1


def test_an_index_in_a_project_without_keys_is_a_typed_error(tmp_path: Path) -> None:
    service = Service(tmp_path)
    try:
        docs = [DocumentInfo(id="a", text="alpha")]
        with pytest.raises(ProjectNotFoundError, match="'nobody' does not exist"):
            service.create_index("nobody", "faq", docs, "hashed-ngrams-256")
        assert service.list_indexes("nobody") == []
        service.create_key("nobody")  # a key makes the project; then it works
        assert service.create_index("nobody", "faq", docs, "hashed-ngrams-256").job_id
    finally:
        service.close()


@pytest.mark.parametrize("storage", ["directory", "memory"])
def test_an_index_created_again_shares_nothing_with_the_deleted_one(tmp_path: Path, storage: str) -> None:
    # The new index reuses the old one's storage keys (version 1, 2, ...). Cached
    # readers and local copies once served the old documents, and the old version 1
    # became the base of the new version 2.
    service = Service(tmp_path / "svc", storage=MemoryStorage() if storage == "memory" else None)
    service.adopt_key("p", "k")
    model = "hashed-ngrams-256"
    try:
        service.create_index("p", "faq", [DocumentInfo(id="old", text="the old one")], model_id=model)
        assert service.wait_idle(30)
        assert [d.id for d in service.get_docs_page("p", "faq").docs] == ["old"]
        service.delete_index("p", "faq")
        assert not [p for p in (tmp_path / "svc" / "staging").rglob("*") if p.is_file()]
        service.create_index("p", "faq", [DocumentInfo(id="new", text="the new one")], model_id=model)
        assert service.wait_idle(30)
        assert [d.id for d in service.get_docs_page("p", "faq").docs] == ["new"]
        service.add_docs("p", "faq", [DocumentInfo(id="more", text="and more")], None)
        assert service.wait_idle(30)
        assert service.get_index("p", "faq").version == 2
        assert sorted(d.id for d in service.get_docs_page("p", "faq").docs) == ["more", "new"]
    finally:
        service.close()


def test_a_base_this_process_just_wrote_is_not_hashed_again_unless_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[Path] = []
    monkeypatch.setattr(build, "sha256_file", lambda path: hashed.append(path) or sha256_file(path))
    service = Service(tmp_path / "svc")
    service.adopt_key("p", "k")
    try:
        service.create_index("p", "faq", [DocumentInfo(id="a", text="first")], model_id="hashed-ngrams-256")
        for n, text in enumerate(["second", "third"]):
            service.add_docs("p", "faq", [DocumentInfo(id=f"d{n}", text=text)], None)
            assert service.wait_idle(30)
        assert hashed == [] and service.get_index("p", "faq").version == 3  # each base was the build before's
        stored = service.storage.local_path(service.version_record("p", "faq", 3).storage_key)
        os.link(stored, tmp_path / "cached.sqlite")  # an embedded client's cache links it: its ctime changes
        service.add_docs("p", "faq", [DocumentInfo(id="d8", text="linked")], None)
        assert service.wait_idle(30)
        assert hashed == [] and service.get_index("p", "faq").version == 4  # still known: its bytes are as written
        stored = service.storage.local_path(service.version_record("p", "faq", 4).storage_key)
        os.utime(stored, ns=(time.time_ns(), time.time_ns()))  # touched: no longer known to be what was written
        service.add_docs("p", "faq", [DocumentInfo(id="d9", text="fourth")], None)
        assert service.wait_idle(30)
        assert hashed == [stored] and service.get_index("p", "faq").version == 5  # hashed, and it was right
    finally:
        service.close()


def test_a_version_file_changed_after_publishing_is_never_built_on(tmp_path: Path) -> None:
    # A byte of a document's text changed in place (bit rot, or an edit through the
    # cache's hard link): still a valid SQLite file, but not the published one.
    service = Service(tmp_path / "svc")
    service.adopt_key("p", "k")
    model = "hashed-ngrams-256"
    try:
        service.create_index("p", "faq", [DocumentInfo(id="a", text="the published words")], model_id=model)
        assert service.wait_idle(30)
        stored = service.storage.local_path(service.version_record("p", "faq", 1).storage_key)
        data = stored.read_bytes()
        stored.chmod(0o644)
        stored.write_bytes(data.replace(b"the published words", b"the publishEd words"))  # same length
        result = service.add_docs("p", "faq", [DocumentInfo(id="b", text="more")], None)
        assert service.wait_idle(30)
        job = service.get_job("p", result.job_id)
        assert job.status == "failed" and "not the file that was published" in (job.error or "")
        assert service.get_index("p", "faq").version == 1
    finally:
        service.close()


# -- the pool: bounded, fair, and deletions stop what they orphan (issue #8) ---------------


class Gate:
    """A listener that holds the worker running ``index``'s first job at its 'building'
    report until ``open()``: lets a test queue work behind a job that is surely running."""

    def __init__(self, index: str) -> None:
        self.index, self.held, self.released = index, threading.Event(), threading.Event()

    def __call__(self, project: str, job: Job) -> None:
        if job.index_name == self.index and job.status == "building" and not self.held.is_set():
            self.held.set()
            assert self.released.wait(30)

    def open(self) -> None:
        self.released.set()


def job_threads() -> int:
    return sum(t.name == "mosslite-job" for t in threading.enumerate())


def test_many_indexes_at_once_share_a_bounded_pool_of_workers(tmp_path: Path) -> None:
    service = Service(tmp_path, job_workers=2)
    service.adopt_key("p", "k")
    seen: list[int] = []
    service.listeners.append(lambda project, job: seen.append(job_threads()))
    try:
        results = [
            service.create_index("p", f"ix{i}", [DocumentInfo(id="a", text=f"text {i}")], "hashed-ngrams-256")
            for i in range(12)
        ]
        assert service.wait_idle(60)
        assert {service.get_job("p", r.job_id).status for r in results} == {"completed"}
    finally:
        service.close()
    assert max(seen) <= 2  # 12 indexes, 2 threads (each index had one of its own before)
    assert job_threads() == 0  # and none linger once the queue is empty


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux gives a thread its own nice value")
def test_jobs_build_at_a_low_priority_and_leave_the_caller_as_it_was(tmp_path: Path) -> None:
    service = Service(tmp_path)
    service.adopt_key("p", "k")
    mine = nice_of_this_thread()
    seen: dict[str, int] = {}
    service.listeners.append(lambda project, job: seen.setdefault(job.status, nice_of_this_thread()))
    try:
        result = service.create_index("p", "ix", [DocumentInfo(id="a", text="text")], "hashed-ngrams-256")
        assert service.wait_idle(60)
        assert service.get_job("p", result.job_id).status == "completed"
    finally:
        service.close()
    assert seen["building"] == seen["completed"] == max(mine, LOW_PRIORITY_NICE)  # told from the job's thread
    assert nice_of_this_thread() == mine


def test_one_index_with_a_long_queue_takes_turns_with_another(tmp_path: Path) -> None:
    service = Service(tmp_path, job_workers=1)
    service.adopt_key("p", "k")
    model = "hashed-ngrams-256"
    try:
        for name in ("busy", "quiet"):
            service.create_index("p", name, [DocumentInfo(id="seed", text="seed")], model)
        assert service.wait_idle(30)
        gate = Gate("busy")
        finished: list[str] = []
        service.listeners += [gate, lambda project, job: job.status == "completed" and finished.append(job.index_name)]
        for i in range(4):
            service.add_docs("p", "busy", [DocumentInfo(id=f"b{i}", text="more")], None)
        assert gate.held.wait(30)  # busy's first add is running, three more are queued ...
        service.add_docs("p", "quiet", [DocumentInfo(id="q", text="one")], None)  # ... and then this one
        gate.open()
        assert service.wait_idle(60)
    finally:
        service.close()
    assert finished == ["busy", "quiet", "busy", "busy", "busy"]


def test_deleting_an_index_stops_its_jobs_and_leaves_nothing_of_it(tmp_path: Path) -> None:
    service = Service(tmp_path, job_workers=1)
    service.adopt_key("p", "k")
    model = "hashed-ngrams-256"
    try:
        service.create_index("p", "keep", [DocumentInfo(id="k", text="kept")], model)
        service.create_index("p", "gone", [DocumentInfo(id="a", text="first")], model)
        assert service.wait_idle(30)
        gate = Gate("gone")
        service.listeners.append(gate)
        running = service.add_docs("p", "gone", [DocumentInfo(id="b", text="second")], None)
        assert gate.held.wait(30)
        queued = service.add_docs("p", "gone", [DocumentInfo(id="c", text="third")], None)
        service.delete_index("p", "gone")
        gate.open()
        assert service.wait_idle(30)
        for result in (running, queued):
            job = service.get_job("p", result.job_id)
            assert job.status == "failed" and "deleted" in (job.error or ""), job
        assert [i.name for i in service.list_indexes("p")] == ["keep"]
    finally:
        service.close()
    leftovers = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "gone" in str(p)]
    assert leftovers == []  # no version, page map, manifest, lock file, batch or folder
    assert not list((tmp_path / "batches").iterdir())
    assert not (tmp_path / "storage" / "p" / "gone").exists()
