"""Session pushes (issue #5): a SQLite changeset in, a job out, answered once per diff id.

A push decodes the changeset (``mosslite.changeset``) before anything is written,
turns it into a batch file (documents with their embeddings, deletes, and the rows
the session had seen) and runs it through the same job path as any mutation.

Invariants:
- Idempotent by ``diff_id``: a repeated id returns the job of the first push
  (unless that job failed: then the diff is submitted again). In this process the
  check and the submit are one step (``_PUSH_LOCK``), so a retry that arrives while
  the first request is still handled finds its diff id.
- A push refused by its checks creates nothing: no index, no job.
- ``overwritten`` (documents someone else changed since the session saw them) is
  counted by the build (index/builder.py) on the version the diff is applied onto,
  and stored with the job's completion: a retry at any time gets the same answer.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

from ..changeset import decode
from ..embeddings import Embedder, get_embedder
from ..errors import (
    ConflictError,
    DimensionMismatchError,
    IndexNotFoundError,
    InvalidArgumentError,
    InvalidDocumentError,
    NotFoundError,
)
from ..index.batch import BatchWriter
from ..types import DEFAULT_MODEL_ID, JobStatus, PushIndexResult
from ..validation import validate_name
from .batches import Batches
from .catalog import Catalog
from .jobs import Jobs


class Pushes:
    """The session pushes of one service, by (project, index, diff id)."""

    def __init__(self, catalog: Catalog, batches: Batches, jobs: Jobs) -> None:
        self.catalog = catalog
        self.batches = batches
        self.jobs = jobs

    def push(
        self,
        project_id: str,
        name: str,
        diff_id: str,
        changeset: bytes,
        model_id: str | None = None,
        dimension: int | None = None,
    ) -> PushIndexResult:
        """``Service.push`` (its docstring says what a push promises)."""
        validate_name(name)
        _check_diff_id(diff_id)
        changes = decode(changeset)
        with _PUSH_LOCK:
            earlier = self.catalog.get_push(project_id, name, diff_id)
            if earlier is not None:
                job = self.catalog.get_job(project_id, earlier[0])
                if job.status != JobStatus.FAILED:
                    return self.get_push(project_id, name, diff_id)
            embedder, exists = self._push_embedder(project_id, name, changes, model_id, dimension)
            writer = BatchWriter(
                self.batches.new_path(), dimension=embedder.dimension, computes_embeddings=embedder.computes_embeddings
            )
            try:
                writer.add_docs(c.document() for c in changes if c.new is not None)
                writer.add_deletes(c.id for c in changes if c.new is None)
                writer.add_seen((c.id, c.old) for c in changes)
                writer.close()
                if not exists:
                    try:
                        self.catalog.create_index(project_id, name, embedder.model_id, embedder.dimension)
                    except ConflictError:  # another session's first push created it just now
                        self._push_embedder(project_id, name, changes, embedder.model_id, embedder.dimension)
                result = self.jobs.submit(project_id, name, "push", writer.path, len(changes))
            finally:
                writer.abort()  # (a file adopted by its job has moved on)
            self.catalog.record_push(project_id, name, diff_id, result.job_id, len(changes))
        return self.get_push(project_id, name, diff_id)

    def _push_embedder(
        self, project_id: str, name: str, changes: Sequence[Any], model_id: str | None, dimension: int | None
    ) -> tuple[Embedder, bool]:
        """(the index's embedder, whether the index exists), after checking the push
        agrees with it. Nothing is created here: a push refused later leaves no index."""
        try:
            info = self.catalog.get_index(project_id, name)
        except IndexNotFoundError:
            info = None
        if info is None:
            model_id = DEFAULT_MODEL_ID if model_id is None else model_id
            if model_id == "custom" and dimension is None:
                dimension = next((len(c.new[3]) // 4 for c in changes if c.new is not None), None)
                if dimension is None:
                    raise InvalidDocumentError(
                        "a custom index needs embeddings: the first push must add documents", index=name
                    )
            embedder = get_embedder(model_id, dimension=dimension if model_id == "custom" else None)
            if dimension is not None and dimension != embedder.dimension:
                raise DimensionMismatchError(
                    f"model {model_id!r} has {embedder.dimension} dimensions, the push says {dimension}",
                    index=name,
                )
            return embedder, False
        if model_id is not None and model_id != info.model:
            raise InvalidArgumentError(
                f"index {name!r} uses model {info.model!r}, the session {model_id!r}", index=name
            )
        if dimension is not None and dimension != info.dimension:
            raise DimensionMismatchError(
                f"index {name!r} has {info.dimension} dimensions, the session {dimension}",
                index=name,
                expected=info.dimension,
                got=dimension,
            )
        return get_embedder(info.model, dimension=info.dimension), True

    def get_push(self, project_id: str, name: str, diff_id: str) -> PushIndexResult:
        """The state of a push by its diff id. Once its job completed, ``overwritten``
        counts the documents whose row in the version the diff was applied onto was
        neither what the session had seen nor what it wrote: counted by the build and
        stored with the job's completion, so it is there for a retry at any time."""
        validate_name(name)
        _check_diff_id(diff_id)
        found = self.catalog.get_push(project_id, name, diff_id)
        if found is None:
            raise NotFoundError(f"no push {diff_id!r} of index {name!r}", index=name, diff_id=diff_id)
        job_id, doc_count, overwritten = found
        job = self.catalog.get_job(project_id, job_id)
        return PushIndexResult(
            job_id=job_id,
            index_name=name,
            doc_count=doc_count,
            status=job.status,
            diff_id=diff_id,
            overwritten=overwritten if job.status == JobStatus.COMPLETED else None,
            version=job.version,
        )


#: Serialises the check-then-submit of pushes in this process, so a retry that
#: arrives while the first request is still being handled finds its diff id.
_PUSH_LOCK = threading.Lock()
_DIFF_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,128}")  # (fullmatch: "$" would let a final newline in)


def _check_diff_id(diff_id: object) -> None:
    if not isinstance(diff_id, str) or not _DIFF_ID_RE.fullmatch(diff_id):
        raise InvalidArgumentError(f"a diff id is 8 to 128 letters, digits, '_' or '-', got {diff_id!r}")
