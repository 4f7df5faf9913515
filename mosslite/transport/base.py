"""How a client reaches the service: in-process, or over HTTP. Callers never learn which.

Every method is a coroutine and raises only errors from ``mosslite.errors``
(the HTTP transport rebuilds them from the wire; connection failures become
UnavailableError). Reads are idempotent; mutations are not retried by the
transport, because a lost response would otherwise submit a job twice.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import JobFailedError, TimeoutError_
from ..types import (
    DEFAULT_JOB_POLL_S,
    DEFAULT_JOB_TIMEOUT_S,
    MAX_PAGE_DOCS,
    DocsPage,
    DocumentInfo,
    IndexInfo,
    Job,
    JobStatus,
    Manifest,
    MutationOptions,
    MutationResult,
    PushIndexResult,
    VersionInfo,
)

#: Called with the number of bytes written so far during a download (possibly
#: from the worker thread that writes them).
ByteProgress = Callable[[int], None]


class Transport(ABC):
    project_id: str
    #: Which service this transport reaches, as a folder name. The client cache keeps
    #: each source's copies apart (``<home>/cache/<source>/<project>/``), so a copy
    #: is only ever served for the service it came from (#12).
    source: str = "custom"

    @abstractmethod
    async def create_index(self, name: str, docs: Iterable[DocumentInfo], model_id: str | None) -> MutationResult:
        """``docs`` is read once, as it is sent: an iterable of any size streams through."""

    @abstractmethod
    async def add_docs(self, name: str, docs: Iterable[DocumentInfo], options: MutationOptions) -> MutationResult:
        """As ``create_index``."""

    @abstractmethod
    async def delete_docs(self, name: str, ids: Sequence[str]) -> MutationResult: ...

    @abstractmethod
    async def get_job(self, job_id: str) -> Job: ...

    async def wait_for_job(
        self, job_id: str, poll_s: float = DEFAULT_JOB_POLL_S, timeout_s: float = DEFAULT_JOB_TIMEOUT_S
    ) -> Job:
        """Poll until the job ends. Raises JobFailedError if it failed, TimeoutError_ if it
        has not ended within ``timeout_s`` (callers check their arguments first)."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = await self.get_job(job_id)
            if job.status == JobStatus.COMPLETED:
                return job
            if job.status == JobStatus.FAILED:
                raise JobFailedError(f"job {job_id} failed: {job.error}", job_id=job_id, index=job.index_name)
            if time.monotonic() >= deadline:
                raise TimeoutError_(
                    f"job {job_id} is still {job.status} after {timeout_s} s",
                    job_id=job_id,
                    hint="call wait_for_job again, or raise timeout_seconds",
                )
            await asyncio.sleep(poll_s)

    @abstractmethod
    async def get_index(self, name: str) -> IndexInfo: ...

    @abstractmethod
    async def list_indexes(self) -> list[IndexInfo]: ...

    @abstractmethod
    async def delete_index(self, name: str) -> None:
        """Missing index: IndexNotFoundError."""

    @abstractmethod
    async def set_public(self, name: str, public: bool) -> IndexInfo:
        """Public read mode on or off (service/public.py); the index as it is then.
        Missing index: IndexNotFoundError; on, from a service with no public URL:
        ConflictError. Idempotent."""

    @abstractmethod
    async def get_docs_page(
        self,
        name: str,
        ids: Sequence[str] | None,
        filter: dict[str, Any] | None,
        include_embedding: bool = True,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> DocsPage:
        """One page of documents (Service.get_docs_page); its next_cursor continues it."""

    async def get_docs(
        self, name: str, ids: Sequence[str] | None, filter: dict[str, Any] | None, include_embedding: bool = True
    ) -> list[DocumentInfo]:
        """Every matching document, page by page: the service never holds them all at once."""
        docs: list[DocumentInfo] = []
        cursor = None
        while True:
            page = await self.get_docs_page(name, ids, filter, include_embedding, limit=MAX_PAGE_DOCS, cursor=cursor)
            docs += page.docs
            if page.next_cursor is None:
                return docs
            cursor = page.next_cursor

    @abstractmethod
    async def manifest(self, name: str) -> Manifest:
        """The newest published version. No index, or none published: IndexNotFoundError."""

    @abstractmethod
    async def list_versions(self, name: str) -> list[VersionInfo]:
        """The index's published versions, newest first, each saying whether the service
        still keeps its file (Service.list_versions). Missing index: IndexNotFoundError."""

    @abstractmethod
    async def download(
        self, name: str, version: int, dest: Path, *, offset: int = 0, progress: ByteProgress | None = None
    ) -> str | None:
        """Write the version file's bytes from ``offset`` on to ``dest`` (appending when
        offset > 0, which is how an interrupted download resumes). The caller verifies
        the sha256; to spare it a second read of the file, a transport that streams
        the bytes returns the sha256 (hex) of the whole of ``dest``, else None."""

    async def download_patch(
        self, name: str, version: int, base_version: int, dest: Path, *, base_path: Path | None = None
    ) -> bool:
        """Write to ``dest`` a page patch (format in index/page_patch.py) that turns
        ``base_version``, which the caller holds (at ``base_path``, when it says), into
        ``version``. False when there is none to be had: the service has no patch from
        that version, or this transport's ``download`` costs no more. The caller
        verifies the patched file."""
        return False

    @abstractmethod
    async def push(
        self, name: str, diff_id: str, changeset: bytes, model_id: str | None, dimension: int | None
    ) -> PushIndexResult:
        """Submit a session's diff (a SQLite changeset) to be applied onto the latest
        version of ``name``; creates the index if it does not exist. Idempotent by
        ``diff_id``: resending one returns the first push's job, so a caller whose
        answer was lost may simply retry (issue #5)."""

    @abstractmethod
    async def get_push(self, name: str, diff_id: str) -> PushIndexResult:
        """The state of a push; unknown diff id: NotFoundError."""

    def watch_dir(self, name: str) -> Path | None:
        """A local folder whose manifest.json changes when a version is published,
        if the service is in this process (lets refresh react at once); else None."""
        return None

    async def aclose(self) -> None:
        return None
