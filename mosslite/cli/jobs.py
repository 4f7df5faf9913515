"""Jobs from the command line: the options of a command that queues one (``-f``,
``--wait``), what it prints once the job is queued, and ``mosslite job status``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from ..errors import MossliteError
from .config import Credentials, client_options
from .help import Group
from .output import emit_json, fields, json_option, say
from .waiting import submitted_note, wait_for_job

file_option = click.option(
    "-f",
    "--file",
    "path",
    required=True,
    metavar="FILE",
    help="Documents: a JSON array, JSON Lines or CSV (id,text,metadata) file; - reads stdin.",
)
wait_option = click.option("--wait", is_flag=True, help="Wait for the job to finish, with a progress bar on a terminal.")


@contextmanager
def cli_hint(error: type[MossliteError], hint: str) -> Iterator[None]:
    """Re-raise ``error`` with a hint in the CLI's terms: the library's hints name
    Python calls (``MutationOptions(upsert=True)``), which mean nothing at a prompt."""
    try:
        yield
    except error as exc:
        raise type(exc)(exc.message, hint=hint, **exc.fields) from exc


def report_mutation(creds: Credentials, result: Any, wait: bool, as_json: bool, what: str) -> None:
    """Print a MutationResult; with ``wait``, follow its job and print the finished Job.
    The result goes to stdout (``JOB=$(... --json | jq -r .job_id)`` works, and so does
    reading it in a pipe); the job id, at once, and how to follow it go to stderr
    (waiting.py: Ctrl-C during ``--wait`` lets go of the job, which carries on)."""
    if not wait:
        say(submitted_note(creds, result, what, wait=False))
        emit_json(result) if as_json else fields(result, title=what)
        return
    job = wait_for_job(creds, result.job_id, note=submitted_note(creds, result, what, wait=True))
    emit_json(job) if as_json else fields(job, title=f"{what}: job {job.job_id}")


@click.group(cls=Group)
def job() -> None:
    """Mutation jobs: follow them.

    \b
    Example:
        mosslite job status JOB_ID --wait
    """


@job.command("status")
@click.argument("job_id")
@wait_option
@json_option
@client_options
def job_status(creds: Credentials, job_id: str, wait: bool, as_json: bool) -> None:
    """Show job JOB_ID (MossClient.get_job_status); --wait follows it to the end
    with a live bar of its status, phase and percent.

    \b
    Example:
        mosslite job status 3f2a9c --wait
    """
    if wait:
        found = wait_for_job(creds, job_id)
    else:
        found = creds.run(lambda client: client.get_job_status(job_id))
    emit_json(found) if as_json else fields(found, title=f"job {job_id}")
