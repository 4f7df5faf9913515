"""A job's documents (issue #7): written once to a batch file beside the catalog, never
into it; deleted when the job ends, however it ends; sent in several requests when
they do not fit one; and a push's outcome kept for its retries."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from mosslite import DocumentInfo, MutationOptions
from mosslite.errors import (
    ConflictError,
    DimensionMismatchError,
    IndexNotFoundError,
    InvalidDocumentError,
    NotFoundError,
)
from mosslite.service import Service
from mosslite.service.batches import UPLOAD_PREFIX
from mosslite.session.store import SessionStore

MODEL = "hashed-ngrams-256"


@pytest.fixture
def service(tmp_path: Path):
    svc = Service(tmp_path / "data")
    svc.adopt_key("p", "k")
    yield svc
    svc.close()


def docs(n: int, start: int = 0, dim: int | None = None) -> list[DocumentInfo]:
    rng = np.random.default_rng(start)
    return [
        DocumentInfo(
            id=f"d{i}",
            text=f"document {i} about refunds",
            metadata={"n": str(i)},
            embedding=rng.standard_normal(dim).tolist() if dim else None,
        )
        for i in range(start, start + n)
    ]


def batch_files(service: Service) -> list[str]:
    return sorted(p.name for p in service.batches.folder.iterdir())


def catalog_bytes(service: Service) -> int:
    folder = service.data_dir
    return sum(p.stat().st_size for p in folder.glob("catalog.sqlite*"))


def test_a_jobs_batch_is_deleted_when_it_completes(service: Service) -> None:
    job = service.create_index("p", "idx", docs(50), model_id=MODEL)
    assert service.wait_idle(30)
    assert service.get_job("p", job.job_id).status == "completed"
    assert batch_files(service) == []


def test_a_jobs_batch_is_deleted_when_it_fails(service: Service) -> None:
    service.create_index("p", "idx", docs(5), model_id="flaky-hashed")
    assert service.wait_idle(30)
    job = service.add_docs("p", "idx", [DocumentInfo(id="x", text="EXPLODE now")])
    assert service.wait_idle(30)
    assert service.get_job("p", job.job_id).status == "failed"
    assert batch_files(service) == []


def test_the_catalog_does_not_grow_with_the_documents_it_has_seen(service: Service) -> None:
    service.create_index("p", "small", docs(100, dim=384), model_id="custom")
    assert service.wait_idle(60)
    small = catalog_bytes(service)
    for round_ in range(3):
        service.create_index("p", f"big{round_}", docs(3000, dim=384), model_id="custom")  # ~4.6 MB of vectors each
        assert service.wait_idle(60)
    assert catalog_bytes(service) - small < 512 * 1024  # rows for three jobs and indexes, nothing per document
    assert batch_files(service) == []


def test_refused_input_queues_nothing_and_keeps_no_file(service: Service) -> None:
    def refused() -> list[DocumentInfo]:
        yield from docs(3000, dim=8)
        yield DocumentInfo(id="bad", text="a vector of the wrong width", embedding=[1.0, 2.0])

    with pytest.raises(DimensionMismatchError):
        service.create_index("p", "idx", refused(), model_id="custom")
    with pytest.raises(InvalidDocumentError, match="duplicate document id 'd3'"):
        service.create_index("p", "idx", [*docs(5), *docs(2, start=3)], model_id=MODEL)
    with pytest.raises(InvalidDocumentError, match="text SQLite cannot store"):
        service.create_index("p", "idx", [DocumentInfo(id="s", text="lone \ud800 surrogate")], model_id=MODEL)
    assert service.list_indexes("p") == [] and batch_files(service) == []
    assert service.catalog.unfinished_jobs() == []


def test_a_batch_arrives_in_several_calls_as_one_job(service: Service) -> None:
    service.create_index("p", "idx", docs(10), model_id=MODEL)
    assert service.wait_idle(30)
    upload = service.open_upload("p", "idx", "add_docs")
    assert service.append_upload("p", upload, docs(40, start=100)) == 40
    assert service.append_upload("p", upload, docs(40, start=200)) == 80
    with pytest.raises(NotFoundError):  # another project's key cannot reach it
        service.append_upload("q", upload, docs(1, start=300))
    result = service.commit_upload("p", upload)
    assert result.doc_count == 80
    assert service.wait_idle(30)
    assert service.get_index("p", "idx").doc_count == 90
    assert batch_files(service) == []
    with pytest.raises(NotFoundError):  # committed: the upload is gone
        service.commit_upload("p", upload)


def test_a_refused_part_ends_its_upload(service: Service) -> None:
    service.create_index("p", "idx", docs(3, dim=4), model_id="custom")
    assert service.wait_idle(30)
    upload = service.open_upload("p", "idx", "add_docs")
    service.append_upload("p", upload, docs(5, start=10, dim=4))
    with pytest.raises(DimensionMismatchError):
        service.append_upload("p", upload, docs(5, start=20, dim=5))
    with pytest.raises(NotFoundError):
        service.append_upload("p", upload, docs(5, start=30, dim=4))
    assert batch_files(service) == [] and service.get_index("p", "idx").version == 1


def test_commit_checks_what_needs_every_document(service: Service) -> None:
    service.create_index("p", "idx", docs(5), model_id=MODEL)
    assert service.wait_idle(30)
    with pytest.raises(IndexNotFoundError):
        service.open_upload("p", "nosuch", "add_docs")
    with pytest.raises(ConflictError):
        service.open_upload("p", "idx", "create_index")
    empty = service.open_upload("p", "idx", "add_docs")
    with pytest.raises(InvalidDocumentError, match="at least one document"):
        service.commit_upload("p", empty)
    insert = service.open_upload("p", "idx", "add_docs", upsert=False)
    service.append_upload("p", insert, docs(3, start=4))  # d4 exists
    with pytest.raises(ConflictError, match="d4"):
        service.commit_upload("p", insert)
    with pytest.raises(ConflictError):
        service.add_docs("p", "idx", docs(2, start=4), MutationOptions(upsert=False))
    assert batch_files(service) == [] and service.get_index("p", "idx").version == 1


def test_an_idle_upload_expires(service: Service) -> None:
    upload = service.open_upload("p", "idx", "create_index", model_id=MODEL)
    path = service.batches.folder / f"{upload}.sqlite"
    old = time.time() - service.batches.upload_ttl_s - 1
    os.utime(path, (old, old))
    service.open_upload("p", "other", "create_index", model_id=MODEL)  # (any new upload sweeps)
    assert not path.exists()
    with pytest.raises(NotFoundError, match="expires"):
        service.append_upload("p", upload, docs(1))
    assert [n for n in batch_files(service) if n.startswith(UPLOAD_PREFIX)] != []


def _diff(tmp_path: Path, rows: dict[str, tuple[str, bytes]]) -> bytes:
    """A session diff adding ``rows`` (id -> (text, embedding blob))."""
    store = SessionStore(tmp_path / "s.sqlite")
    store.upsert(
        [(doc_id, (text, "{}", None, blob)) for doc_id, (text, blob) in rows.items()], upsert=True
    )
    outgoing = store.outgoing()
    store.close()
    assert outgoing is not None
    return outgoing.changeset


def test_a_retried_push_gets_its_answer_after_its_base_version_is_gone(service: Service, tmp_path: Path) -> None:
    # Issue #8's worst find: the overwrite count was worked out on demand from version
    # N-1, which prune() deletes; every retry then failed and the diff never landed.
    rng = np.random.default_rng(1)
    vectors = {f"s{i}": rng.standard_normal(4).astype("<f4") for i in range(3)}
    service.create_index("p", "idx", [DocumentInfo(id="s1", text="old", embedding=vectors["s1"].tolist())], model_id="custom")
    assert service.wait_idle(30)
    changeset = _diff(tmp_path, {k: (f"text {k}", v.tobytes()) for k, v in vectors.items()})
    first = service.push("p", "idx", "diff_retry_0001", changeset, "custom", 4)  # its answer is lost
    assert service.wait_idle(30)
    applied = service.get_job("p", first.job_id).version
    for i in range(service.keep_versions + 1):  # the version the push applied onto is pruned
        service.add_docs("p", "idx", [DocumentInfo(id=f"x{i}", text="later", embedding=[1.0, 0, 0, 0])])
        assert service.wait_idle(30)
    assert not (service.data_dir / "storage" / "p" / "idx" / f"{applied - 1:010d}.sqlite").exists()
    again = service.push("p", "idx", "diff_retry_0001", changeset, "custom", 4)  # the documented retry
    # Applied once; s1 was overwritten (the session never saw its text "old").
    assert (again.job_id, again.status, again.overwritten, again.version) == (first.job_id, "completed", 1, applied)
    assert service.get_index("p", "idx").doc_count == 3 + service.keep_versions + 1
    assert batch_files(service) == []


def test_a_refused_push_creates_no_index(service: Service, tmp_path: Path) -> None:
    changeset = _diff(tmp_path, {"a": ("alpha", np.ones(4, dtype="<f4").tobytes())})
    with pytest.raises(DimensionMismatchError):
        service.push("p", "ghost", "diff_ghost_0001", changeset, "custom", 5)
    with pytest.raises(IndexNotFoundError):
        service.get_index("p", "ghost")
    result = service.push("p", "ghost", "diff_ghost_0001", changeset, "custom", 4)  # the corrected retry lands
    assert service.wait_idle(30)
    assert service.get_push("p", "ghost", result.diff_id).status == "completed"
    assert service.get_index("p", "ghost").doc_count == 1


def test_ids_that_name_no_upload_are_not_found_and_leave_nothing_behind(service: Service) -> None:
    for bad in ["nope", "up_" + "0" * 24, "up_../../catalog", 7, "up_" + "a" * 24 + "\n"]:
        with pytest.raises(NotFoundError):
            service.append_upload("p", bad, docs(1))  # type: ignore[arg-type]
    assert service.batches._locks == {}
