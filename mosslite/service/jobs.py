"""Jobs: their life from row to end, and the bounded pool that runs them.

A mutation's job is queued by ``Jobs.submit`` (its batch file already written and
checked, intake.py / pushes.py), stored ("uploading"), built and published by
build.py, then announced (``manifest.json``, a public index's public copy, listeners)
and followed by pruning.

Invariants (issues #3, #8):
- Every change of a job's status or phase is written to the catalog first, then
  told to the listeners; a job ends ``completed`` (published) or ``failed`` (with
  its error), and its batch file is released either way.
- A job's failure is the job's, not the service's: a crashed embedder or a full
  disk fails that job and the worker goes on. A first build that fails marks its
  index ``failed``; a later one leaves the published version live.
- A running job of a deleted index is stopped at its next progress report, and
  fails with ``INDEX_DELETED`` whatever it tripped on.
- At most ``workers`` threads run jobs, started on demand and gone when there is
  nothing to run: 100 indexes created at once cost ``workers`` threads, not 100.
  They run at a low priority (``_background.lower_priority``): in an embedded
  service they share the cores with the process's queries, in ``mosslite serve``
  with its requests, and a build can wait where a query cannot.
- Two jobs of one index never overlap in this process, and run in the order
  they were submitted. Across processes sharing a data folder, ``index_lock``
  (locks.py: an flock on a file per index) gives the same guarantee.
- One index never holds the pool: after each job its index goes to the back of
  the line, so a long queue of index A takes turns with index B's one job.
- ``cancel`` drops an index's queued jobs (its deletion), and says which job of
  it is running, so the caller can stop that one at its next progress report.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

from .._background import lower_priority
from ..embeddings import get_embedder
from ..errors import IndexNotFoundError, MossliteError
from ..index.batch import read_facts
from ..index.format import utc_now_iso
from ..types import DEFAULT_JOB_WORKERS, Job, JobPhase, JobStatus, Manifest, MutationResult
from ..wire import to_dict
from .batches import Batches
from .build import BuildParts, JobContext, run_build
from .catalog import INDEX_DELETED
from .layout import manifest_key
from .locks import JobKey, remove_index_lock
from .public import PublicArea
from .retention import Retention

log = logging.getLogger("mosslite.service")

PHASE_SLICES = {
    JobPhase.GENERATING_EMBEDDINGS: (0.0, 70.0),
    JobPhase.BUILDING_INDEX: (70.0, 90.0),
    JobPhase.UPLOADING: (90.0, 98.0),
    JobPhase.PUBLISHING: (98.0, 100.0),
}

#: Called as (project_id, job) after every change of a job's status or phase.
JobListener = Callable[[str, Job], None]


class JobRunner:
    def __init__(self, run_job: Callable[[str], None], *, workers: int = DEFAULT_JOB_WORKERS) -> None:
        self._run_job = run_job
        self._workers = workers
        self._queues: dict[JobKey, deque[str]] = {}
        self._ready: deque[JobKey] = deque()  # indexes with queued jobs that nobody is running
        self._running: dict[JobKey, str] = {}
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stopping = False

    def submit(self, key: JobKey, job_id: str) -> None:
        with self._lock:
            if self._stopping:
                return
            self._queues.setdefault(key, deque()).append(job_id)
            if key not in self._running and key not in self._ready:
                self._ready.append(key)
            if len(self._threads) < self._workers:
                thread = threading.Thread(target=self._work, name="mosslite-job", daemon=True)
                self._threads.add(thread)
                thread.start()

    def cancel(self, key: JobKey) -> tuple[list[str], str | None]:
        """Drop the index's queued jobs: (their ids, the id of its running job or None)."""
        with self._lock:
            dropped = list(self._queues.pop(key, ()))
            if key in self._ready:
                self._ready.remove(key)
            return dropped, self._running.get(key)

    def threads(self) -> int:
        with self._lock:
            return len(self._threads)

    def _work(self) -> None:
        lower_priority()  # a build gives way to the queries and requests of its process
        me = threading.current_thread()
        while True:
            with self._lock:
                if self._stopping or not self._ready:
                    self._threads.discard(me)
                    self._idle.notify_all()
                    return
                key = self._ready.popleft()
                job_id = self._queues[key].popleft()
                self._running[key] = job_id
            try:
                self._run_job(job_id)
            except Exception:  # the job records its own failure; keep the worker alive
                log.exception("job %s crashed its worker", job_id)
            finally:
                with self._lock:
                    del self._running[key]
                    if self._queues.get(key):
                        self._ready.append(key)  # the back of the line: others take their turn
                    else:
                        self._queues.pop(key, None)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until no job is queued or running (tests and orderly shutdown)."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._threads, timeout=timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Let running jobs finish, drop queued ones (they resume at the next start)."""
        with self._lock:
            self._stopping = True
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout_s)


