"""The job pipeline as the service sees it: every status and phase, in order, and
the requests it refuses before a job exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from mosslite import DocumentInfo, Job
from mosslite.errors import ProjectNotFoundError
from mosslite.service import Service


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
