"""Runs jobs: in order within an index, independently across indexes.

Each (project, index) with queued work gets one worker thread, which exits when
its queue is empty; so a slow build of one index never delays another, and two
jobs of one index never overlap in this process. Across processes sharing a
data folder, ``index_lock`` (an flock on a file per index) gives the same
guarantee.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("mosslite.service")

JobKey = tuple[str, str]  # (project_id, index_name)


class JobRunner:
    def __init__(self, run_job: Callable[[str], None]) -> None:
        self._run_job = run_job
        self._queues: dict[JobKey, deque[str]] = {}
        self._threads: dict[JobKey, threading.Thread] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stopping = False

    def submit(self, key: JobKey, job_id: str) -> None:
        with self._lock:
            if self._stopping:
                return
            self._queues.setdefault(key, deque()).append(job_id)
            if key not in self._threads:
                thread = threading.Thread(target=self._drain, args=(key,), name=f"mosslite-job-{key[1]}", daemon=True)
                self._threads[key] = thread
                thread.start()

    def _drain(self, key: JobKey) -> None:
        while True:
            with self._lock:
                queue = self._queues.get(key)
                if self._stopping or not queue:
                    self._queues.pop(key, None)
                    self._threads.pop(key, None)
                    self._idle.notify_all()
                    return
                job_id = queue.popleft()
            try:
                self._run_job(job_id)
            except Exception:  # the job records its own failure; keep the worker alive
                log.exception("job %s crashed its worker", job_id)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until no job is queued or running (tests and orderly shutdown)."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._threads, timeout=timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Let running jobs finish, drop queued ones (they resume at the next start)."""
        with self._lock:
            self._stopping = True
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout_s)


@contextmanager
def index_lock(lock_dir: Path, key: JobKey) -> Iterator[None]:
    """Exclusive across processes: one builder per index on this data folder."""
    path = lock_dir / key[0] / f"{key[1]}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
