"""Runs jobs: in order within an index, fairly across indexes, on a bounded pool.

Invariants (issues #3, #8):
- At most ``workers`` threads run jobs, started on demand and gone when there is
  nothing to run: 100 indexes created at once cost ``workers`` threads, not 100.
- Two jobs of one index never overlap in this process, and run in the order
  they were submitted. Across processes sharing a data folder, ``index_lock``
  (locks.py: an flock on a file per index) gives the same guarantee.
- One index never holds the pool: after each job its index goes to the back of
  the line, so a long queue of index A takes turns with index B's one job.
- ``cancel`` drops an index's queued jobs (its deletion), and says which job of
  it is running, so the caller can stop that one at its next progress report.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from ..types import DEFAULT_JOB_WORKERS
from .locks import JobKey

log = logging.getLogger("mosslite.service")


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
