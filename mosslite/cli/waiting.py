"""Jobs you can let go of: the job id as soon as it is submitted, and Ctrl-C stops the waiting, not the job.

A job is the service's once it is submitted: it runs whether or not anyone waits
for it. So every command that submits one says its id on stderr at once (stdout
keeps the result, one JSON document with ``--json``), and Ctrl-C during
``--wait`` ends with where the job is and the command that follows it again,
exit status 130 (128 + SIGINT), instead of click's bare ``Aborted!`` with
nothing to follow (issue #12).

The embedded service runs jobs in this process: it lets a running job finish
before the process exits, and a job cut short (a second Ctrl-C exits at once)
resumes with the next ``mosslite`` command on the same home (service/recovery.py).
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import NoReturn

import click

from ..types import Job, MutationResult
from .config import Credentials
from .output import follow_job, say

#: The exit status of a command interrupted by Ctrl-C, as shells report it.
INTERRUPTED = 128 + signal.SIGINT
#: How waiting ends early, said as it starts.
LET_GO = "Ctrl-C stops the waiting, not the job"


def follow_command(creds: Credentials, job_id: str) -> str:
    """The command that follows the job, with the credential flags this one was given."""
    return " ".join(filter(None, ["mosslite job status", job_id, "--wait", creds.flags]))


def submitted_note(creds: Credentials, result: MutationResult, what: str, *, wait: bool) -> str:
    """What stderr says the moment a job exists: its id, and how to follow it."""
    if wait:
        return f"job {result.job_id} submitted ({what}); waiting for it: {LET_GO}"
    return f"job {result.job_id} submitted ({what}); follow it with: {follow_command(creds, result.job_id)}"


def wait_for_job(creds: Credentials, job_id: str, *, note: str | None = None) -> Job:
    """Follow the job to its end (output.follow_job); on Ctrl-C, let go of it. ``note``
    (default: which job, and ``LET_GO``) goes to stderr first, inside the same guard: a
    Ctrl-C right after it appears lets go too, never a bare "Aborted!"."""
    try:
        say(note or f"waiting for job {job_id}: {LET_GO}")
        return creds.run(lambda client: follow_job(client, job_id))
    except KeyboardInterrupt:
        let_go(creds, job_id)


def let_go(creds: Credentials, job_id: str) -> NoReturn:
    """Say that the job carries on and how to follow it, and exit with status 130."""
    where = f" at {creds.url}" if creds.url else ""
    say(f"stopped waiting; job {job_id} carries on{where}: follow it with: {follow_command(creds, job_id)}")
    if not creds.url:
        signal.signal(signal.SIGINT, _exit_now)  # (before saying so: a Ctrl-C right after it exits)
        say(
            "(embedded service: the job runs in a mosslite process on this home, which finishes it before "
            "exiting; the next mosslite command here resumes it if it is cut short. Ctrl-C again exits now)"
        )
    raise click.exceptions.Exit(INTERRUPTED)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    """A second Ctrl-C: leave without waiting for the embedded job (recovery resumes it)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(INTERRUPTED)


__all__ = ["INTERRUPTED", "LET_GO", "follow_command", "let_go", "submitted_note", "wait_for_job"]
