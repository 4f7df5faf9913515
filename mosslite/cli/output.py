"""How commands print: rich tables for people, ``--json`` for scripts, progress on stderr.

stdout carries only the result (a table, or with ``--json`` one JSON document),
so ``mosslite ... --json | jq`` always parses. Progress bars and spinners go to
stderr, and only when stderr is a terminal: piped output has none.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..client.arguments import MAX_SECONDS
from ..errors import JobFailedError
from ..types import Job, JobStatus

JOB_POLL_INTERVAL_S = 0.1

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table.")


def stdout() -> Console:
    # Built per call: click's test runner and pytest swap sys.stdout.
    return Console(file=sys.stdout, soft_wrap=False)


def stderr() -> Console:
    return Console(file=sys.stderr, soft_wrap=True)


def plain(record: Any) -> Any:
    """A record (dataclass) as JSON-ready data; lists and dicts recursively."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {k: plain(v) for k, v in dataclasses.asdict(record).items()}
    if isinstance(record, (list, tuple)):
        return [plain(r) for r in record]
    if isinstance(record, dict):
        return {k: plain(v) for k, v in record.items()}
    return record


def emit_json(data: Any) -> None:
    click.echo(json.dumps(plain(data), indent=2, ensure_ascii=False))


def emit_json_line(data: Any) -> None:
    click.echo(json.dumps(plain(data), ensure_ascii=False))
    sys.stdout.flush()


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None) -> None:
    grid = Table(title=title, header_style="bold cyan")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*("" if v is None else str(v) for v in row))
    stdout().print(grid)


def fields(record: Any, *, title: str | None = None) -> None:
    """One record as a two-column table: field, value."""
    data = plain(record)
    grid = Table(title=title, show_header=False)
    grid.add_column(style="bold cyan")
    grid.add_column(overflow="fold")
    for key, value in data.items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
        grid.add_row(key, "" if shown is None else str(shown))
    stdout().print(grid)


def say(message: str) -> None:
    """A status line for people, on stderr (stdout stays the result)."""
    stderr().print(message, highlight=False)


def human_bytes(size_bytes: int) -> str:
    """``48.0 KiB``: a size as people read it."""
    size = float(size_bytes)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size_bytes} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def duration(ms: float) -> str:
    """``0.85 ms``, ``35 ms``, ``1.74 s``: a time as people read it."""
    if ms < 10:
        return f"{ms:.2f} ms"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def plural(count: int, noun: str) -> str:
    """``1 result``, ``2 results``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def shorten(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@contextmanager
def spinner(message: str) -> Iterator[None]:
    """A spinner on stderr while slow work (a download) runs; nothing when piped."""
    console = stderr()
    if not console.is_terminal:
        yield
        return
    with console.status(message):
        yield


async def follow_job(client: Any, job_id: str) -> Job:
    """Wait for a job (MossClient.get_job_status), with a live bar of status, phase and
    percent on a terminal. Raises JobFailedError if it failed."""
    console = stderr()
    if not console.is_terminal:
        # (as long as it takes: the library's default gives up after 10 minutes)
        return await client.wait_for_job(job_id, poll_interval_seconds=JOB_POLL_INTERVAL_S, timeout_seconds=MAX_SECONDS)
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"job {job_id}", total=100)
        while True:
            job = await client.get_job_status(job_id)
            phase = f" · {job.current_phase}" if job.current_phase else ""
            done = 100 if job.status == JobStatus.COMPLETED else job.progress
            progress.update(task, completed=done, description=f"{job.index_name}: {job.status}{phase}")
            if job.status == JobStatus.FAILED:
                raise JobFailedError(f"job {job_id} failed: {job.error}", job_id=job_id, index=job.index_name)
            if job.status == JobStatus.COMPLETED:
                return job
            await asyncio.sleep(JOB_POLL_INTERVAL_S)
