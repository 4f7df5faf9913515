"""An MCP server for one mosslite project: ``mosslite mcp`` (the extra ``mosslite[mcp]``).

It serves ``mcp_tools.MossTools`` (search, get_documents, list_indexes;
remember, recall; with ``allow_writes`` also add_documents, delete_documents,
push_session) with the official MCP SDK (``mcp`` 2.x, ``MCPServer``) over stdio,
or over streamable HTTP at ``http://HOST:PORT/mcp``. Example::

    from mosslite.integrations.mcp import run
    run("my-project", "my-key", poll_interval_s=5.0)   # stdio, until stdin closes

Invariants:
- **stdout is the protocol** (stdio): nothing else is written there. The line
  that says what is served, the SDK's log and tracebacks go to stderr.
- **One client for the server's life.** The ``MossClient`` is opened before the
  first request and closed, after the sessions, when the server stops: stdin
  closed (stdio), or SIGINT or SIGTERM (``run`` makes SIGTERM a
  KeyboardInterrupt, as for SIGINT), shielded from cancellation.
- **HTTP stays on this machine unless asked.** The server has no authentication
  of its own (anyone who reaches it acts with the project's key), and the SDK's
  DNS-rebinding protection is on only for a loopback address: a listener on any
  other address is refused (``check_host``) unless ``allow_remote`` (the CLI's
  ``--allow-remote``) says the operator accepts that.
- **Credentials are checked at start**: a wrong key or project fails the start
  with its typed error; a service that cannot be reached does not (searches
  serve cached copies; other tools report it when called).
- **The SDK is imported only when a server is made** (here, and by
  ``mcp_tools``, which this module imports only then): this module imports
  without it, for the CLI's flags, and ``require_sdk`` raises
  InvalidArgumentError whose hint says what to install. ``import mosslite``
  never imports either module.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any, Literal

from .. import __version__
from ..client import MossClient
from ..errors import InvalidArgumentError, UnavailableError

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from .mcp_tools import MossTools

#: ``mosslite mcp --http``: beside ``mosslite serve``'s 8700.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8701
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

INSTRUCTIONS = """\
Search this project's document indexes with `search` (list_indexes names them; get_documents fetches by id).
Keep notes across a conversation with `remember` and `recall` on a session (name it per conversation);
`push_session` publishes a session as the index of the same name, for other agents."""

#: Each tool's MCP annotations (hints for clients): read only, unless listed here.
READ_ONLY = {"read_only_hint": True, "open_world_hint": False}
CHANGES = {
    "remember": {"read_only_hint": False, "destructive_hint": False, "open_world_hint": False},
    "add_documents": {"read_only_hint": False, "destructive_hint": False, "open_world_hint": False},
    "delete_documents": {"read_only_hint": False, "destructive_hint": True, "open_world_hint": False},
    "push_session": {"read_only_hint": False, "destructive_hint": False, "open_world_hint": False},
}
WRITES_OFF = "\n\nThis server was started without --allow-writes: calls are refused."


def require_sdk() -> None:
    """Raise InvalidArgumentError, with what to install, if the MCP SDK does not import."""
    try:
        import mcp.server  # noqa: F401
    except ImportError as exc:
        raise InvalidArgumentError(
            f"the MCP server needs the MCP Python SDK, which does not import ({exc})",
            hint="pip install 'mosslite[mcp]'",
        ) from exc


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def check_host(host: str, *, allow_remote: bool) -> None:
    """Refuse to serve HTTP on ``host`` beyond this machine unless ``allow_remote``."""
    if allow_remote or is_loopback(host):
        return
    raise InvalidArgumentError(
        f"refusing to serve MCP over HTTP on {host}, beyond this machine: the MCP server has no authentication",
        hint="anyone who reaches the port searches this project with its key, and with --allow-writes writes to "
        "it too: add --allow-remote if that is meant, or keep --host 127.0.0.1",
    )


def create_server(tools: MossTools, *, log_level: LogLevel = "WARNING") -> MCPServer:
    """An ``MCPServer`` with every tool of ``tools``. A write tool's description says
    when the server refuses writes, so a model need not call it to find out."""
    require_sdk()
    from mcp.server import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("mosslite", version=__version__, instructions=INSTRUCTIONS, log_level=log_level)
    for tool in tools.tools():
        name = tool.__name__
        description = tool.__doc__ or ""
        if name in tools.WRITES and not tools.allow_writes:
            description += WRITES_OFF
        server.add_tool(tool, description=description, annotations=ToolAnnotations(**CHANGES.get(name, READ_ONLY)))
    return server


async def serve(
    project_id: str,
    project_key: str,
    *,
    poll_interval_s: float,
    url: str | None = None,
    allow_writes: bool = False,
    session_model: str | None = None,
    listener: socket.socket | None = None,
    allow_remote: bool = False,
    log_level: LogLevel = "WARNING",
) -> None:
    """Serve the project (``url``: a mosslite server; None: the embedded service) over
    stdio, or with ``listener`` (a bound socket) over streamable HTTP at ``/mcp`` on
    it, until the transport ends; see ``run``. A listener beyond loopback needs
    ``allow_remote`` (``check_host``)."""
    if listener is not None:
        check_host(listener.getsockname()[0], allow_remote=allow_remote)
    require_sdk()
    import anyio

    from .mcp_tools import MossTools

    client = MossClient(project_id, project_key, url=url)
    tools = MossTools(client, allow_writes=allow_writes, poll_interval_s=poll_interval_s, session_model=session_model)
    try:
        where = f"server {url}" if url else f"embedded service {client.home / 'service'}"
        writes = "writes allowed" if allow_writes else "read only (no --allow-writes)"
        serving = f"mosslite mcp: project {project_id!r} on the {where} ({await _check(client)}), {writes}"
        server = create_server(tools, log_level=log_level)
        if listener is None:
            _say(f"{serving}, on stdio")
            await server.run_stdio_async()
        else:
            await _serve_http(server, listener, serving, log_level)
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await tools.close()
            finally:
                await client.close()


def run(project_id: str, project_key: str, **options: Any) -> None:
    """``serve`` on a fresh event loop (in the main thread), until stdin closes (stdio)
    or a KeyboardInterrupt (SIGINT or SIGTERM), which it raises once all is closed. Example::

        with socket.create_server(("127.0.0.1", 8701)) as listener:
            run("my-project", "my-key", poll_interval_s=5.0, listener=listener)
    """
    require_sdk()  # before a loop starts: the error alone, no traceback through asyncio
    # uvicorn stops gracefully on SIGTERM, then raises it again: to the default handler,
    # that would end the process before the sessions close. A KeyboardInterrupt lets them.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        asyncio.run(serve(project_id, project_key, **options))
    finally:
        signal.signal(signal.SIGTERM, previous)


async def _serve_http(server: MCPServer, listener: socket.socket, serving: str, log_level: LogLevel) -> None:
    """uvicorn on ``listener``; says where once it accepts connections. It stops on
    SIGINT or SIGTERM, shutting down gracefully, then raises the signal again."""
    import uvicorn

    host, port = listener.getsockname()[:2]
    app = server.streamable_http_app(host=host)  # (a loopback host turns on DNS rebinding protection)
    http = uvicorn.Server(uvicorn.Config(app, log_level=log_level.lower(), access_log=False))
    task = asyncio.create_task(http.serve(sockets=[listener]))
    while not http.started and not task.done():
        await asyncio.sleep(0.02)
    if http.started:
        shown = f"[{host}]" if ":" in host else host
        _say(f"{serving}, on streamable HTTP at http://{shown}:{port}/mcp")
    await task


async def _check(client: MossClient) -> str:
    """The credentials work (a typed error if not); how many indexes the project has."""
    try:
        indexes = await client.list_indexes()
    except UnavailableError as exc:
        return f"service unreachable for now: {exc.message}"
    return f"{len(indexes)} index{'es' if len(indexes) != 1 else ''}"


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "check_host", "create_server", "is_loopback", "run", "serve"]
