"""``mosslite query NAME -i``: a query shell on a loaded index that stays current.

In a terminal it is a shell: line editing and history (prompt.py, kept in
``<home>/query_history``), a banner naming the index and its version, ``:help``,
Ctrl-C clears the line and Ctrl-D quits. The index is loaded with
``auto_refresh``, so versions published while the shell runs arrive (the
embedded service's manifest is watched; a server is asked every
``poll_interval_s``), and each answer says which version served it. With stdin
not a terminal (a pipe, a file) each line is a query (or a ``:`` command, as in
the shell), until end of input or ``:q``, with nothing but the answers on stdout.
``history=False`` (``--no-history``) keeps no history: none read, none written.

Why a loop thread (issue #12): the client runs on a SyncMossClient's thread, so
the main thread waits in ``input()`` alone. Refreshes go on while it waits, and
Ctrl-C reaches ``input()`` as KeyboardInterrupt at once (every time: see
prompt.py). Under ``asyncio.run`` the loop's SIGINT handler only cancelled a
task that a blocking read never gave back to, so the first Ctrl-C was lost.
Example::

    $ mosslite query faq -i
    faq: version 5, 300 documents (hashed-ngrams-256); new versions load as they are published
    type a query; :help lists the commands; :q or Ctrl-D quits
    faq> refunds
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape

from .._threads import one_blas_thread
from ..client import SyncMossClient
from ..client.embedded import default_home
from ..types import DEFAULT_LIVE_POLLING_INTERVAL_S, QueryOptions, SearchResult
from .config import Credentials
from .loading import load_model
from .output import fields, say, spinner
from .prompt import Prompt

QUIT = (":q", ":quit")
HELP = (":help", ":h", ":?")
INFO = ":info"
HISTORY_NAME = "query_history"


def run(
    creds: Credentials,
    name: str,
    first: str | None,
    options: QueryOptions,
    show: Callable[[SearchResult], None],
    *,
    poll_interval_s: float = DEFAULT_LIVE_POLLING_INTERVAL_S,
    history: bool = True,
) -> None:
    """Load ``name`` with auto-refresh, answer ``first`` if given, then one query per line."""
    one_blas_thread()  # a query, then a person typing: no BLAS thread left spinning a core (_threads.py)
    client = SyncMossClient(creds.project_id, creds.project_key, url=creds.url)
    try:
        with spinner(f"loading {name}…"):
            info = client.load_index(name, auto_refresh=True, polling_interval_in_seconds=poll_interval_s)
        load_model(info.model_id)  # (timed apart: an answer's time is the query's)
        Shell(client, name, options, show, terminal=sys.stdin.isatty(), history=history).serve(first)
    finally:
        client.close()


class Shell:
    """Reads lines and answers them from the loaded index ``name``."""

    def __init__(
        self,
        client: Any,
        name: str,
        options: QueryOptions,
        show: Callable[[SearchResult], None],
        *,
        terminal: bool,
        history: bool = True,
    ) -> None:
        self.client = client
        self.history = history
        self.name = name
        self.options = options
        self.show = show
        self.terminal = terminal
        self.last_version: int | None = None

    # -- answers -----------------------------------------------------------------------

    def answer(self, text: str) -> None:
        """Query and show the result; in a terminal, then say which version served it."""
        version, result = self._query(text)
        self.show(result)
        if self.terminal:
            say(f"[dim]{self._served_by(version)}[/]")
        self.last_version = version

    def _query(self, text: str) -> tuple[int, SearchResult]:
        """The result and the version it came from. A refresh may swap versions during
        the query: asked again until the version is the same before and after."""
        while True:
            before = self.client.get_loaded_version(self.name)
            result = self.client.query(self.name, text, self.options)
            if self.client.get_loaded_version(self.name) == before:
                return before, result

    def _served_by(self, version: int) -> str:
        shown = f"{self.name} version {version}"
        if self.last_version is not None and version != self.last_version:
            shown += f" (new since the last answer, which came from version {self.last_version})"
        if self.client.was_served_stale(self.name):
            shown += "; stale: the service did not answer, this is the newest cached copy"
        return shown

    # -- the loop ----------------------------------------------------------------------

    def serve(self, first: str | None) -> None:
        """Answer ``first`` (the TEXT argument) if given, then every line read."""
        if not self.terminal:
            if first:
                self.answer(first)
            self._read_pipe()
            return
        with Prompt(_history_path() if self.history else None) as prompt:
            self._banner()
            if first:
                self.answer(first)
            self._read_terminal(prompt)

    def _read_pipe(self) -> None:
        while True:
            line = sys.stdin.readline()
            if not line or not self._handle(line.strip()):
                return

    def _read_terminal(self, prompt: Prompt) -> None:
        while True:
            try:
                line = prompt.read(f"{self.name}> ")
            except EOFError:  # Ctrl-D on an empty line
                sys.stderr.write("\n")
                return
            except KeyboardInterrupt:  # Ctrl-C: the line typed so far is dropped
                sys.stderr.write("\n")
                continue
            try:
                if not self._handle(line.strip()):
                    return
            except KeyboardInterrupt:  # during an answer: back to the prompt
                sys.stderr.write("\n")

    def _handle(self, line: str) -> bool:
        """Run one line; False to quit."""
        if not line:
            return True
        if line in QUIT:
            return False
        if line in HELP:
            self._help()
        elif line == INFO:
            fields(self.client.loaded_index(self.name), title=f"{self.name} (loaded)")
        elif line.startswith(":") and line[1:2].isalpha():
            say(f"unknown command {line.split()[0]}; :help lists the commands")
        else:
            self.answer(line)
        return True

    def _banner(self) -> None:
        info = self.client.loaded_index(self.name)
        documents = "1 document" if info.doc_count == 1 else f"{info.doc_count} documents"
        stale = "; stale: the service did not answer, this is the newest cached copy" if info.stale else ""
        say(
            f"[bold]{self.name}[/]: version {info.version}, {documents} ({info.model_id}); "
            f"new versions load as they are published{stale}"
        )
        say("type a query; [bold]:help[/] lists the commands; [bold]:q[/] or Ctrl-D quits")

    def _help(self) -> None:
        k, alpha = self.options.top_k, self.options.alpha
        say(
            "\n".join(
                [
                    f"  TEXT     search {self.name} for TEXT (top {k}, alpha {alpha}, as on the command line)",
                    f"  {INFO}    the loaded version: number, documents, model, how it refreshes",
                    f"  {HELP[0]}    this list",
                    f"  {QUIT[0]}       quit (Ctrl-D too)",
                    "  Ctrl-C clears the line; Up and Down walk the history, Ctrl-R searches it",
                    f"  history: {escape(str(_history_path())) if self.history else 'not kept (--no-history)'}",
                ]
            )
        )


def _history_path() -> Path:
    return default_home() / HISTORY_NAME


__all__ = ["Shell", "run"]
