"""The service core: ``Service``, the facade every caller of the service holds.

It wires the parts, one each per data folder, and answers each public method by
handing it to the part that holds the behaviour:

    <data>/catalog.sqlite   Catalog (catalog.py): keys, indexes, versions, jobs, pushes
    <data>/storage/         Storage (storage/): version files, page maps, manifests
                            (and a public index's copies under _public/: public.py)
    <data>/batches/         Batches (batches.py): each job's documents
    <data>/staging/         builds in progress (build.py), local copies (versions.py)
    <data>/locks/           one flock per index (locks.py)

Invariants (issue #3):
- Authorization is per project: every method takes the ``project_id`` the
  caller proved a key for; an index of another project is simply not found.
- No rule lives here: each is kept by the module that holds it (intake.py,
  jobs.py, build.py, recovery.py, versions.py, retention.py, pushes.py), and
  both transports reach it through these same methods.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError, UnauthorizedError
from ..types import (
    DEFAULT_JOB_WORKERS,
    DEFAULT_KEEP_VERSIONS,
    DEFAULT_LINK_LIFETIME_S,
    MAX_MANIFEST_AGE_S,
    DocsPage,
    DocumentInfo,
    IndexInfo,
    Job,
    Manifest,
    MutationOptions,
    MutationResult,
    PushIndexResult,
    VersionInfo,
)
from ..validation import validate_name
from .batches import Batches
from .build import BuildParts
from .catalog import Catalog, VersionRecord
from .intake import Intake
from .jobs import JobListener, Jobs
from .links import Links, ManifestAnswer
from .locks import remove_index_lock
from .patch_store import VersionPatch
from .public import PublicArea
from .pushes import Pushes
from .recovery import recover, this_owner
from .retention import Retention
from .storage import Storage
from .storage.directory import DirectoryStorage
from .versions import Versions

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
        link_lifetime_s: int = DEFAULT_LINK_LIFETIME_S,
        public_url: str | None = None,
        public_max_age_s: int = 0,
    ) -> None:
        if isinstance(keep_versions, bool) or not isinstance(keep_versions, int) or keep_versions < 1:
            raise InvalidArgumentError(f"keep_versions must be an integer >= 1, got {keep_versions!r}")
        if isinstance(job_workers, bool) or not isinstance(job_workers, int) or job_workers < 1:
            raise InvalidArgumentError(f"job_workers must be an integer >= 1, got {job_workers!r}")
        if (
            isinstance(public_max_age_s, bool)
            or not isinstance(public_max_age_s, int)
            or not 0 <= public_max_age_s <= MAX_MANIFEST_AGE_S
        ):
            raise InvalidArgumentError(
                f"public_max_age_s must be an integer from 0 to {MAX_MANIFEST_AGE_S}, got {public_max_age_s!r}"
            )
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
        self.links = Links(self.storage, link_lifetime_s)
        self.retention = Retention(self.storage, self.versions, keep_versions=keep_versions)
        self.public = PublicArea(
            self.catalog,
            self.storage,
            self.lock_dir,
            keep_versions=keep_versions,
            base_url=public_url,
            manifest_max_age_s=public_max_age_s,
        )
        build_parts = BuildParts(
            catalog=self.catalog,
            storage=self.storage,
            local_copy=self.versions.local_copy,
            staging_dir=self.staging_dir,
            lock_dir=self.lock_dir,
        )
        self.jobs = Jobs(
            build_parts, self.batches, self.retention, self.public, owner=self.owner, listeners=[], workers=job_workers
        )
        self.intake = Intake(self.catalog, self.batches, self.versions, self.jobs)
        self.pushes = Pushes(self.catalog, self.batches, self.jobs)
        if start_jobs:
            recover(self.jobs, self.staging_dir)
            self.public.catch_up()

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
        """Embedded mode: the first key used for a project becomes its key; any other
        is refused with a hint saying where the project's keys are (issue #12)."""
        validate_name(project_id, what="project")
        if not isinstance(key, str) or not key:
            raise UnauthorizedError("a project key is required", project=project_id)
        count = self.catalog.key_count(project_id)
        if count == 0:
            self.catalog.add_key(project_id, key)
        elif self.catalog.project_of_key(key) != project_id:  # (issue #12: say whose keys these are)
            raise UnauthorizedError(
                f"the key is not valid for project {project_id!r}",
                project=project_id,
                hint=f"the embedded service ({self.data_dir}) has {count} key(s) for it and adopts a key only for "
                "a project with none; use one of them (`mosslite init` writes its own to config.json in the same "
                f"home; `mosslite info` shows which key is in force), or add one: mosslite keys create --project {project_id}",
            )

    # -- mutations (intake.py) --------------------------------------------------------

    def create_index(
        self, project_id: str, name: str, docs: Sequence[DocumentInfo], model_id: str | None = None
    ) -> MutationResult:
        """Start building a new index from ``docs`` (any iterable: a generator streams
        through a batch file in bounded memory)."""
        return self.intake.create_index(project_id, name, docs, model_id)

    def add_docs(
        self, project_id: str, name: str, docs: Sequence[DocumentInfo], options: MutationOptions | None = None
    ) -> MutationResult:
        return self.intake.add_docs(project_id, name, docs, options)

    def delete_docs(self, project_id: str, name: str, ids: Sequence[str]) -> MutationResult:
        return self.intake.delete_docs(project_id, name, ids)

    # -- uploads: a batch in several calls (issue #7) ----------------------------------

    def open_upload(
        self, project_id: str, name: str, kind: str, *, model_id: str | None = None, upsert: bool = True
    ) -> str:
        """Start a batch for ``create_index`` or ``add_docs`` on ``name``, to be filled by
        ``append_upload`` and turned into a job by ``commit_upload``. Example::

            upload = service.open_upload("proj", "faq", "add_docs")
            service.append_upload("proj", upload, docs[:50_000])
            service.append_upload("proj", upload, docs[50_000:])
            job = service.commit_upload("proj", upload)
        """
        return self.intake.open_upload(project_id, name, kind, model_id=model_id, upsert=upsert)

    def append_upload(self, project_id: str, upload_id: str, docs: Sequence[DocumentInfo]) -> int:
        """Check ``docs`` and add them to the upload; returns how many it holds now. A
        refused batch ends the upload (its id is no longer found): start again."""
        return self.intake.append_upload(project_id, upload_id, docs)

    def commit_upload(self, project_id: str, upload_id: str) -> MutationResult:
        """Turn the upload into a job (creating the index, for a create)."""
        return self.intake.commit_upload(project_id, upload_id)

    def abort_upload(self, project_id: str, upload_id: str) -> None:
        self.intake.abort_upload(project_id, upload_id)

    # -- indexes ----------------------------------------------------------------

    def get_index(self, project_id: str, name: str) -> IndexInfo:
        validate_name(name)
        return self.public.describe(project_id, self.catalog.get_index(project_id, name))

    def list_indexes(self, project_id: str) -> list[IndexInfo]:
        return [self.public.describe(project_id, info) for info in self.catalog.list_indexes(project_id)]

    def set_public(self, project_id: str, name: str, public: bool) -> IndexInfo:
        """Public read mode on or off (public.py): on, the newest version and a manifest
        naming it are copied where anyone with ``public_url`` reads them, after every
        publish too; off, the manifest and the copies are deleted. Example::

            info = service.set_public("proj", "faq", True)
            info.public_manifest   # https://cdn.example.com/mosslite/_public/proj/faq/manifest.json
        """
        return self.public.set_public(project_id, name, public)

    def delete_index(self, project_id: str, name: str) -> None:
        """Delete the index, its versions and its queued jobs (which fail), stop its
        running job, and leave no file or folder of it behind."""
        validate_name(name)
        keys = self.catalog.delete_index(project_id, name)
        self.jobs.cancel_index(project_id, name)
        self.retention.remove_index(project_id, name, keys)
        self.public.remove_index(project_id, name)
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

    def manifest_answer(self, project_id: str, name: str) -> ManifestAnswer:
        """The manifest with what the HTTP route sends beside it: download links straight
        to the object store when storage signs URLs, a public index's manifest URL
        (public.py), and the ETag and lifetime that keep a cached answer from outliving
        its links (links.py). Example::

            answer = service.manifest_answer("proj", "faq")
            answer.links.version_url   # presigned GET of the version file, or links is None
        """
        record = self.versions.latest(project_id, name)
        return self.links.answer(record, time.time(), public_manifest=self.public.manifest_url(project_id, name))

    def list_versions(self, project_id: str, name: str) -> list[VersionInfo]:
        """The index's published versions, newest first: number, size, documents, time,
        and whether its file is still kept (older ones are pruned). Example::

            [v.version for v in service.list_versions("proj", "faq")]   # [5, 4, 3, 2, 1]
        """
        return self.versions.list_versions(project_id, name)

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

    def prune(self, project_id: str, index_name: str, newest: int) -> None:
        """Delete the version files and page maps of ``index_name`` that retention.py lets go."""
        self.retention.prune(project_id, index_name, newest)

    # -- jobs -------------------------------------------------------------------

    def get_job(self, project_id: str, job_id: str) -> Job:
        return self.catalog.get_job(project_id, job_id)

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
        return self.pushes.push(project_id, name, diff_id, changeset, model_id, dimension)

    def get_push(self, project_id: str, name: str, diff_id: str) -> PushIndexResult:
        """The state of a push by its diff id; ``overwritten`` once its job completed."""
        return self.pushes.get_push(project_id, name, diff_id)
