"""numpy's BLAS on one thread, for processes that query now and then and wait between.

OpenBLAS runs a large matrix-vector product (the exact vector scan) on several
threads, and its worker threads then spin for tens of milliseconds waiting for
more work. A process that answers a query and waits (an MCP server, the query
shell) so burns a core after every query: measured on 2 cores, a `mosslite mcp`
whose searches came 50 ms apart spent 59 ms of CPU per search, 3.7 ms on one
thread, while its host process's own queries went from 0.46 to ~7 ms p50 beside
it. One thread costs a query ~0.15 ms at 10k documents (0.26 -> 0.41 ms, vector
only). Builds keep every thread (``mosslite serve`` does not call this).

The library never calls this on import: a program that embeds mosslite decides
for its own process (``threadpoolctl.threadpool_limits(1, "blas")``, or
``OPENBLAS_NUM_THREADS=1`` before numpy is imported).
"""

from __future__ import annotations

from typing import Any

_limits: list[Any] = []  # kept: the limit lasts as long as the object


def one_blas_thread() -> None:
    """Limit numpy's BLAS to one thread for the rest of this process (idempotent)."""
    if not _limits:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415 (only the commands that wait)

        _limits.append(threadpool_limits(limits=1, user_api="blas"))