class Jobs:
    """The life of every job of one service: queued, stored, built, published or failed.
    ``listeners`` is the service's own list: a listener added there hears every job."""

    def __init__(
        self,
        parts: BuildParts,
        batches: Batches,
        retention: Retention,
        public: PublicArea,
        *,
        owner: str,
        listeners: list[JobListener],
        workers: int = DEFAULT_JOB_WORKERS,
    ) -> None:
        self.parts = parts
        self.catalog = parts.catalog
        self.batches = batches
        self.retention = retention
        self.public = public
        self.owner = owner
        self.listeners = listeners
        self.runner = JobRunner(self.run, workers=workers)
        self.cancelled: set[str] = set()  # running jobs of deleted indexes: stopped at their next progress

    def submit(self, project_id: str, name: str, kind: str, batch: Path, doc_count: int) -> MutationResult:
        """Queue a job for the filled batch file ``batch``, which becomes the job's own."""
        job_id = self.catalog.create_job(project_id, name, kind, doc_count)
        self.catalog.update_job(job_id, owner=self.owner)
        self.batches.adopt(batch, job_id)
        self.notify(project_id, job_id)
        self.runner.submit((project_id, name), job_id)
        return MutationResult(job_id=job_id, index_name=name, doc_count=doc_count)

    def cancel_index(self, project_id: str, name: str) -> None:
        """A deleted index's jobs: its queued ones dropped (their batch files released),
        its running one stopped at its next progress report."""
        dropped, running = self.runner.cancel((project_id, name))
        if running is not None:
            self.cancelled.add(running)
        for job_id in dropped:
            self.batches.release(job_id)

    def notify(self, project_id: str, job_id: str) -> None:
        if not self.listeners:
            return
        job = self.catalog.get_job(project_id, job_id)
        for listener in list(self.listeners):
            listener(project_id, job)

    def run(self, job_id: str) -> None:
        """Run one job to its end (on a pool thread)."""
        project_id = self.catalog.job_project(job_id)
        job = self.catalog.get_job(project_id, job_id)
        if job.status == JobStatus.PENDING_UPLOAD:
            # "Uploading" is the batch reaching durable storage; it happens on the
            # worker so the caller gets its job id at once, as with Moss.
            self.catalog.update_job(job_id, status=JobStatus.UPLOADING)
            self.notify(project_id, job_id)
            if not self.batches.store(job_id):
                self.fail(project_id, job_id, "the job's documents are missing; submit it again")
                return
        self.catalog.update_job(job_id, status=JobStatus.BUILDING)
        self.notify(project_id, job_id)
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
            record = run_build(
                self.parts, context, progress=lambda phase, pct: self._progress(project_id, job_id, phase, pct)
            )
        except MossliteError as exc:
            self.fail(project_id, job_id, str(exc))
            return
        except Exception as exc:  # a crashed embedder or a full disk fails the job, not the service
            log.exception("job %s failed", job_id)
            self.fail(project_id, job_id, f"{type(exc).__name__}: {exc}")
            return
        self.batches.release(job_id)
        if record is None:  # it changed nothing: the newest version stays (run_build)
            self.notify(project_id, job_id)
            return
        self.parts.storage.put_bytes(manifest_key(project_id, job.index_name), _manifest_json(record.manifest))
        try:
            self.public.mirror(project_id, job.index_name)
        except (MossliteError, OSError) as exc:  # the version is published; the next publish or start mirrors it
            log.warning("%s/%s: public copy of v%d failed: %s", project_id, job.index_name, record.manifest.version, exc)
        self.notify(project_id, job_id)
        self.retention.prune(project_id, job.index_name, record.manifest.version)  # after the news is out

    def _upserts(self, job_id: str) -> bool:
        return bool(read_facts(self.batches.job_path(job_id)).get("upsert", 1))

    def _progress(self, project_id: str, job_id: str, phase: str, percent: float) -> None:
        if job_id in self.cancelled:
            raise IndexNotFoundError(INDEX_DELETED)
        # The job's progress is overall, 0-100 across phases; each phase owns a slice.
        low, high = PHASE_SLICES.get(phase, (0.0, 100.0))
        overall = round(low + (high - low) * percent / 100.0, 1)
        self.catalog.update_job(job_id, status=JobStatus.BUILDING, current_phase=phase, progress=overall)
        self.notify(project_id, job_id)

    def fail(self, project_id: str, job_id: str, error: str) -> None:
        if job_id in self.cancelled:  # whatever it tripped on, the reason is the deletion
            self.cancelled.discard(job_id)
            error = INDEX_DELETED
        # The index first: whoever sees the job failed also sees a never-built index
        # failed (the other order let a client polling in between see it "building").
        job = self.catalog.get_job(project_id, job_id)
        try:
            if self.catalog.get_index(project_id, job.index_name).version == 0:
                self.catalog.set_index_status(project_id, job.index_name, "failed")
        except IndexNotFoundError:  # deleted while it ran: its lock file was left to this job
            remove_index_lock(self.parts.lock_dir, (project_id, job.index_name))
        self.catalog.update_job(
            job_id, status=JobStatus.FAILED, error=error, current_phase=None, completed_at=utc_now_iso()
        )
        self.batches.release(job_id)
        self.notify(project_id, job_id)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        return self.runner.wait_idle(timeout_s)

    def stop(self) -> None:
        self.runner.stop()


def _manifest_json(manifest: Manifest) -> bytes:
    return json.dumps(to_dict(manifest), sort_keys=True).encode("utf-8")
