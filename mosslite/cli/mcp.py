"""``mosslite mcp``: the project as an MCP server (``mosslite.integrations.mcp``).

A thin command: credentials as every command has them (``client_options``),
flags passed through. The MCP SDK is imported only when the command runs
(``integrations.mcp`` imports it then); without it the command fails in one
line whose hint says ``pip install 'mosslite[mcp]'``.
"""

from __future__ import annotations

import contextlib

import click

from .._threads import one_blas_thread
from ..integrations.mcp import DEFAULT_HOST, DEFAULT_PORT, check_host, run
from ..types import DEFAULT_LIVE_POLLING_INTERVAL_S
from .config import Credentials, client_options
from .help import Command
from .output import say
from .serve import listen

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@click.command("mcp", cls=Command)
@click.option(
    "--allow-writes",
    is_flag=True,
    help="Let the agent write to the service: add_documents, delete_documents, push_session. "
    "Without it they are refused (remember and recall, local to this machine, always work).",
)
@click.option("--http", is_flag=True, help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.")
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="With --http: the address to listen on; one beyond loopback needs --allow-remote.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="With --http: allow a --host other than loopback. The server has no authentication: anyone "
    "who reaches the port searches the project with its key, and with --allow-writes writes to it too.",
)
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="With --http: the port (0 picks a free one)."
)
@click.option(
    "--poll-interval",
    default=DEFAULT_LIVE_POLLING_INTERVAL_S,
    show_default=True,
    type=click.FloatRange(0.1),
    metavar="SECONDS",
    help="How often a searched index asks a server for a new version (the embedded service's arrive at once).",
)
@click.option(
    "--session-model",
    metavar="MODEL",
    help="The model of a new session (remember) whose index the service does not have; default: the library's.",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="The MCP SDK's log level (stderr); info also logs each refused tool call.",
)
@client_options
def mcp(
    creds: Credentials,
    allow_writes: bool,
    http: bool,
    host: str,
    allow_remote: bool,
    port: int,
    poll_interval: float,
    session_model: str | None,
    log_level: str,
) -> None:
    """Serve this project to AI agents over MCP (Model Context Protocol), on stdio.

    Tools: search (on a local copy of each index, loaded on first use and kept
    current), get_documents, list_indexes; agent memory in sessions: remember,
    recall, push_session; and add_documents, delete_documents. Writes to the
    service need --allow-writes. stdout is the protocol; a line on stderr says
    what is served, once it is (with --http: the URL). It stops when stdin
    closes, or on Ctrl-C or SIGTERM. With --http it listens on loopback only,
    unless --allow-remote: the server has no authentication of its own. Needs
    the extra: pip install 'mosslite[mcp]'.

    \b
    Example:
        export MOSS_PROJECT_ID=my-project MOSS_PROJECT_KEY="$KEY"   # not --project-key: ps shows it
        mosslite mcp --allow-writes
    """
    if http:
        check_host(host, allow_remote=allow_remote)
    one_blas_thread()  # a search then a wait: no BLAS thread left spinning a core (_threads.py)
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(listen(host, port)) if http else None
        try:
            run(
                creds.project_id,
                creds.project_key,
                url=creds.url,
                poll_interval_s=poll_interval,
                allow_writes=allow_writes,
                session_model=session_model,
                listener=listener,
                allow_remote=allow_remote,
                log_level=log_level.upper(),
            )
        except KeyboardInterrupt:
            say("mosslite mcp stopped; its sessions and client closed")
