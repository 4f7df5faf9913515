"""Intake: the checks a mutation passes before its job is queued.

``create_index``, ``add_docs`` and ``delete_docs`` become a batch file (index/batch.py,
batches.py) and a job (jobs.py); a batch too large for one request arrives as an
upload: opened, appended to, committed (issue #7).

Invariants (issues #2, #3, #7, #8):
- Bad input is refused before anything is queued: names, documents, dimensions,
  models, conflicts without upsert, unknown indexes all raise typed errors
  synchronously, the batch file being written is removed, and no job exists.
- A create that queued nothing leaves no index behind.
- A mutation's documents live in a batch file, written once as they arrive, in
  bounded memory; the catalog holds only the job's small row. A refused batch ends
  its upload (its id is no longer found).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..embeddings import get_embedder
from ..errors import ConflictError, IndexNotFoundError, InvalidArgumentError, InvalidDocumentError
from ..index.batch import BatchWriter, batch_counts, batch_ids
from ..index.builder import check_ids
from ..types import (
    DEFAULT_MODEL_ID,
    DocumentInfo,
    IndexInfo,
    MutationOptions,
    MutationResult,
    options_or_default,
    validate_name,
)
from .batches import Batches
from .catalog import Catalog
from .jobs import Jobs
from .versions import Versions


class Intake:
    """Mutations in, jobs out: every check that can be made before a build."""

    def __init__(self, catalog: Catalog, batches: Batches, versions: Versions, jobs: Jobs) -> None:
        self.catalog = catalog
        self.batches = batches
        self.versions = versions
        self.jobs = jobs

    def create_index(
        self, project_id: str, name: str, docs: Sequence[DocumentInfo], model_id: str | None = None
    ) -> MutationResult:
        """Start building a new index from ``docs`` (any iterable: a generator streams
        through a batch file in bounded memory)."""
        upload_id = self.open_upload(project_id, name, "create_index", model_id=model_id)
        return self._fill_and_commit(project_id, upload_id, docs)

    def add_docs(
        self, project_id: str, name: str, docs: Sequence[DocumentInfo], options: MutationOptions | None = None
    ) -> MutationResult:
        options = options_or_default(options, MutationOptions)
        upload_id = self.open_upload(project_id, name, "add_docs", upsert=options.upsert)
        return self._fill_and_commit(project_id, upload_id, docs)

    def delete_docs(self, project_id: str, name: str, ids: Sequence[str]) -> MutationResult:
        info = self._index(project_id, name)
        ids = check_ids(ids)
        if not ids:
            raise InvalidArgumentError("delete_docs needs at least one id")
        writer = BatchWriter(self.batches.new_path(), dimension=info.dimension, computes_embeddings=False)  # (ids only)
        try:
            writer.add_deletes(ids)
            writer.close()
            return self.jobs.submit(project_id, name, "delete_docs", writer.path, len(ids))
        finally:
            writer.abort()  # (a file adopted by its job has moved on)

    # -- uploads: a batch in several calls (issue #7) ----------------------------------

    def open_upload(
        self, project_id: str, name: str, kind: str, *, model_id: str | None = None, upsert: bool = True
    ) -> str:
        """Start a batch for ``create_index`` or ``add_docs`` on ``name``, to be filled by
        ``append_upload`` and turned into a job by ``commit_upload``. What can be checked
        now is: the name, the model, the index (absent for a create, present for an add).
        (An example: ``Service.open_upload``.)"""
        validate_name(name)
        if kind == "create_index":
            model_id = DEFAULT_MODEL_ID if model_id is None else model_id
            dimension = None if model_id == "custom" else get_embedder(model_id).dimension
            try:
                self.catalog.get_index(project_id, name)
            except IndexNotFoundError:
                pass
            else:
                raise ConflictError(
                    f"index {name!r} already exists", index=name, hint="use add_docs to change it, or delete it first"
                )
        elif kind == "add_docs":
            info = self._index(project_id, name)
            model_id, dimension = info.model, info.dimension
        else:
            raise InvalidArgumentError(f"an upload is for 'create_index' or 'add_docs', not {kind!r}")
        if not isinstance(upsert, bool):
            raise InvalidArgumentError(f"upsert must be true or false, got {upsert!r}")
        computes = model_id != "custom" and get_embedder(model_id).computes_embeddings
        return self.batches.open_upload(
            project_id=project_id, dimension=dimension, computes_embeddings=computes,
            index=name, kind=kind, model_id=model_id, upsert=int(upsert),
        )  # fmt: skip

    def append_upload(self, project_id: str, upload_id: str, docs: Sequence[DocumentInfo]) -> int:
        """Check ``docs`` and add them to the upload; returns how many it holds now. A
        refused batch ends the upload (its id is no longer found): start again."""
        with self.batches.upload(project_id, upload_id) as (path, _):
            writer = BatchWriter.reopen(path)
            try:
                writer.add_docs(docs)
            except BaseException:
                writer.abort()
                self.batches.remove_upload(path)
                raise
            writer.close()
            return batch_counts(path)[0]

    def commit_upload(self, project_id: str, upload_id: str) -> MutationResult:
        """Turn the upload into a job (creating the index, for a create), after the checks
        that need every document: at least one to add, no existing id without upsert."""
        with self.batches.upload(project_id, upload_id) as (path, facts):
            try:
                return self._commit(project_id, path, facts)
            finally:
                self.batches.remove_upload(path)  # (a file adopted by its job has moved on)

    def abort_upload(self, project_id: str, upload_id: str) -> None:
        with self.batches.upload(project_id, upload_id) as (path, _):
            self.batches.remove_upload(path)

    def _fill_and_commit(self, project_id: str, upload_id: str, docs: Sequence[DocumentInfo]) -> MutationResult:
        self.append_upload(project_id, upload_id, docs)
        return self.commit_upload(project_id, upload_id)

    def _commit(self, project_id: str, path: Path, facts: dict[str, Any]) -> MutationResult:
        name, kind, model_id = str(facts["index"]), str(facts["kind"]), str(facts["model_id"])
        upserts, _ = batch_counts(path)
        if kind == "create_index":
            if model_id == "custom" and facts.get("dimension") is None:
                raise InvalidDocumentError(
                    "a custom index needs embeddings: pass DocumentInfo(embedding=[...]) for every document",
                    hint="or choose a model that computes embeddings, e.g. moss-minilm",
                )
            embedder = get_embedder(model_id, dimension=facts.get("dimension") if model_id == "custom" else None)
            self.catalog.create_index(project_id, name, embedder.model_id, embedder.dimension)
            try:
                return self.jobs.submit(project_id, name, kind, path, upserts)
            except BaseException:  # a create that queued nothing leaves no index behind
                self.catalog.delete_index(project_id, name)
                raise
        else:
            if not upserts:
                raise InvalidDocumentError("add_docs needs at least one document")
            info = self._index(project_id, name)
            if not facts.get("upsert"):
                self._refuse_existing(project_id, info, path)
        return self.jobs.submit(project_id, name, kind, path, upserts)

    def _refuse_existing(self, project_id: str, info: IndexInfo, path: Path) -> None:
        """ConflictError if the batch holds ids the index has (an insert without upsert)."""
        count, examples = 0, []
        for ids in batch_ids(path):
            found = self.versions.get_docs(project_id, info, ids=ids, filter=None, include_embedding=False)
            count += len(found)
            examples += [d.id for d in found[: 5 - len(examples)]]
        if count:
            raise ConflictError(
                f"{count} document id(s) already exist in {info.name!r}, e.g. {examples}",
                index=info.name,
                hint="pass MutationOptions(upsert=True) to replace them",
            )

    def _index(self, project_id: str, name: str) -> IndexInfo:
        validate_name(name)
        return self.catalog.get_index(project_id, name)
