"""The service core: `Service`, the facade over the parts of the "cloud" side.

Invariants (issue #3):
- The live version is never modified: a job builds version N+1 in a staging
  file, stores it under a new key, then publishes it (version row, index row,
  job completion) in one catalog transaction. A crash before that transaction
  leaves version N live and an unreferenced staging/storage file, which the
  next start removes.
- Bad input is refused before anything is queued: names, documents,
  dimensions, conflicts without upsert, unknown indexes all raise typed errors
  synchronously, the batch file being written is removed, and no job exists.
- A mutation's documents live in a batch file (index/batch.py, batches.py),
  written once as they arrive, in bounded memory, and deleted when its job
  ends; the catalog holds only the job's small row (issue #7). A batch too
  large for one request arrives as an upload: opened, appended to, committed.
- A job interrupted by a crash is resumed at the next start if its batch was
  stored (status ``uploading`` or later), and marked failed otherwise.
- Authorization is per project: every method takes the ``project_id`` the
  caller proved a key for; an index of another project is simply not found.
- Storage stays bounded: after each publish only the newest ``keep_versions``
  version files are kept (a download already streaming keeps its open file);
  page maps, a fraction of a file, are kept longer so that clients holding an
  older version still get patches (patch_store.py).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
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
    UnauthorizedError,
)
from ..index.batch import BatchWriter, batch_counts, batch_ids
from ..index.builder import check_ids
from ..types import (
    DEFAULT_JOB_WORKERS,
    DEFAULT_KEEP_VERSIONS,
    DEFAULT_MODEL_ID,
    DocsPage,
    DocumentInfo,
    IndexInfo,
    Job,
    JobStatus,
    Manifest,
    MutationOptions,
    MutationResult,
    PushIndexResult,
    options_or_default,
    validate_name,
)
from .batches import Batches
from .build import BuildParts
from .catalog import Catalog, VersionRecord
from .jobs import JobListener, Jobs
from .locks import remove_index_lock
from .patch_store import VersionPatch
from .recovery import recover, this_owner
from .retention import Retention
from .storage import Storage
from .storage.directory import DirectoryStorage
from .versions import Versions

log = logging.getLogger("mosslite.service")

CATALOG_FILE = "catalog.sqlite"


class Service:
    """One mosslite service over a data folder. Example::

        service = Service(Path("~/.mosslite").expanduser())
        key = service.create_key("my-project")
        result = service.create_index("my-project", "faq", docs)
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        storage: Storage | None = None,
        start_jobs: bool = True,
        keep_versions: int = DEFAULT_KEEP_VERSIONS,
        job_workers: int = DEFAULT_JOB_WORKERS,
    ) -> None:
        if isinstance(keep_versions, bool) or not isinstance(keep_versions, int) or keep_versions < 1:
            raise InvalidArgumentError(f"keep_versions must be an integer >= 1, got {keep_versions!r}")
        if isinstance(job_workers, bool) or not isinstance(job_workers, int) or job_workers < 1:
            raise InvalidArgumentError(f"job_workers must be an integer >= 1, got {job_workers!r}")
        self.keep_versions = keep_versions
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.storage = storage or DirectoryStorage(self.data_dir / "storage")
        self.staging_dir = self.data_dir / "staging"
        self.lock_dir = self.data_dir / "locks"
        self.staging_dir.mkdir(exist_ok=True)
        self.batches = Batches(self.data_dir / "batches")
        self.catalog = Catalog(self.data_dir / CATALOG_FILE)
        self.owner = this_owner()
        self.versions = Versions(self.catalog, self.storage, self.staging_dir)
        self.retention = Retention(self.storage, self.versions, keep_versions=keep_versions)
        build_parts = BuildParts(
            catalog=self.catalog,
            storage=self.storage,
            local_copy=self.versions.local_copy,
            staging_dir=self.staging_dir,
            lock_dir=self.lock_dir,
        )
        self.jobs = Jobs(build_parts, self.batches, self.retention, owner=self.owner, listeners=[], workers=job_workers)
        if start_jobs:
            recover(self.jobs, self.staging_dir)

    @property
    def listeners(self) -> list[JobListener]:
        """Called as (project_id, job) after every change of a job's status or phase."""
        return self.jobs.listeners

    @listeners.setter
    def listeners(self, listeners: list[JobListener]) -> None:
        self.jobs.listeners = listeners

    def close(self) -> None:
        self.jobs.stop()
        self.versions.close()
        self.catalog.close()

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        return self.jobs.wait_idle(timeout_s)

    # -- keys -------------------------------------------------------------------

    def create_key(self, project_id: str) -> str:
        validate_name(project_id, what="project")
        return self.catalog.add_key(project_id)

    def list_keys(self, project_id: str) -> list[tuple[str, str]]:
        """(key id, created at) of the project's keys; the keys themselves are not kept."""
        validate_name(project_id, what="project")
        return self.catalog.list_keys(project_id)

    def key_id(self, key: str) -> str:
        """The id ``list_keys`` shows for ``key`` (service/keys.py)."""
        return self.catalog.key_id(key)

    def authenticate(self, project_id: str, key: str | None) -> None:
        """Raise UnauthorizedError unless ``key`` belongs to ``project_id``."""
        if not key or self.catalog.project_of_key(key) != project_id:
            raise UnauthorizedError(f"the key is not valid for project {project_id!r}", project=project_id)

    def project_of_key(self, key: str) -> str | None:
        """The project ``key`` opens, or None (an HTTP request names its project in its
        path: a key of another project is answered "not found", not "unauthorized")."""
        return self.catalog.project_of_key(key)

    def adopt_key(self, project_id: str, key: str) -> None:
        """Embedded mode: the first key used for a project becomes its key."""
        validate_name(project_id, what="project")
        if not isinstance(key, str) or not key:
            raise UnauthorizedError("a project key is required", project=project_id)
        if self.catalog.key_count(project_id) == 0:
            self.catalog.add_key(project_id, key)
        self.authenticate(project_id, key)

    # -- indexes ----------------------------------------------------------------

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
        info = self.get_index(project_id, name)
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
        Example::

            upload = service.open_upload("proj", "faq", "add_docs")
            service.append_upload("proj", upload, docs[:50_000])
            service.append_upload("proj", upload, docs[50_000:])
            job = service.commit_upload("proj", upload)
        """
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
            info = self.get_index(project_id, name)
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
            info = self.get_index(project_id, name)
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

    def get_index(self, project_id: str, name: str) -> IndexInfo:
        validate_name(name)
        return self.catalog.get_index(project_id, name)

    def list_indexes(self, project_id: str) -> list[IndexInfo]:
        return self.catalog.list_indexes(project_id)

    def delete_index(self, project_id: str, name: str) -> None:
        """Delete the index, its versions and its queued jobs (which fail), stop its
        running job, and leave no file or folder of it behind."""
        validate_name(name)
        keys = self.catalog.delete_index(project_id, name)
        self.jobs.cancel_index(project_id, name)
        self.retention.remove_index(project_id, name, keys)
        remove_index_lock(self.lock_dir, (project_id, name))

    def get_docs_page(
        self,
        project_id: str,
        name: str,
        ids: Sequence[str] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        include_embedding: bool = True,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> DocsPage:
        """One page of the newest version's documents, by id and/or filter; pass its
        ``next_cursor`` back, with the same request, for the next (paging.py). Example::

            page = service.get_docs_page("proj", "faq", include_embedding=False)
            while page.next_cursor:
                page = service.get_docs_page("proj", "faq", include_embedding=False, cursor=page.next_cursor)
        """
        return self.versions.get_docs_page(
            project_id, name, ids, filter, include_embedding=include_embedding, limit=limit, cursor=cursor
        )

    # -- versions ---------------------------------------------------------------

    def manifest(self, project_id: str, name: str) -> Manifest:
        """The newest published version. An index with none yet is not found."""
        return self.versions.manifest(project_id, name)

    def version_record(self, project_id: str, name: str, version: int) -> VersionRecord:
        return self.versions.version_record(project_id, name, version)

    def version_patch(self, project_id: str, name: str, version: int, base_version: int) -> VersionPatch:
        """The pages of ``version`` that differ from ``base_version`` (which the caller holds);
        stream them with ``service.patch_bytes(patch)``. No patch worth sending:
        PatchUnavailableError. Example::

            patch = service.version_patch("proj", "faq", 8, 7)   # a few pages, not the file
        """
        return self.versions.version_patch(project_id, name, version, base_version)

    def patch_bytes(self, patch: VersionPatch) -> Iterator[bytes]:
        """The bytes of ``patch`` (from ``version_patch``), read from storage as they are sent."""
        return self.versions.patch_bytes(patch)

    def version_path(self, record: VersionRecord) -> Path | None:
        """The version file's path, if storage keeps it as a local file (directory
        storage), else None. The file is published, so read-only: link or read it."""
        return self.versions.version_path(record)

    def version_size(self, record: VersionRecord) -> int:
        """The version file's size in bytes; FileNotFoundError once it was pruned."""
        return self.versions.version_size(record)

    def version_bytes(self, record: VersionRecord, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The version file's bytes ``start`` up to ``end`` (exclusive; None: to the end), in
        chunks; FileNotFoundError (at the first ``next()``) once it was pruned."""
        return self.versions.version_bytes(record, start, end)

    def watch_dir(self, project_id: str, name: str) -> Path | None:
        """The folder whose ``manifest.json`` changes when a version of ``name`` is
        published, for a client to watch instead of polling: directory storage only,
        else None. Example::

            folder = service.watch_dir("proj", "faq")   # <data>/storage/proj/faq
        """
        return self.versions.watch_dir(project_id, name)

    def local_copy(self, record: VersionRecord) -> Path:
        """A local file of the version: storage's own, or a copy kept under staging."""
        return self.versions.local_copy(record)

    # -- jobs -------------------------------------------------------------------

    def get_job(self, project_id: str, job_id: str) -> Job:
        return self.catalog.get_job(project_id, job_id)

    def prune(self, project_id: str, index_name: str, newest: int) -> None:
        """Delete the version files and page maps of ``index_name`` that retention.py lets go."""
        self.retention.prune(project_id, index_name, newest)

    # -- session pushes (issue #5) ---------------------------------------------------

    def push(
        self,
        project_id: str,
        name: str,
        diff_id: str,
        changeset: bytes,
        model_id: str | None = None,
        dimension: int | None = None,
    ) -> PushIndexResult:
        """Apply a session's diff (a SQLite changeset, see ``mosslite.changeset``)
        onto the latest version of ``name``, through the job pipeline: the pushed
        embeddings are reused, nothing is re-embedded. Creates the index (with
        ``model_id``/``dimension``) if it does not exist, once the diff checked out.

        Idempotent by ``diff_id``: a repeated id returns the job of the first push
        (unless that job failed: then the diff is submitted again). Conflicts resolve
        last push wins; the build counts how many documents were overwritten."""
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
