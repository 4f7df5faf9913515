"""`mosslite mirror DIR NAME`: one pass, and --watch following edits until SIGINT."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from mosslite_cli_helpers import CLI, MODEL, read_line


def ids(cli: CLI, name: str) -> set[str]:
    return {d["id"] for d in cli.json("doc", "get", name)}


def test_mirror_follows_a_folder_and_reports_unreadable_files(cli: CLI, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "a.md").write_text("# Title\n\nhello world\n")
    (notes / "sub" / "long.md").write_text("# Guide\n\n" + "Refunds take five days. " * 60 + "\n\n## Shipping\n\nfast\n")
    (notes / "items.jsonl").write_text('{"id": "x", "text": "json doc"}\n')
    (notes / "script.py").write_text("print('not indexed')\n")
    (notes / ".hidden.md").write_text("not indexed\n")

    first = cli.json("mirror", str(notes), "notes", "--model", MODEL, "--chunk-size", "400")
    assert first["created"] and first["files"] == 3
    got = ids(cli, "notes")
    chunks = {i for i in got if i.startswith("sub/long.md#")}
    assert len(chunks) >= 3 and got == {"a.md", "items.jsonl#x"} | chunks
    # Each file is named, with how many of its documents (issue #12: only counts were said).
    assert first["upserted_files"] == {"a.md": 1, "items.jsonl": 1, "sub/long.md": len(chunks)}
    assert first["deleted_files"] == {}
    parents = {d["metadata"]["parent_id"] for d in cli.json("doc", "get", "notes", "--ids", ",".join(chunks))}
    assert parents == {"sub/long.md"}
    assert cli.json("index", "get", "notes")["model"] == MODEL

    again = cli.json("mirror", str(notes), "notes", "--chunk-size", "400")
    assert (again["upserted"], again["deleted"], again["job_ids"]) == (0, 0, [])

    (notes / "a.md").unlink()
    (notes / "items.jsonl").write_text('{"id": "x", "text": "json doc, edited"}\n{"id": "y", "text": "another"}\n')
    third = cli.json("mirror", str(notes), "notes", "--chunk-size", "400")
    assert (third["upserted"], third["deleted"]) == (2, 1)
    assert (third["upserted_files"], third["deleted_files"]) == ({"items.jsonl": 2}, {"a.md": 1})
    assert ids(cli, "notes") == {"items.jsonl#x", "items.jsonl#y"} | chunks

    (notes / "b.txt").write_text("a new note\n")
    (notes / "items.jsonl").write_text('{"id": "x", "text": ')  # half-saved: left as it was
    done = cli("mirror", str(notes), "notes", "--chunk-size", "400")
    assert done.returncode == 1 and "skipped items.jsonl" in done.stderr and "line 1: malformed JSON" in done.stderr
    assert done.stdout.splitlines() == [
        "notes: 1 upserted, 0 deleted, " + f"{len(chunks)} unchanged (3 files)", "  upserted b.txt (1 document)",
    ]  # fmt: skip
    (notes / "b.txt").unlink()
    (notes / "items.jsonl").write_text('{"id": "x", "text": "json doc, edited"}\n{"id": "y", "text": "another"}\n')
    assert cli.ok("mirror", str(notes), "notes", "--chunk-size", "400").stdout.splitlines()[1:] == ["  deleted b.txt (1 document)"]
    assert ids(cli, "notes") == {"items.jsonl#x", "items.jsonl#y"} | chunks
    assert "no such folder" in cli.fails("mirror", str(tmp_path / "nope"), "notes")


def wait_until(check: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except AssertionError:
            pass
        assert time.monotonic() < deadline, "the index did not follow the folder in time"
        time.sleep(0.3)


def test_sync_watch_follows_edits_and_stops_cleanly_on_sigint(cli: CLI, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "first.txt").write_text("the first note\n")
    watcher = cli.popen("mirror", str(notes), "watched", "--model", MODEL, "--watch", "--json")
    try:
        created = json.loads(read_line(watcher.stdout))
        assert created["created"] and created["upserted_files"] == {"first.txt": 1}
        wait_until(lambda: ids(cli, "watched") == {"first.txt"})

        (notes / "second.md").write_text("# Second\n\nbananas\n")
        wait_until(lambda: ids(cli, "watched") == {"first.txt", "second.md"})
        (notes / "first.txt").write_text("the first note, edited\n")
        wait_until(lambda: cli.json("doc", "get", "watched", "--ids", "first.txt")[0]["text"].endswith("edited\n"))
        (notes / "sub").mkdir()
        (notes / "sub" / "third.txt").write_text("deeper\n")
        wait_until(lambda: "sub/third.txt" in ids(cli, "watched"))
        (notes / "second.md").unlink()
        wait_until(lambda: ids(cli, "watched") == {"first.txt", "sub/third.txt"})
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err
    for line in out.splitlines():
        json.loads(line)


def test_sync_is_the_hidden_old_name_of_mirror(cli: CLI, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("hello world\n")
    assert cli.json("sync", str(notes), "notes", "--model", MODEL)["upserted"] == 1
    listed = cli.ok("--help").stdout
    assert " mirror " in listed and " sync " not in listed
