"""What the CLI prints when a command fails: one line, ``Error: <message> (hint: <what to do>)``.

The one place where errors become words at a prompt (issue #12). ``cli_error``
maps everything a command may raise that is not a bug: our own errors, with a
hint in the CLI's terms where the library's hint is missing or speaks Python, and
OS errors (a missing file, a folder given for a file, no permission), which
Python words as ``[Errno 2] No such file or directory: 'x'``. A message never
spans lines: a log, a ``2>err`` file or a CI summary shows it whole.

Example::

    try:
        ...
    except (MossliteError, OSError) as exc:
        raise cli_error(exc) from exc   # Error: no such file: faq.jsonl
"""

from __future__ import annotations

import click

from ..errors import (
    IndexNotFoundError,
    JobNotFoundError,
    MossliteError,
    ProjectNotFoundError,
    UnauthorizedError,
)

#: CLI hints for errors whose own hint is missing or names Python calls, most specific first.
HINTS: tuple[tuple[type[MossliteError], str], ...] = (
    (IndexNotFoundError, "`mosslite index list` shows what exists"),
    (JobNotFoundError, "job ids (job_1a2b...) are printed by the command that submitted the job"),
    (ProjectNotFoundError, "a project exists once it has a key: mosslite keys create --project NAME"),
    (UnauthorizedError, "`mosslite info` shows the project id and key in force and where each came from"),
)


def cli_error(exc: MossliteError | OSError) -> click.ClickException:
    """The one-line ``click.ClickException`` that reports ``exc``."""
    return click.ClickException(one_line(message_of(exc)))


def message_of(exc: MossliteError | OSError) -> str:
    if isinstance(exc, MossliteError):
        hint = exc.hint
        if hint is None or hint == type(exc).default_hint:
            hint = next((h for cls, h in HINTS if isinstance(exc, cls)), hint)
        return f"{exc.message} (hint: {hint})" if hint else exc.message
    return os_message(exc)


def os_message(exc: OSError) -> str:
    """An OS error in words: what happened to which path, without ``[Errno N]``."""
    path = exc.filename
    if path is None:  # raised with a message of our own (e.g. "no such folder: x")
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {path}"
    if isinstance(exc, IsADirectoryError):
        return f"{path} is a folder; give a file"
    if isinstance(exc, NotADirectoryError):
        return f"{path}: a part of this path is a file, not a folder"
    if isinstance(exc, PermissionError):
        return f"permission denied: {path}"
    reason = exc.strerror or type(exc).__name__
    return f"{reason}: {path}" if exc.filename2 is None else f"{reason}: {path} -> {exc.filename2}"


def one_line(message: str) -> str:
    """``message`` on one line: its lines joined with "; " (blank ones dropped)."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip()) or message


__all__ = ["HINTS", "cli_error", "message_of", "one_line", "os_message"]
