"""``mosslite query``: download an index, then answer queries on this machine."""

from __future__ import annotations

import functools
import sys
from typing import Any

import click

from ..errors import InvalidArgumentError
from ..types import DEFAULT_ALPHA, DEFAULT_LIVE_POLLING_INTERVAL_S, DEFAULT_TOP_K, QueryOptions, SearchResult
from . import interactive as shell
from .config import Credentials, client_options
from .help import Command
from .documents import parse_json_option
from .loading import load_for_queries
from .output import emit_json, emit_json_line, json_option, plural, shorten, table


def show_result(result: SearchResult, as_json: bool, *, one_line: bool = False) -> None:
    if as_json:
        (emit_json_line if one_line else emit_json)(result)
        return
    title = f"{result.query!r}: {plural(len(result.docs), 'result')} in {result.time_taken_ms:.2f} ms"
    if not result.docs:
        click.echo(title)  # (an empty table only squeezes the title)
        return
    table(
        ["#", "score", "id", "text"],
        [[n, f"{d.score:.3f}", d.id, shorten(d.text)] for n, d in enumerate(result.docs, 1)],
        title=title,
    )


@click.command(cls=Command)
@click.argument("name")
@click.argument("text", required=False)
@click.option("-k", "--top-k", default=DEFAULT_TOP_K, show_default=True, type=int, help="How many results.")
@click.option("--alpha", default=DEFAULT_ALPHA, show_default=True, type=float, help="1.0 semantic only, 0.0 keyword only.")
@click.option("--filter", "filter_json", metavar="JSON", help='A metadata filter, e.g. \'{"field": "category", "condition": {"$eq": "returns"}}\'.')
@click.option(
    "-i",
    "--interactive",
    is_flag=True,
    help="A query shell (history, :help) on a copy that stays current; piped: a query per line.",
)
@click.option(
    "--poll-interval",
    default=DEFAULT_LIVE_POLLING_INTERVAL_S,
    show_default=True,
    type=click.FloatRange(0.1),
    metavar="SECONDS",
    help="With -i on a server: how often to ask it for a new version (the embedded service's arrive at once).",
)
@click.option("--no-history", "history", flag_value=False, default=True, help="With -i: keep no history of the queries typed.")
@json_option
@client_options
def query(
    creds: Credentials,
    name: str,
    text: str | None,
    top_k: int,
    alpha: float,
    filter_json: str | None,
    interactive: bool,
    poll_interval: float,
    history: bool,
    as_json: bool,
) -> None:
    """Query index NAME for TEXT (or the text on stdin) on this machine.

    Downloads the newest version (MossClient.load_index) and loads its model, each
    timed on stderr, then answers locally (MossClient.query): the time shown is the
    query's alone. With --interactive the index is loaded once, with auto_refresh,
    and each line read is a query (with --json: one JSON object per line). In a
    terminal that is a shell: line editing, history ($MOSSLITE_HOME/query_history;
    --no-history keeps none), :help, Ctrl-C clears the line, Ctrl-D quits, and each
    answer names the version that served it.

    \b
    Example:
        mosslite query faq "how do I get my money back" --top-k 3 --alpha 0.5
    """
    options = QueryOptions(top_k=top_k, alpha=alpha, filter=parse_json_option(filter_json, "--filter"))
    if text is not None and not text.strip():
        # A blank query matches no word and has no meaning to embed: the library would
        # return arbitrary documents, which looks like an answer. Refuse it here.
        raise InvalidArgumentError("the query TEXT is empty", hint="give some words to search for")
    if not interactive and text is None:
        if sys.stdin.isatty():
            raise InvalidArgumentError("give the query TEXT, pipe it on stdin, or use --interactive")
        text = sys.stdin.read().strip()
        if not text:
            raise InvalidArgumentError("the query on stdin is empty")

    if interactive:
        show = functools.partial(show_result, as_json=as_json, one_line=True)
        shell.run(creds, name, text, options, show, poll_interval_s=poll_interval, history=history)
        return

    async def body(client: Any) -> None:
        await load_for_queries(client, name, text)  # timed apart: a result's time is the query's
        show_result(await client.query(name, text, options), as_json)

    creds.run(body)
