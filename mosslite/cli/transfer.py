"""Moving an index's documents out and back in: ``mosslite index export``, and the model
that ``index create -f`` / ``doc add -f`` take a file's embeddings to be of.

An export is JSON Lines, one document per line (docfiles.jsonl_line); with its
embeddings, each line also names the model they came from (``embedding_model``).
Taking such a file back with ``index create NEW -f FILE`` creates NEW with that
model and stores the very same vectors: nothing is embedded again, and a query
gets the same answer from both indexes (issue #12). A file's embeddings are
never stored under another model: ``--model`` naming another one, or ``doc add``
to an index of another model, is an error before anything is sent.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import click

from .._fs import atomic_path
from ..docfiles import jsonl_line
from ..embeddings.custom import CUSTOM_MODEL_ID
from ..errors import InvalidArgumentError
from .config import Credentials, client_options
from .help import Command
from .output import plural, say, spinner

STDOUT = "-"


def create_model(flag: str | None, file_model: str | None, path: str) -> str | None:
    """The model ``index create -f FILE`` creates with: ``--model``, else the model FILE's
    embeddings came from (None: the default model)."""
    if file_model is not None and flag is not None and flag != file_model:
        raise InvalidArgumentError(
            f"{path}: its embeddings come from model {file_model!r}, not --model {flag!r}",
            hint=f"leave out --model to keep them, or export with --no-embeddings to embed the texts with {flag}",
        )
    return flag or file_model


def check_add_model(index_model: str, file_model: str | None, name: str, path: str) -> None:
    """``doc add -f FILE``: FILE's embeddings must be of index ``name``'s model."""
    if file_model is not None and file_model != index_model:
        raise InvalidArgumentError(
            f"{path}: its embeddings come from model {file_model!r}; index {name!r} uses {index_model!r}",
            hint="export with --no-embeddings to have the index's model embed the texts",
        )


@click.command("export", cls=Command)
@click.argument("name")
@click.option("-o", "--output", default=STDOUT, show_default=True, metavar="FILE", help="Where to write; - is stdout.")
@click.option(
    "--embeddings/--no-embeddings",
    default=True,
    show_default=True,
    help="Write each document's vector and its model, so `index create -f` takes the file back without embedding again.",
)
@client_options
def index_export(creds: Credentials, name: str, output: str, embeddings: bool) -> None:
    """Write index NAME's documents as JSON Lines, one per line (MossClient.get_docs_page).

    Each line holds id, text, metadata, payload and, with --embeddings (the
    default), the embedding and the model it came from: `mosslite index create
    NEW -f FILE` takes the file back with that model and the same vectors,
    embedding nothing again. The pages are read from one version, so the file is
    that version whole, whatever is published meanwhile; FILE appears only once
    it is complete.

    \b
    Example:
        mosslite index export faq -o faq.jsonl && mosslite index create faq-copy -f faq.jsonl --wait
    """
    if output == STDOUT:
        model, count = creds.run(lambda client: _export(client, name, sys.stdout, embeddings))
        sys.stdout.flush()
    else:
        with atomic_path(Path(output)) as temp, open(temp, "w", encoding="utf-8") as out:
            model, count = creds.run(lambda client: _export(client, name, out, embeddings))
    where = "stdout" if output == STDOUT else output
    say(f"exported {plural(count, 'document')} of {name} (model {model}) to {where}")
    if not embeddings and model == CUSTOM_MODEL_ID:
        say("note: without its embeddings this file cannot make a custom-model index again (--embeddings keeps them)")
    elif output != STDOUT:
        say(f"take it back with: mosslite index create NEW_NAME -f {output}")


async def _export(client: Any, name: str, out: IO[str], embeddings: bool) -> tuple[str, int]:
    """Page through the newest version (one version for every page), writing each document."""
    info = await client.get_index(name)
    model = info.model if embeddings else None
    count, cursor = 0, None
    with spinner(f"exporting {name}…"):
        while True:
            page = await client.get_docs_page(name, include_embedding=embeddings, cursor=cursor)
            out.writelines(jsonl_line(doc, model) + "\n" for doc in page.docs)
            count += len(page.docs)
            cursor = page.next_cursor
            if cursor is None:
                return info.model, count


__all__ = ["check_add_model", "create_model", "index_export"]
