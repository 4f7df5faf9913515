"""The ``mosslite`` command: thin commands over the library.

Each command calls one library method and holds no logic of its own; its help
ends with an example, after the options (help.Command). Our errors (and OS
errors such as a missing file or a port in use) become one line on stderr with
a hint, and exit status 1: ``_Group.invoke`` hands them to errors.cli_error,
the one place they are worded. Modules: config (credentials, ``init``), home
(where everything lives), info, indexes (``index``, ``doc``, ``job``), transfer
(``index export``, and the model of a file's embeddings), waiting (a job's id at
once; Ctrl-C lets go of it), sending (Ctrl-C while sending queues nothing),
query, interactive (the shell of ``query -i``), loading (index and model loaded
and timed before a query), mirror, serve, mcp (the MCP server, over
``mosslite.integrations.mcp``), output
(tables, JSON, progress), errors, help (examples last); ``keys`` lives here.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from .. import __version__
from ..errors import MossliteError
from .config import init
from .documents import doc
from .errors import cli_error
from .help import Group
from .home import DATA_ENV, embedded_data_dir
from .home import has_service as _has_service
from .indexes import index
from .info import info
from .jobs import job
from .mcp import mcp
from .mirror import mirror_folder, sync_alias
from .output import emit_json, json_option, say
from .query import query
from .serve import serve
from .waiting import INTERRUPTED

#: The exit status of a command whose reader closed the pipe, as shells report SIGPIPE.
PIPE_CLOSED = 128 + signal.SIGPIPE


class _Group(Group):
    """Reports our errors as ``Error: <message>`` instead of a traceback."""

    group_class = Group  # subgroups (keys) need no error handling: this invoke wraps theirs

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `mosslite ... | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (no second error at exit)
            raise click.exceptions.Exit(PIPE_CLOSED) from None
        except (MossliteError, OSError) as exc:
            raise cli_error(exc) from exc
        except KeyboardInterrupt:  # not click's bare "Aborted!" (a job's wait and a send say more)
            say("interrupted (Ctrl-C) before the command finished")
            raise click.exceptions.Exit(INTERRUPTED) from None


data_option = click.option(
    "--data",
    "data_dir",
    envvar=DATA_ENV,
    default=lambda: embedded_data_dir(),
    show_default=f"${DATA_ENV}, else the embedded service's: $MOSSLITE_HOME/service",
    type=click.Path(file_okay=False, path_type=Path),
    help="The service's data folder (catalog, version files).",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mosslite")
def cli() -> None:
    """mosslite: an embedded, SQLite-backed, local-first search store.

    Commands that reach the service take --project-id, --project-key and --url,
    else MOSS_PROJECT_ID, MOSS_PROJECT_KEY and MOSS_URL, else the config file
    written by `mosslite init`; no URL means the embedded service under
    $MOSSLITE_HOME (~/.mosslite). Add --json for output scripts can parse.

    \b
    Example:
        mosslite init && mosslite index create faq -f faq.jsonl --wait && mosslite query faq "refunds"
    """


@cli.group()
def keys() -> None:
    """Project keys: create and list them.

    \b
    Example:
        mosslite keys list --project my-project --data ./srv
    """


@keys.command("create")
@click.option("--project", required=True, help="The project the key opens.")
@data_option
def keys_create(project: str, data_dir: Path) -> None:
    """Create a key for PROJECT (Service.create_key) and print only the key.

    Only its hash is stored: copy it now. Without --data the key is for the
    embedded service, the one commands without --url use. A folder with no
    service data yet becomes a new service's, and stderr says so: a mistyped
    --data would otherwise give a key that no server knows.

    \b
    Example:
        export MOSS_PROJECT_KEY=$(mosslite keys create --project my-project --data ./srv)
    """
    new = not _has_service(data_dir)
    service = _open_service(data_dir)
    try:
        key = service.create_key(project)
        click.echo(key)
        click.echo(f"key id {service.key_id(key)} (as `mosslite keys list` shows it)", err=True)
    finally:
        service.close()
    if new and data_dir == embedded_data_dir():
        click.echo(f"{data_dir} held no service yet; it does now: the embedded one, used without --url", err=True)
    elif new:
        click.echo(f"{data_dir} held no service yet; it does now: mosslite serve --data {data_dir}", err=True)


@keys.command("list")
@click.option("--project", required=True, help="The project whose keys to list.")
@data_option
@json_option
def keys_list(project: str, data_dir: Path, as_json: bool) -> None:
    """List PROJECT's keys: key id and creation time, one per line (with --json, a list
    of {"key_id", "created_at"}).

    A key id is the first 8 hex digits of the key's HMAC; `mosslite keys create`
    prints it on stderr beside the new key. No part of a key is stored.

    \b
    Example:
        mosslite keys list --project my-project --data ./srv --json
    """
    if not _has_service(data_dir):
        raise click.ClickException(f"{data_dir} holds no service data (no catalog): is --data right?")
    service = _open_service(data_dir)
    try:
        rows = service.list_keys(project)
    finally:
        service.close()
    if not rows:
        click.echo(f"no keys for project {project!r}", err=True)
    if as_json:
        emit_json([{"key_id": key_id, "created_at": created_at} for key_id, created_at in rows])
        return
    for key_id, created_at in rows:
        click.echo(f"{key_id}\t{created_at}")


for _command in (init, info, serve, index, doc, job, query, mirror_folder, sync_alias, mcp):
    cli.add_command(_command)


def main() -> None:
    """The console entry point (``mosslite``, ``python -m mosslite``)."""
    cli(prog_name="mosslite")


# -- helpers ----------------------------------------------------------------------


def _open_service(data_dir: Path):  # noqa: ANN202 (Service is imported lazily)
    from ..service import Service

    # Key commands must not resume builds of the data folder they touch.
    return Service(data_dir, start_jobs=False)
