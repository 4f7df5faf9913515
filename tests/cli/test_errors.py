"""Every CLI error is one line with a hint, worded at one place (cli/errors.py; issue #12):
no Python exception text, no ``[Errno 2]``, and a not-found names the command that
lists what exists."""

from __future__ import annotations

import socket
from pathlib import Path

from mosslite_cli_helpers import CLI


def test_file_errors_name_the_file_and_what_is_wrong(cli: CLI, tmp_path: Path) -> None:
    assert cli.fails("index", "create", "x", "-f", "missing.jsonl") == "Error: no such file: missing.jsonl"
    (tmp_path / "folder.jsonl").mkdir()
    assert "folder.jsonl is a folder" in cli.fails("doc", "add", "x", "-f", "folder.jsonl")
    (tmp_path / "notext.jsonl").write_text('{"id": "a", "text": "fine"}\n{"id": "b"}\n')
    message = cli.fails("index", "create", "x", "-f", "notext.jsonl")
    assert message.startswith("Error: notext.jsonl: line 2: the document has no 'text' (hint: every document needs")
    assert "__init__" not in message and "keyword" not in message
    (tmp_path / "nothing.json").write_text('[{"metadata": {}}]')
    assert "the document has no 'id' and no 'text'" in cli.fails("index", "create", "x", "-f", "nothing.json")
    assert not cli.json("index", "list")  # refused before any work was queued


def test_not_found_and_refused_keys_say_what_to_run(cli: CLI, faq_index: str) -> None:
    message = cli.fails("index", "get", "nosuch")
    assert message == "Error: index 'nosuch' not found (hint: `mosslite index list` shows what exists)"
    assert "`mosslite index list` shows what exists" in cli.fails("doc", "get", "nosuch")
    assert "printed by the command that submitted the job" in cli.fails("job", "status", "job_0123456789abcdef")
    refused = cli.fails("index", "list", MOSS_PROJECT_KEY="wrong")
    assert "not valid for project 'proj'" in refused and "`mosslite info` shows" in refused


def test_an_unreachable_server_is_one_line_with_a_hint(cli: CLI) -> None:
    with socket.socket() as sock:  # a port nobody listens on once this closes
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}"
    message = cli.fails("index", "list", "--url", down)
    assert "(hint: " in message
