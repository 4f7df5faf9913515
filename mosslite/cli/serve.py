"""``mosslite serve``: a data folder's service over HTTP, on uvicorn, and what it says.

A server that talks (issue #12): on stdout a banner once listening (the URL, the
data folder, the storage, where the API docs are), then uvicorn's access log,
one line per request (a 401 among them, with its reason as a warning on
stderr), and one line when it stops on SIGINT or SIGTERM, after the service has
closed. uvicorn's own messages and errors go to stderr, in its format.
``--log-level`` and ``--access-log/--no-access-log`` are uvicorn's.

Invariant: the banner's first line is ``mosslite serving <url> (data: <folder>)``,
printed only once the socket accepts connections; scripts and tests read the
URL from it (with ``--port 0`` it is the only place the port is said).
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import os
import signal
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from ..types import DEFAULT_JOB_WORKERS, DEFAULT_KEEP_VERSIONS, DEFAULT_LINK_LIFETIME_S, MAX_MANIFEST_AGE_S
from .help import Command
from .home import DATA_ENV

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@click.command(cls=Command)
@click.option(
    "--data",
    "data_dir",
    envvar=DATA_ENV,
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=f"The service's data folder (catalog, version files). Default: ${DATA_ENV}.",
)
@click.option(
    "--storage",
    "storage_url",
    default=None,
    metavar="URL",
    help="Where version files live: a folder (default: DATA/storage), or s3://BUCKET/PREFIX in an "
    "S3-compatible store, its credentials from $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY.",
)
@click.option(
    "--s3-endpoint",
    envvar="AWS_ENDPOINT_URL",
    default=None,
    metavar="URL",
    help="The S3 store's endpoint, e.g. http://127.0.0.1:8333 (default: $AWS_ENDPOINT_URL, else AWS).",
)
@click.option("--s3-region", envvar="AWS_REGION", default=None, help="The S3 region (default: $AWS_REGION).")
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
@click.option(
    "--link-lifetime",
    "link_lifetime_s",
    default=DEFAULT_LINK_LIFETIME_S,
    show_default=True,
    type=click.IntRange(3),
    help="Seconds a manifest's download links (presigned URLs, S3 storage only) work.",
)
@click.option(
    "--public-url",
    default=None,
    metavar="URL",
    help="The URL under which storage keys are readable without credentials (a CDN in front of the bucket, "
    "or its own URL); indexes can then be made public: mosslite index public NAME --on. "
    "README: 'Public read mode'.",
)
@click.option(
    "--public-max-age",
    "public_max_age_s",
    default=0,
    show_default=True,
    type=click.IntRange(0, MAX_MANIFEST_AGE_S),
    metavar="SECONDS",
    help="How long a CDN in front of --public-url may answer a public manifest without asking the bucket: "
    "devices see a new version up to that much later, and the bucket sees one poll per edge per that many "
    "seconds. 0: the CDN asks the bucket (conditionally) every time.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="uvicorn's and mosslite's log level (stderr); warning hides the access log.",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="One line per request on stdout.")
def serve(
    data_dir: Path,
    storage_url: str | None,
    s3_endpoint: str | None,
    s3_region: str | None,
    host: str,
    port: int,
    plugins: tuple[str, ...],
    keep_versions: int,
    job_workers: int,
    link_lifetime_s: int,
    public_url: str | None,
    public_max_age_s: int,
    log_level: str,
    access_log: bool,
) -> None:
    """Serve the data folder's service over HTTP until interrupted.

    Once listening it prints "mosslite serving <url> (data: <folder>)" and where
    the storage and the API docs (<url>/docs) are; then a line per request, and a
    last line when stopped (Ctrl-C or SIGTERM). Make a key for a project first:
    mosslite keys create --project NAME --data FOLDER.

    \b
    Example:
        mosslite serve --data ./srv --port 8700 --plugin my_embedders
        mosslite serve --data ./srv --storage s3://my-bucket/mosslite --s3-endpoint http://127.0.0.1:8333
    """
    import uvicorn

    from ..service import Service
    from ..service.http import create_app

    loaded = [_import_plugin(module) for module in plugins]
    storage = _open_storage(storage_url, s3_endpoint, s3_region) if storage_url else None
    with listen(host, port) as listener:
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
        # previous handler: make that a KeyboardInterrupt, so the service closes either way.
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        service = Service(
            data_dir,
            storage=storage,
            keep_versions=keep_versions,
            job_workers=job_workers,
            link_lifetime_s=link_lifetime_s,
            public_url=public_url,
            public_max_age_s=public_max_age_s,
        )
        server = None
        try:
            app = create_app(service)
            # A plugin may wrap the ASGI app (metrics, auth, throttling) with a
            # function named mosslite_asgi_middleware(app) -> app.
            for module in loaded:
                app = getattr(module, "mosslite_asgi_middleware", lambda a: a)(app)
            bound_host, bound_port = listener.getsockname()[:2]
            config = uvicorn.Config(
                app,
                host=bound_host,  # (only for uvicorn's own "running on" line: it serves the listener)
                port=bound_port,
                log_config=log_config(log_level),
                log_level=log_level.lower(),
                access_log=access_log,
                lifespan="off",  # the app has no startup or shutdown of its own
            )
            server = _server(config)
            where = f" at {_without_userinfo(s3_endpoint)}" if s3_endpoint and service.storage.scheme == "s3" else ""
            banner = [
                f"  storage: {service.storage.url}{where}; {keep_versions} version(s) kept per index; "
                f"{job_workers} job worker(s)",
                f"  API docs: {_url(bound_host, bound_port)}/docs (OpenAPI: /v1/openapi.json); Ctrl-C stops",
            ]
            if service.public.base_url is not None:
                banner.insert(1, f"  public indexes: read at {service.public.base_url}/_public/ without a key")
            asyncio.run(_serve(server, listener, data_dir, banner))
        except KeyboardInterrupt:
            pass
        finally:
            service.close()
            signal.signal(signal.SIGTERM, previous)
        if server is not None and server.started:
            why = signal.Signals(server.stopped_by).name if server.stopped_by else "its end"
            click.echo(f"mosslite stopped on {why}; the service closed cleanly (data: {data_dir})")


def _server(config: Any) -> Any:
    """uvicorn's Server, remembering the signal that stopped it (for the last line)."""
    import uvicorn

    class Server(uvicorn.Server):
        stopped_by: int | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.stopped_by is None:
                self.stopped_by = sig
            super().handle_exit(sig, frame)

    return Server(config)


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging set-up, plus mosslite's loggers on its stderr handler (a 500's
    traceback, a 401's reason) at ``level``."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    numeric = "DEBUG" if level.lower() == "trace" else level.upper()
    config["loggers"]["mosslite"] = {"handlers": ["default"], "level": numeric, "propagate": False}
    return config


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _open_storage(url: str, endpoint: str | None, region: str | None) -> Any:
    from ..errors import InvalidArgumentError
    from ..service.storage import open_storage

    try:
        return open_storage(url, endpoint=endpoint, region=region)
    except ValueError as exc:
        raise InvalidArgumentError(f"--storage: {exc}", hint="a folder, or s3://BUCKET/PREFIX") from exc


def _without_userinfo(url: str) -> str:
    """``url`` as the banner shows it: never a user or password written into it."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}"


def _import_plugin(module: str) -> ModuleType:
    if "" not in sys.path and os.getcwd() not in sys.path:  # as `python -m` and uvicorn's --app-dir do
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module)
    except Exception as exc:
        raise click.ClickException(f"cannot import plugin {module!r}: {type(exc).__name__}: {exc}") from exc


def listen(host: str, port: int) -> socket.socket:
    """Bind before serving, so a taken port is one clear error and --port 0 works
    (``mosslite mcp --http`` binds with it too)."""
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


async def _serve(server: Any, listener: socket.socket, data_dir: Path, banner: list[str]) -> None:
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if server.started:
        host, port = listener.getsockname()[:2]
        click.echo(f"mosslite serving {_url(host, port)} (data: {data_dir})")
        for line in banner:
            click.echo(line)
        sys.stdout.flush()
    await task
