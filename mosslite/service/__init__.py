"""The service core: the "cloud" side, one behaviour behind both transports.

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
  older version still get patches (patches.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .._fs import atomic_path, remove_empty_folders, remove_stale_temps
from ..changeset import decode
from ..embeddings import Embedder, get_embedder
from ..errors import (
    ConflictError,
    DimensionMismatchError,
    IndexNotFoundError,
    InvalidArgumentError,
    InvalidDocumentError,
    MossliteError,
    NotFoundError,
    UnauthorizedError,
)
from ..index.batch import BatchWriter, batch_counts, batch_ids, read_facts
from ..filters import compile_filter
from ..index.format import utc_now_iso
from ..index.reader import IndexReader
from ..types import (
    DEFAULT_JOB_WORKERS,
    DEFAULT_KEEP_PAGE_MAPS,
    DEFAULT_KEEP_VERSIONS,
    DEFAULT_MODEL_ID,
    DocsPage,
    DocumentInfo,
    IndexInfo,
    Job,
    JobPhase,
    JobStatus,
    Manifest,
    MutationOptions,
    MutationResult,
    PushIndexResult,
    Version,
    options_or_default,
)
from ..validation import check_ids, validate_name
from ..wire import to_dict
from .batches import Batches
from .catalog import INDEX_DELETED, Catalog, VersionRecord
from .jobs import JobRunner, remove_index_lock
from .paging import Cursor, page_limit, parse_cursor, request_digest
from .layout import PAGES_SUFFIX, manifest_key, pages_key, version_key
from .patches import VersionPatch, version_patch
from .storage import Storage
from .storage.directory import DirectoryStorage
from .worker import JobContext, run_build

log = logging.getLogger("mosslite.service")

CATALOG_FILE = "catalog.sqlite"
READER_CACHE = 8
PHASE_SLICES = {
    JobPhase.GENERATING_EMBEDDINGS: (0.0, 70.0),
    JobPhase.BUILDING_INDEX: (70.0, 90.0),
    JobPhase.UPLOADING: (90.0, 98.0),
    JobPhase.PUBLISHING: (98.0, 100.0),
}

#: Called as (project_id, job) after every change of a job's status or phase.
JobListener = Callable[[str, Job], None]


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
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.listeners: list[JobListener] = []
        self._readers: OrderedDict[tuple[str, str], IndexReader] = OrderedDict()  # by (storage key, sha256)
        self._readers_lock = threading.Lock()
        self._runner = JobRunner(self._run_job, workers=job_workers)
        self._cancelled: set[str] = set()  # running jobs of deleted indexes: stopped at their next progress
        if start_jobs:
            self._recover()

    def close(self) -> None:
        self._runner.stop()
        with self._readers_lock:
            for reader in self._readers.values():
                reader.close()
            self._readers.clear()
        self.catalog.close()

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        return self._runner.wait_idle(timeout_s)

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
            return self._submit(project_id, name, "delete_docs", writer.path, len(ids))
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
                return self._submit(project_id, name, kind, path, upserts)
            except BaseException:  # a create that queued nothing leaves no index behind
                self.catalog.delete_index(project_id, name)
                raise
        else:
            if not upserts:
                raise InvalidDocumentError("add_docs needs at least one document")
            info = self.get_index(project_id, name)
            if not facts.get("upsert"):
                self._refuse_existing(project_id, info, path)
        return self._submit(project_id, name, kind, path, upserts)

    def _refuse_existing(self, project_id: str, info: IndexInfo, path: Path) -> None:
        """ConflictError if the batch holds ids the index has (an insert without upsert)."""
        count, examples = 0, []
        for ids in batch_ids(path):
            found = self._get_docs(project_id, info, ids=ids, filter=None, include_embedding=False)
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
        dropped, running = self._runner.cancel((project_id, name))
        if running is not None:
            self._cancelled.add(running)
        for job_id in dropped:
            self.batches.release(job_id)
        self.storage.delete(manifest_key(project_id, name))
        for key in keys:
            self.storage.delete(key)
            self.storage.delete(pages_key(key))
            self._forget_local_copies(key)
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
        info = self.get_index(project_id, name)
        if ids is not None:
            ids = check_ids(ids)
        compile_filter(filter)  # a bad filter is refused before it is hashed into a cursor
        size = page_limit(limit)
        digest = request_digest(ids, filter, include_embedding)
        if cursor is None:
            start = Cursor(info.version, 0, digest)
        else:
            start = parse_cursor(cursor, digest)
        if start.version == 0:
            return DocsPage(docs=[])
        try:
            reader = self._reader(project_id, name, start.version)
        except (IndexNotFoundError, FileNotFoundError) as exc:  # never published, or pruned
            raise ConflictError(
                f"version {start.version} of index {name!r}, which this cursor pages through, is gone",
                index=name,
                hint="newer versions replaced it: start the listing again, without a cursor",
            ) from exc
        docs, after = reader.page_docs(ids, filter, include_embedding=include_embedding, after=start.after, limit=size)
        return DocsPage(docs=docs, next_cursor=None if after is None else Cursor(start.version, after, digest).encode())

    def _get_docs(
        self, project_id: str, info: IndexInfo, *, ids: Any, filter: Any, include_embedding: bool
    ) -> list[DocumentInfo]:
        if ids is not None:
            ids = check_ids(ids)
        if info.version == 0:
            return []
        reader = self._reader(project_id, info.name, info.version)
        return reader.get_docs(ids=ids, filter=filter, include_embedding=include_embedding)

    # -- versions ---------------------------------------------------------------

    def manifest(self, project_id: str, name: str) -> Manifest:
        """The newest published version. An index with none yet is not found."""
        validate_name(name)
        record = self.catalog.latest_version(project_id, name)
        if record is None:
            self.catalog.get_index(project_id, name)  # raises if the index does not exist
            raise IndexNotFoundError(f"index {name!r} has no published version yet", index=name, hint="wait for its job")
        return record.manifest

    def version_record(self, project_id: str, name: str, version: int) -> VersionRecord:
        validate_name(name)
        record = self.catalog.get_version(project_id, name, Version(version))
        if record is None:
            raise IndexNotFoundError(f"index {name!r} has no version {version}", index=name, version=version)
        return record

    def version_patch(self, project_id: str, name: str, version: int, base_version: int) -> VersionPatch:
        """The pages of ``version`` that differ from ``base_version`` (which the caller holds);
        stream them with ``patch.chunks(service.storage)``. No patch worth sending:
        PatchUnavailableError. Example::

            patch = service.version_patch("proj", "faq", 8, 7)   # a few pages, not the file
        """
        target = self.version_record(project_id, name, version)
        base = self.catalog.get_version(project_id, name, Version(base_version))
        return version_patch(self.storage, target, base)

    def _reader(self, project_id: str, name: str, version: int) -> IndexReader:
        record = self.version_record(project_id, name, version)
        key = (record.storage_key, record.manifest.sha256)
        with self._readers_lock:
            reader = self._readers.get(key)
            if reader is not None:
                self._readers.move_to_end(key)
                return reader
        reader = IndexReader(self.local_copy(record), search=False)  # documents and filters only
        with self._readers_lock:
            if key in self._readers:  # another thread opened it meanwhile
                reader.close()
                return self._readers[key]
            self._readers[key] = reader
            while len(self._readers) > READER_CACHE:
                self._readers.popitem(last=False)[1].close()
        return reader

    def local_copy(self, record: VersionRecord) -> Path:
        path = self.storage.local_path(record.storage_key)
        if path is not None:
            return path
        folder, name = self._local_copy_place(record.storage_key)
        path = folder / f"{name}.{record.manifest.sha256}"
        if not path.exists():
            with atomic_path(path, read_only=True) as temp:  # never half a file, whatever crashes or races
                self.storage.download_to(record.storage_key, temp)
        return path

    def _local_copy_place(self, storage_key: str) -> tuple[Path, str]:
        """(folder, name) of ``local_copy``'s files for a storage with no local paths.
        Each file's name ends with its sha256: an index deleted and created again
        reuses storage keys for other contents, and a copy of the old version 1 once
        became the base of the new index's version 2."""
        folder, _, name = storage_key.rpartition("/")
        return self.staging_dir / "cache" / folder, name

    def _forget_local_copies(self, storage_key: str) -> None:
        """Remove the local copies and cached readers of a deleted version file."""
        with self._readers_lock:
            for key in [k for k in self._readers if k[0] == storage_key]:
                self._readers.pop(key).close()
        folder, name = self._local_copy_place(storage_key)
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name == name or path.name.startswith(f"{name}."):  # (unsuffixed: before sha256 names)
                    path.unlink(missing_ok=True)
            remove_empty_folders(folder, self.staging_dir)

    # -- jobs -------------------------------------------------------------------

    def get_job(self, project_id: str, job_id: str) -> Job:
        return self.catalog.get_job(project_id, job_id)

    def _submit(self, project_id: str, name: str, kind: str, batch: Path, doc_count: int) -> MutationResult:
        """Queue a job for the filled batch file ``batch``, which becomes the job's own."""
        job_id = self.catalog.create_job(project_id, name, kind, doc_count)
        self.catalog.update_job(job_id, owner=self.owner)
        self.batches.adopt(batch, job_id)
        self._notify(project_id, job_id)
        self._runner.submit((project_id, name), job_id)
        return MutationResult(job_id=job_id, index_name=name, doc_count=doc_count)

    def _notify(self, project_id: str, job_id: str) -> None:
        if not self.listeners:
            return
        job = self.catalog.get_job(project_id, job_id)
        for listener in list(self.listeners):
            listener(project_id, job)

    def _run_job(self, job_id: str) -> None:
        project_id = self.catalog.job_project(job_id)
        job = self.catalog.get_job(project_id, job_id)
        if job.status == JobStatus.PENDING_UPLOAD:
            # "Uploading" is the batch reaching durable storage; it happens on the
            # worker so the caller gets its job id at once, as with Moss.
            self.catalog.update_job(job_id, status=JobStatus.UPLOADING)
            self._notify(project_id, job_id)
            if not self.batches.store(job_id):
                self._fail(project_id, job_id, "the job's documents are missing; submit it again")
                return
        self.catalog.update_job(job_id, status=JobStatus.BUILDING)
        self._notify(project_id, job_id)
        try:
            info = self.catalog.get_index(project_id, job.index_name)
            context = JobContext(
                project_id=project_id,
                job_id=job_id,
                index=info,
                batch=self.batches.job_path(job_id),
                upsert=job.kind != "add_docs" or self._upserts(job_id),
                embedder=get_embedder(info.model, dimension=info.dimension),
            )
            record = run_build(self, context, progress=lambda phase, pct: self._progress(project_id, job_id, phase, pct))
        except MossliteError as exc:
            self._fail(project_id, job_id, str(exc))
            return
        except Exception as exc:  # a crashed embedder or a full disk fails the job, not the service
            log.exception("job %s failed", job_id)
            self._fail(project_id, job_id, f"{type(exc).__name__}: {exc}")
            return
        self.batches.release(job_id)
        self.storage.put_bytes(manifest_key(project_id, job.index_name), _manifest_json(record.manifest))
        self._notify(project_id, job_id)
        self.prune(project_id, job.index_name, record.manifest.version)  # after the news is out

    def _upserts(self, job_id: str) -> bool:
        return bool(read_facts(self.batches.job_path(job_id)).get("upsert", 1))

    def _progress(self, project_id: str, job_id: str, phase: str, percent: float) -> None:
        if job_id in self._cancelled:
            raise IndexNotFoundError(INDEX_DELETED)
        # The job's progress is overall, 0-100 across phases; each phase owns a slice.
        low, high = PHASE_SLICES.get(phase, (0.0, 100.0))
        overall = round(low + (high - low) * percent / 100.0, 1)
        self.catalog.update_job(job_id, status=JobStatus.BUILDING, current_phase=phase, progress=overall)
        self._notify(project_id, job_id)

    def _fail(self, project_id: str, job_id: str, error: str) -> None:
        if job_id in self._cancelled:  # whatever it tripped on, the reason is the deletion
            self._cancelled.discard(job_id)
            error = INDEX_DELETED
        self.catalog.update_job(
            job_id, status=JobStatus.FAILED, error=error, current_phase=None, completed_at=utc_now_iso()
        )
        self.batches.release(job_id)
        job = self.catalog.get_job(project_id, job_id)
        try:
            if self.catalog.get_index(project_id, job.index_name).version == 0:
                self.catalog.set_index_status(project_id, job.index_name, "failed")
        except IndexNotFoundError:  # deleted while it ran: its lock file was left to this job
            remove_index_lock(self.lock_dir, (project_id, job.index_name))
        self._notify(project_id, job_id)

    def _recover(self) -> None:
        """At start: clear staging leftovers and batch files of ended jobs, and resume
        or fail jobs of dead owners."""
        remove_stale_temps(self.staging_dir)
        for leftover in self.staging_dir.glob("*.sqlite"):
            leftover.unlink(missing_ok=True)
        self.batches.clean()
        unfinished = {job_id for job_id, *_ in self.catalog.unfinished_jobs()}
        for job_id in set(self.batches.job_ids()) - unfinished:  # ended, or never a job
            self.batches.release(job_id)
        for job_id, project_id, index_name, owner in self.catalog.unfinished_jobs():
            if owner is not None and owner != self.owner and _owner_alive(owner):
                continue
            if self.catalog.get_job(project_id, job_id).status == JobStatus.PENDING_UPLOAD:
                self._fail(project_id, job_id, "the service stopped before the request was stored; submit it again")
                continue
            self._remove_unpublished(project_id, index_name)
            self.catalog.update_job(job_id, owner=self.owner)
            log.info("resuming job %s of %s/%s", job_id, project_id, index_name)
            self._runner.submit((project_id, index_name), job_id)

    def _remove_unpublished(self, project_id: str, index_name: str) -> None:
        """A crash between storing a version file and publishing it leaves a file no
        catalog row names; it is garbage (its job will build it again)."""
        latest = self.catalog.latest_version(project_id, index_name)
        newest = latest.manifest.version if latest is not None else 0
        for key, version, _ in self._stored_versions(project_id, index_name):
            if version > newest:
                log.info("removing unpublished %s", key)
                self.storage.delete(key)

    def prune(self, project_id: str, index_name: str, newest: int) -> None:
        """Delete version files older than the newest ``keep_versions`` and page maps
        older than the newest DEFAULT_KEEP_PAGE_MAPS. Without this every mutation of a
        100k-document index would keep another ~440 MB forever; the maps (0.2% of a
        file) let clients holding a deleted version still fetch patches."""
        for key, version, is_map in self._stored_versions(project_id, index_name):
            if version <= newest - (DEFAULT_KEEP_PAGE_MAPS if is_map else self.keep_versions):
                self.storage.delete(key)
                if not is_map:
                    self._forget_local_copies(key)

    def _stored_versions(self, project_id: str, index_name: str) -> Iterator[tuple[str, Version, bool]]:
        """(key, version, is it a page map) of the version files and page maps in storage."""
        for key in self.storage.list(f"{project_id}/{index_name}/"):
            name = key.rsplit("/", 1)[-1]
            try:
                yield key, Version.parse_filename(name.removesuffix(PAGES_SUFFIX)), name.endswith(PAGES_SUFFIX)
            except InvalidArgumentError:  # manifest.json
                continue

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
                result = self._submit(project_id, name, "push", writer.path, len(changes))
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


def _manifest_json(manifest: Manifest) -> bytes:
    return json.dumps(to_dict(manifest), sort_keys=True).encode("utf-8")


def _owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's job: not ours to judge
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


#: Serialises the check-then-submit of pushes in this process, so a retry that
#: arrives while the first request is still being handled finds its diff id.
_PUSH_LOCK = threading.Lock()
_DIFF_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,128}")  # (fullmatch: "$" would let a final newline in)


def _check_diff_id(diff_id: object) -> None:
    if not isinstance(diff_id, str) or not _DIFF_ID_RE.fullmatch(diff_id):
        raise InvalidArgumentError(f"a diff id is 8 to 128 letters, digits, '_' or '-', got {diff_id!r}")

__all__ = ["JobListener", "Service", "manifest_key", "version_key"]
