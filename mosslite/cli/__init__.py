"""The ``mosslite`` command: thin commands over the library.

Each command calls one library method and holds no logic of its own; its help
ends with an example, after the options (help.Command). Our errors (and OS
errors such as a missing file or a port in use) become one line on stderr and
exit status 1, through ``_Group.invoke``. Modules: config (credentials,
``init``), indexes (``index``, ``doc``, ``job``), transfer (``index export``, and
the model of a file's embeddings), waiting (a job's id at once; Ctrl-C lets go of
it), query, interactive (the shell of ``query -i``), loading (index and model
loaded and timed before a query), mirror, output (tables, JSON, progress), help
(examples last); ``serve`` and ``keys`` live here.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import socket
import sys
from pathlib import Path
from types import ModuleType

import click

from .. import __version__
from ..errors import MossliteError
from ..types import DEFAULT_JOB_WORKERS, DEFAULT_KEEP_VERSIONS
from .config import init
from .help import Group
from .indexes import doc, index, job
from .mirror import mirror_folder, sync_alias
from .output import emit_json, json_option
from .query import query

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700
DATA_ENV = "MOSSLITE_DATA"


class _Group(Group):
    """Reports our errors as ``Error: <message>`` instead of a traceback."""

    group_class = Group  # subgroups (keys) need no error handling: this invoke wraps theirs

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (MossliteError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc


data_option = click.option(
    "--data",
    "data_dir",
    envvar=DATA_ENV,
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=f"The service's data folder (catalog, version files). Default: ${DATA_ENV}.",
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


@cli.command()
@data_option
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port."
)
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE",
    help="Import MODULE before serving, e.g. to call mosslite.embeddings.register(); "
    "a function mosslite_asgi_middleware(app) in it wraps the HTTP app. Repeatable.",
)
@click.option(
    "--keep-versions",
    default=DEFAULT_KEEP_VERSIONS,
    show_default=True,
    type=click.IntRange(1),
    help="Version files kept per index; older ones are deleted (their page maps stay, for patches).",
)
@click.option(
    "--job-workers",
    default=DEFAULT_JOB_WORKERS,
    show_default=True,
    type=click.IntRange(1),
    help="Threads that run jobs, shared by every index (one index's jobs still run in order).",
)
def serve(
    data_dir: Path, host: str, port: int, plugins: tuple[str, ...], keep_versions: int, job_workers: int
) -> None:
    """Serve the data folder's service over HTTP until interrupted.

    Prints one line, "mosslite serving <url> (data: <folder>)", once listening.

    \b
    Example:
        mosslite serve --data ./srv --port 8700 --plugin my_embedders
    """
    import uvicorn

    from ..service import Service
    from ..service.http import create_app

    loaded = [_import_plugin(module) for module in plugins]
    with _listen(host, port) as listener:
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
        # previous handler: make that a KeyboardInterrupt, so the service closes either way.
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        service = Service(data_dir, keep_versions=keep_versions, job_workers=job_workers)
        try:
            app = create_app(service)
            # A plugin may wrap the ASGI app (metrics, auth, throttling) with a
            # function named mosslite_asgi_middleware(app) -> app.
            for module in loaded:
                app = getattr(module, "mosslite_asgi_middleware", lambda a: a)(app)
            server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
            asyncio.run(_serve(server, listener, data_dir))
        except KeyboardInterrupt:
            pass
        finally:
            service.close()
            signal.signal(signal.SIGTERM, previous)


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

    Only its hash is stored: copy it now. A folder with no service data yet
    becomes a new service's, and stderr says so: a mistyped --data would
    otherwise give a key that no server knows.

    \b
    Example:
        export MOSSLITE_KEY=$(mosslite keys create --project my-project --data ./srv)
    """
    new = not _has_service(data_dir)
    service = _open_service(data_dir)
    try:
        key = service.create_key(project)
        click.echo(key)
        click.echo(f"key id {service.key_id(key)} (as `mosslite keys list` shows it)", err=True)
    finally:
        service.close()
    if new:
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


for _command in (init, index, doc, job, query, mirror_folder, sync_alias):
    cli.add_command(_command)


def main() -> None:
    """The console entry point (``mosslite``, ``python -m mosslite``)."""
    cli(prog_name="mosslite")


# -- helpers ----------------------------------------------------------------------


def _has_service(data_dir: Path) -> bool:
    from ..service import CATALOG_FILE

    return (data_dir / CATALOG_FILE).is_file()


def _open_service(data_dir: Path):  # noqa: ANN202 (Service is imported lazily)
    from ..service import Service

    # Key commands must not resume builds of the data folder they touch.
    return Service(data_dir, start_jobs=False)


def _import_plugin(module: str) -> ModuleType:
    if "" not in sys.path and os.getcwd() not in sys.path:  # as `python -m` and uvicorn's --app-dir do
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module)
    except Exception as exc:
        raise click.ClickException(f"cannot import plugin {module!r}: {type(exc).__name__}: {exc}") from exc


def _listen(host: str, port: int) -> socket.socket:
    """Bind before serving, so a taken port is one clear error and --port 0 works."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP, not create_server's 0: asyncio sets TCP_NODELAY on
    # accepted connections only then, and without it Nagle + delayed ACK add ~45 ms
    # to every keep-alive response (measured: get_index p50 48 ms -> 5.6 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
        return sock
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


async def _serve(server, listener: socket.socket, data_dir: Path) -> None:  # noqa: ANN001 (uvicorn.Server)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if server.started:
        host, port = listener.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"mosslite serving http://{shown}:{port} (data: {data_dir})")
        sys.stdout.flush()
    await task
