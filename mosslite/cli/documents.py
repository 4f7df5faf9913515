"""``mosslite doc``: the documents of an index, added, deleted and read.

Each command calls the MossClient method it is named after.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import click

from ..docfiles import read_docs_with_model
from ..errors import ConflictError, InvalidArgumentError
from ..types import MAX_PAGE_DOCS, DocumentInfo, MutationOptions
from ..wire import docs_to_json
from .config import Credentials, client_options
from .help import Group
from .jobs import cli_hint, file_option, report_mutation, wait_option
from .output import emit_json, json_option, plural, say, shorten, table
from .sending import send
from .transfer import check_add_model

def parse_json_option(value: str | None, what: str) -> Any:
    """The JSON value of option ``what`` (None if not given). Invariant (issue #8): any
    text that is not JSON Python can hold is an InvalidArgumentError, so the command
    ends with one ``Error:`` line: malformed JSON, and also JSON that parses but
    cannot be held (json.loads raises ValueError for an integer of over 4,300
    digits, RecursionError for nesting deeper than the recursion limit)."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"{what} is not valid JSON: {exc.msg} (column {exc.colno})") from exc
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion: ...; use sys..."
        reason = str(exc).split(";")[0]
        raise InvalidArgumentError(f"{what} is not JSON mosslite can read: {reason}", hint="write long numbers as strings") from exc
    except RecursionError as exc:
        raise InvalidArgumentError(f"{what} is not JSON mosslite can read: it is nested too deeply") from exc


def split_ids(value: str) -> list[str]:
    """The ids of ``--ids a,b``. An empty list is an error, never "every document":
    ``--ids "$IDS"`` with an empty variable must not act on the whole index."""
    ids = [i.strip() for i in value.split(",") if i.strip()]
    if not ids:
        raise InvalidArgumentError("--ids needs at least one id, e.g. --ids a,b")
    return ids


@click.group(cls=Group)
def doc() -> None:
    """Documents of an index: add, delete, get.

    \b
    Example:
        mosslite doc add faq -f more.jsonl --upsert --wait
    """


@doc.command("add")
@click.argument("name")
@file_option
@click.option("--upsert", is_flag=True, help="Replace documents whose id exists (default: such an id is an error).")
@wait_option
@json_option
@client_options
def doc_add(creds: Credentials, name: str, path: str, upsert: bool, wait: bool, as_json: bool) -> None:
    """Add the documents in FILE to index NAME (MossClient.add_docs).

    \b
    Example:
        mosslite doc add faq -f more.jsonl --upsert --wait
    """
    docs, file_model = read_docs_with_model(path)
    what = f"adding to {name}"

    async def body(client: Any, docs: Iterable[DocumentInfo]) -> Any:
        if file_model is not None:  # embeddings of another model must not join this index
            check_add_model((await client.get_index(name)).model, file_model, name, path)
        return await client.add_docs(name, docs, MutationOptions(upsert=upsert))

    with cli_hint(ConflictError, "pass --upsert to replace them"):
        result = send(creds, docs, body, what=what, name=name)
    report_mutation(creds, result, wait, as_json, what)


@doc.command("delete")
@click.argument("name")
@click.option("--ids", required=True, help="Comma-separated document ids.")
@wait_option
@json_option
@client_options
def doc_delete(creds: Credentials, name: str, ids: str, wait: bool, as_json: bool) -> None:
    """Delete documents from index NAME (MossClient.delete_docs); unknown ids are ignored.

    \b
    Example:
        mosslite doc delete faq --ids r1,s1 --wait
    """
    result = creds.run(lambda client: client.delete_docs(name, split_ids(ids)))
    report_mutation(creds, result, wait, as_json, f"deleting from {name}")


@doc.command("get")
@click.argument("name")
@click.option("--ids", help="Comma-separated document ids (default: all).")
@click.option("--filter", "filter_json", metavar="JSON", help='A metadata filter, e.g. \'{"field": "category", "condition": {"$eq": "returns"}}\'.')
@click.option("--limit", type=click.IntRange(1), metavar="N", help="At most N documents (default: all); only those are read.")
@json_option
@client_options
def doc_get(
    creds: Credentials, name: str, ids: str | None, filter_json: str | None, limit: int | None, as_json: bool
) -> None:
    """Show documents of index NAME, page by page (MossClient.get_docs_page).

    \b
    Example:
        mosslite doc get faq --ids r1,s1 --json
    """
    where = parse_json_option(filter_json, "--filter")
    wanted = None if ids is None else split_ids(ids)  # --ids '' is a mistake, not "all"
    docs, more = creds.run(lambda client: _docs_up_to(client, name, wanted, where, limit))
    if as_json:
        emit_json(docs_to_json(docs))  # asked without embeddings: none to drop
    else:
        table(
            ["id", "text", "metadata"],
            [[d.id, shorten(d.text), json.dumps(d.metadata or {}, ensure_ascii=False)] for d in docs],
            title=f"{plural(len(docs), 'document')} of {name}",
        )
    if more:
        say(f"the first {len(docs)}: there may be more (raise --limit, or leave it out for all)")


async def _docs_up_to(
    client: Any, name: str, ids: list[str] | None, where: Any, limit: int | None
) -> tuple[list[DocumentInfo], bool]:
    """Matching documents, page by page, until ``limit`` (None: all); and whether the
    walk stopped with pages left. A limit reads only the pages it needs."""
    docs: list[DocumentInfo] = []
    cursor = None
    while True:
        size = None if limit is None else min(limit - len(docs), MAX_PAGE_DOCS)
        page = await client.get_docs_page(name, ids, where, include_embedding=False, limit=size, cursor=cursor)
        docs += page.docs
        cursor = page.next_cursor
        if cursor is None or (limit is not None and len(docs) >= limit):
            return docs, cursor is not None
