"""``mosslite index``, ``doc`` and ``job``: the service's indexes, documents and jobs.

Each command calls the MossClient method it is named after.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from .._db import vec_extension_path
from ..docfiles import read_docs_with_model
from ..errors import ConflictError, InvalidArgumentError, MossliteError
from ..types import MAX_PAGE_DOCS, DocumentInfo, MutationOptions
from ..wire import docs_to_json
from .config import Credentials, client_options
from .help import Group
from .sending import send
from .output import emit_json, fields, human_bytes, json_option, plural, say, shorten, spinner, table
from .transfer import check_add_model, create_model, index_export
from .waiting import submitted_note, wait_for_job

file_option = click.option(
    "-f",
    "--file",
    "path",
    required=True,
    metavar="FILE",
    help="Documents: a JSON array, JSON Lines or CSV (id,text,metadata) file; - reads stdin.",
)
wait_option = click.option("--wait", is_flag=True, help="Wait for the job to finish, with a progress bar on a terminal.")


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


@contextmanager
def cli_hint(error: type[MossliteError], hint: str) -> Iterator[None]:
    """Re-raise ``error`` with a hint in the CLI's terms: the library's hints name
    Python calls (``MutationOptions(upsert=True)``), which mean nothing at a prompt."""
    try:
        yield
    except error as exc:
        raise type(exc)(exc.message, hint=hint, **exc.fields) from exc


def report_mutation(creds: Credentials, result: Any, wait: bool, as_json: bool, what: str) -> None:
    """Print a MutationResult; with ``wait``, follow its job and print the finished Job.
    The result goes to stdout (``JOB=$(... --json | jq -r .job_id)`` works, and so does
    reading it in a pipe); the job id, at once, and how to follow it go to stderr
    (waiting.py: Ctrl-C during ``--wait`` lets go of the job, which carries on)."""
    if not wait:
        say(submitted_note(creds, result, what, wait=False))
        emit_json(result) if as_json else fields(result, title=what)
        return
    job = wait_for_job(creds, result.job_id, note=submitted_note(creds, result, what, wait=True))
    emit_json(job) if as_json else fields(job, title=f"{what}: job {job.job_id}")


# -- index ------------------------------------------------------------------------------


@click.group(cls=Group)
def index() -> None:
    """Indexes on the service: create, list, get, delete, public, inspect.

    \b
    Example:
        mosslite index create faq -f faq.jsonl --model hashed-ngrams-256 --wait
    """


@index.command("create")
@click.argument("name")
@file_option
@click.option("--model", "model_id", help="Embedding model id (default: moss-minilm). See README 'Embedders'.")
@wait_option
@json_option
@client_options
def index_create(creds: Credentials, name: str, path: str, model_id: str | None, wait: bool, as_json: bool) -> None:
    """Build index NAME from the documents in FILE (MossClient.create_index).

    Prints the job id at once on stderr, then the job (or with --wait, the finished
    job). A file written by `mosslite index export` brings its embeddings and their
    model: the index is made with that model and they are not computed again.

    \b
    Example:
        mosslite index create faq -f faq.jsonl --model hashed-ngrams-256 --wait
    """
    docs, file_model = read_docs_with_model(path)
    model_id = create_model(model_id, file_model, path)
    what = f"creating index {name}"
    with cli_hint(ConflictError, f"add to it with `mosslite doc add {name} -f FILE`, or delete it first"):
        result = send(creds, docs, lambda client, docs: client.create_index(name, docs, model_id), what=what, name=name)
    report_mutation(creds, result, wait, as_json, what)


@index.command("list")
@json_option
@client_options
def index_list(creds: Credentials, as_json: bool) -> None:
    """List the project's indexes (MossClient.list_indexes).

    \b
    Example:
        mosslite index list --json
    """
    infos = creds.run(lambda client: client.list_indexes())
    if as_json:
        emit_json(infos)
        return
    table(
        ["name", "version", "status", "docs", "model", "updated", "public"],
        [[i.name, i.version, i.status, i.doc_count, i.model, i.updated_at, "yes" if i.public else "no"] for i in infos],
        title=f"indexes of {creds.project_id}",
    )


@index.command("get")
@click.argument("name")
@json_option
@client_options
def index_get(creds: Credentials, name: str, as_json: bool) -> None:
    """Show index NAME: version, status, documents, model (MossClient.get_index).

    \b
    Example:
        mosslite index get faq
    """
    info = creds.run(lambda client: client.get_index(name))
    emit_json(info) if as_json else fields(info, title=f"index {name}")


@index.command("delete")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@client_options
def index_delete(creds: Credentials, name: str, yes: bool, as_json: bool) -> None:
    """Delete index NAME and all its versions (MossClient.delete_index).

    \b
    Example:
        mosslite index delete faq -y
    """
    if not yes:
        click.confirm(f"Delete index {name!r} of project {creds.project_id!r}?", abort=True, err=True)
    creds.run(lambda client: client.delete_index(name))
    emit_json({"deleted": name}) if as_json else click.echo(f"deleted index {name}")


@index.command("public")
@click.argument("name")
@click.option(
    "--on/--off",
    "public",
    required=True,
    help="On: anyone with the URL reads its newest versions, no key needed. Off: those copies are deleted.",
)
@json_option
@client_options
def index_public(creds: Credentials, name: str, public: bool, as_json: bool) -> None:
    """Make index NAME public, or private again (MossClient.set_public).

    Public: its newest versions and a manifest naming them are copied where anyone
    with the service's public URL (mosslite serve --public-url) reads them without a
    key, and devices poll that manifest instead of the service. Private again: those
    copies are deleted; copies already downloaded, or cached by a CDN, remain.
    README: "Public read mode" says what it exposes.

    \b
    Example:
        mosslite index public faq --on
    """
    info = creds.run(lambda client: client.set_public(name, public))
    if as_json:
        emit_json(info)
    elif not info.public:
        click.echo(f"index {name} is private: its public copies are deleted")
    else:
        click.echo(f"index {name} is public: devices read {info.public_manifest or '(no public URL known)'}")


@index.command("inspect")
@click.argument("name")
@json_option
@client_options
def index_inspect(creds: Credentials, name: str, as_json: bool) -> None:
    """Download index NAME's newest version (MossClient.load_index) and show its file.

    Prints version, document count, model, the file's path and size, and the
    sqlite3 commands that open it (README: "Inspect an index with sqlite3"):
    plain tables need nothing, vec0 KNN needs `.load` of the sqlite-vec extension.

    \b
    Example:
        mosslite index inspect faq
    """

    async def body(client: Any) -> Any:
        info = await client.get_index(name)
        with spinner(f"downloading {name} v{info.version}…"):
            return info, await client.load_index(name)

    info, loaded = creds.run(body)
    vec = vec_extension_path()
    shell = [
        f"sqlite3 -readonly '{loaded.path}'",
        f".load '{vec}'",
        "SELECT key, value FROM meta;",
        "SELECT rowid, id, substr(text, 1, 60), metadata FROM docs LIMIT 5;",
    ]
    report = {
        "index_name": name,
        "version": loaded.version,
        "doc_count": loaded.doc_count,
        "model_id": loaded.model_id,
        "dimension": info.dimension,
        "path": loaded.path,
        "size_bytes": os.path.getsize(loaded.path),
        "vec_extension": vec,
        "sqlite3": shell,
    }
    if as_json:
        emit_json(report)
        return
    fields({k: v for k, v in report.items() if k != "sqlite3"}, title=f"index {name}")
    click.echo("\nOpen it with the sqlite3 shell:\n")
    for line in shell:
        click.echo(f"  {line}")


@index.command("history")
@click.argument("name")
@json_option
@client_options
def index_history(creds: Credentials, name: str, as_json: bool) -> None:
    """List the versions of index NAME the service published, newest first (MossClient.list_versions).

    Each with its number, document count, file size and time, and whether the
    service still keeps the file: it keeps the newest few (`mosslite serve
    --keep-versions`) and prunes older ones.

    \b
    Example:
        mosslite index history faq --json
    """
    versions = creds.run(lambda client: client.list_versions(name))
    if as_json:
        emit_json(versions)
        return
    table(
        ["version", "documents", "size", "created", "file"],
        [[v.version, v.doc_count, human_bytes(v.size_bytes), v.created_at, "kept" if v.kept else "pruned"] for v in versions],
        title=f"versions of {name}",
    )


index.add_command(index_export)


# -- doc ----------------------------------------------------------------------------


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


# -- job -----------------------------------------------------------------------------


@click.group(cls=Group)
def job() -> None:
    """Mutation jobs: follow them.

    \b
    Example:
        mosslite job status JOB_ID --wait
    """


@job.command("status")
@click.argument("job_id")
@wait_option
@json_option
@client_options
def job_status(creds: Credentials, job_id: str, wait: bool, as_json: bool) -> None:
    """Show job JOB_ID (MossClient.get_job_status); --wait follows it to the end
    with a live bar of its status, phase and percent.

    \b
    Example:
        mosslite job status 3f2a9c --wait
    """
    if wait:
        found = wait_for_job(creds, job_id)
    else:
        found = creds.run(lambda client: client.get_job_status(job_id))
    emit_json(found) if as_json else fields(found, title=f"job {job_id}")
