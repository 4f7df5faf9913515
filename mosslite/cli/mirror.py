"""``mosslite mirror DIR NAME``: mirror a folder into an index (mosslite.folder_mirror.FolderMirror).

One name for the feature in the library, the command and the README: "sync"
means version refresh elsewhere (``mosslite.sync``, ``SyncMossClient``). The
command's first name, ``sync``, still works as a hidden alias (``sync_alias``).
"""

from __future__ import annotations

import asyncio
import copy
import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from ..chunking import DEFAULT_CHUNK_SIZE
from ..folder_mirror import DEFAULT_EXTENSIONS, FolderMirror, MirrorResult
from .config import Credentials, client_options
from .help import Command
from .output import emit_json, emit_json_line, follow_job, json_option, say


def describe(result: MirrorResult) -> list[str]:
    """The pass in lines: counts of documents, then each file upserted or deleted."""
    made = "created index, " if result.created else ""
    lines = [
        f"{result.index_name}: {made}{result.upserted} upserted, {result.deleted} deleted, "
        f"{result.unchanged} unchanged ({result.files} files)"
    ]
    for what, files in (("upserted", result.upserted_files), ("deleted", result.deleted_files)):
        lines += [f"  {what} {path} ({count} {'document' if count == 1 else 'documents'})" for path, count in files.items()]
    return lines


def report(result: MirrorResult, as_json: bool, *, one_line: bool = False) -> None:
    """The pass's result on stdout (a summary line and a line per file, or with --json
    one JSON document: one per line while watching); skipped files are warnings on
    stderr, each named."""
    if as_json:
        (emit_json_line if one_line else emit_json)(result)
    else:
        click.echo("\n".join(describe(result)))
        sys.stdout.flush()  # while watching, each pass shows at once even in a pipe
    for path, message in result.errors.items():
        say(f"[yellow]warning:[/] skipped {escape(path)}: {escape(message)}")  # (a [name] is not markup)


@click.command("mirror", cls=Command)
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("name")
@click.option("--watch", is_flag=True, help="Keep running: push every change as it happens, until Ctrl-C.")
@click.option("--ext", default=",".join(DEFAULT_EXTENSIONS), show_default=True, help="File extensions to index, comma-separated.")
@click.option("--model", "model_id", help="Embedding model id, if the index has to be created.")
@click.option("--chunk-size", default=DEFAULT_CHUNK_SIZE, show_default=True, type=int, help="Characters per chunk of long files.")
@click.option("--overlap", type=int, help="Characters shared by neighbouring chunks (default: 150, at most a quarter chunk).")
@json_option
@client_options
def mirror_folder(
    creds: Credentials,
    directory: Path,
    name: str,
    watch: bool,
    ext: str,
    model_id: str | None,
    chunk_size: int,
    overlap: int | None,
    as_json: bool,
) -> None:
    """Keep index NAME in step with the files in DIRECTORY (FolderMirror.sync).

    Each file becomes documents with ids from its PATH relative to DIRECTORY
    (for ./notes, ./notes/sub/a.md is sub/a.md): PATH for a short text or markdown file,
    PATH#N for the chunks of a long one (cut at markdown headings; metadata
    parent_id=PATH), PATH#ID for each document of a JSON/JSONL file.
    Changed files are upserted and removed files deleted, by comparing with the
    index's documents; the index is created if missing. With --watch it then
    follows every change (FolderMirror.watch) until interrupted.

    \b
    Example:
        mosslite mirror ./notes notes --ext md,txt --watch
    """

    async def body(client: Any) -> None:
        mirror = FolderMirror(
            client, directory, name, extensions=ext.split(","), chunk_size=chunk_size, overlap=overlap, model_id=model_id
        )
        if watch:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            say(f"watching {mirror.root} (Ctrl-C stops)")
            await mirror.watch(stop, lambda result: report(result, as_json, one_line=True))
            say("stopped")
            return
        result = await mirror.sync()
        for job_id in result.job_ids:
            await follow_job(client, job_id)
        report(result, as_json)
        if result.errors:
            raise click.ClickException(f"{len(result.errors)} file(s) could not be read; see the warnings above")

    creds.run(body)


#: ``mosslite sync``, the command's name before #9: the same command, not listed.
sync_alias = copy.copy(mirror_folder)
sync_alias.name = "sync"
sync_alias.hidden = True
