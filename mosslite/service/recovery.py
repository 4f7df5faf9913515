"""A start after a crash: clear what a dead process left, resume or fail its jobs.

Invariants (issue #3):
- A job interrupted by a crash is resumed at the next start if its batch was
  stored (status ``uploading`` or later), and marked failed otherwise: a
  ``pending_upload`` job's documents may be half written.
- A job whose owner (``host:pid``) is alive, or on another machine, is not ours
  to judge: it is left to that owner.
- Staging leftovers, batch files of ended jobs and version files stored but
  never published (a crash between storing and publishing) are removed; the
  resumed job builds that version again.
- The staging files of a job that a live process is building (another
  ``mosslite`` on the same data folder: a second terminal, or ``job status``
  while ``index create --wait`` runs) are that process's, and stay: removing its
  file in progress failed the job with FileNotFoundError (issue #12).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from .._fs import TEMP_MARKER
from ..types import JobStatus
from .catalog import Catalog
from .jobs import Jobs
from .layout import stored_versions
from .storage import Storage

log = logging.getLogger("mosslite.service")


def recover(jobs: Jobs, staging_dir: Path) -> None:
    """At start: clear staging leftovers and batch files of ended jobs, and resume
    or fail jobs of dead owners."""
    catalog, batches, storage = jobs.catalog, jobs.batches, jobs.parts.storage
    running_elsewhere = {
        job_id for job_id, _, _, owner in catalog.unfinished_jobs() if _owned_elsewhere(owner, jobs.owner)
    }
    clear_staging(staging_dir, keep=running_elsewhere)
    batches.clean()
    unfinished = {job_id for job_id, *_ in catalog.unfinished_jobs()}
    for job_id in set(batches.job_ids()) - unfinished:  # ended, or never a job
        batches.release(job_id)
    for job_id, project_id, index_name, owner in catalog.unfinished_jobs():
        if _owned_elsewhere(owner, jobs.owner):
            continue
        if catalog.get_job(project_id, job_id).status == JobStatus.PENDING_UPLOAD:
            jobs.fail(project_id, job_id, "the service stopped before the request was stored; submit it again")
            continue
        remove_unpublished(catalog, storage, project_id, index_name)
        catalog.update_job(job_id, owner=jobs.owner)
        log.info("resuming job %s of %s/%s", job_id, project_id, index_name)
        jobs.runner.submit((project_id, index_name), job_id)


def clear_staging(staging_dir: Path, *, keep: set[str]) -> None:
    """Remove the staging files crashed builds left (temp files, unpublished targets and
    their patches), but not those of the jobs in ``keep``: a build's files are named
    after its job."""
    if not staging_dir.is_dir():
        return
    for entry in staging_dir.iterdir():
        if not entry.is_file() or entry.name.split(".", 1)[0] in keep:
            continue
        if TEMP_MARKER in entry.name or entry.suffix in (".sqlite", ".patch"):
            entry.unlink(missing_ok=True)


def _owned_elsewhere(owner: str | None, me: str) -> bool:
    """Whether another live process (or another machine) runs this job."""
    return owner is not None and owner != me and _owner_alive(owner)


def remove_unpublished(catalog: Catalog, storage: Storage, project_id: str, index_name: str) -> None:
    """A crash between storing a version file and publishing it leaves a file no
    catalog row names; it is garbage (its job will build it again)."""
    latest = catalog.latest_version(project_id, index_name)
    newest = latest.manifest.version if latest is not None else 0
    for key, version, _ in stored_versions(storage, project_id, index_name):
        if version > newest:
            log.info("removing unpublished %s", key)
            storage.delete(key)


def this_owner() -> str:
    """``host:pid`` of this process, as a job's owner."""
    return f"{socket.gethostname()}:{os.getpid()}"


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
