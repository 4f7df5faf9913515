"""``mosslite index``: the service's indexes, made, listed, inspected and deleted.

Each command calls the MossClient method it is named after.
"""

from __future__ import annotations

import os
from typing import Any

import click

from .._db import vec_extension_path
from ..docfiles import read_docs_with_model
from ..errors import ConflictError
from .config import Credentials, client_options
from .help import Group
from .jobs import cli_hint, file_option, report_mutation, wait_option
from .output import emit_json, fields, human_bytes, json_option, spinner, table
from .sending import send
from .transfer import create_model, index_export

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
