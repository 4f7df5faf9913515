"""Every command, run as a subprocess against a real embedded store or a real server."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import stat
from pathlib import Path

import pytest

from mosslite_cli_helpers import CLI, FAQ, MODEL, Served, Server, base_env


# -- init and credentials -----------------------------------------------------------------


def test_init_writes_a_private_config_that_later_commands_use(tmp_path: Path, faq_file: Path) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    assert "no credentials" in cli.fails("index", "list")
    made = cli.json("init", "--project-id", "proj")
    config = Path(made["config"])
    assert config == tmp_path / "home" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    saved = json.loads(config.read_text())
    assert saved["project_id"] == "proj" and saved["project_key"].startswith("mk_") and "url" not in saved
    assert "exists" in cli.fails("init")

    cli.ok("index", "create", "faq", "-f", str(faq_file), "--model", MODEL, "--wait")
    assert [i["name"] for i in cli.json("index", "list")] == ["faq"]
    # A flag or an environment variable wins over the file: another project sees nothing.
    assert cli.json("index", "list", "--project-id", "other", "--project-key", "k") == []
    assert cli.json("index", "list", MOSS_PROJECT_ID="other2", MOSS_PROJECT_KEY="k2") == []
    # ...and a wrong key for the file's project is refused.
    assert "not valid for project 'proj'" in cli.fails("index", "list", "--project-key", "wrong")


def test_init_for_a_server_needs_a_key(tmp_path: Path) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    assert "--project-key" in cli.fails("init", "--url", "http://127.0.0.1:9")
    cli.ok("init", "--url", "http://127.0.0.1:9", "--project-key", "mk_x", "--project-id", "p")
    assert json.loads((tmp_path / "home" / "config.json").read_text())["url"] == "http://127.0.0.1:9"
    assert "cannot reach the service at http://127.0.0.1:9" in cli.fails("index", "list")  # nobody listens on 9


# -- index ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["json", "jsonl", "csv", "stdin"])
def test_index_create_reads_every_file_format(cli: CLI, tmp_path: Path, kind: str) -> None:
    if kind == "csv":
        lines = ["id,text,metadata,colour"] + [f'{d["id"]},{d["text"]},"{json.dumps(d["metadata"]).replace(chr(34), chr(34) * 2)}",red' for d in FAQ]
        source, stdin = tmp_path / "faq.csv", None
        source.write_text("\n".join(lines) + "\n")
    elif kind == "json":
        source, stdin = tmp_path / "faq.json", None
        source.write_text(json.dumps(FAQ))
    else:
        source = tmp_path / "faq.jsonl"
        source.write_text("".join(json.dumps(d) + "\n" for d in FAQ))
        stdin = source.read_text() if kind == "stdin" else None
    path = "-" if kind == "stdin" else str(source)
    job = cli.json("index", "create", "faq", "-f", path, "--model", MODEL, "--wait", input=stdin)
    assert (job["status"], job["version"], job["doc_count"]) == ("completed", 1, 4)
    docs = {d["id"]: d for d in cli.json("doc", "get", "faq")}
    assert set(docs) == {"r1", "r2", "s1", "a1"}
    assert docs["r1"]["metadata"]["category"] == "returns"
    assert not any("embedding" in d for d in docs.values())  # texts and metadata, not vectors
    if kind == "csv":
        assert docs["r1"]["metadata"]["colour"] == "red"


def test_index_create_without_wait_prints_the_job(cli: CLI, faq_file: Path) -> None:
    result = cli.json("index", "create", "faq", "-f", str(faq_file), "--model", MODEL)
    assert set(result) == {"job_id", "index_name", "doc_count"} and result["doc_count"] == 4
    job = cli.json("job", "status", result["job_id"], "--wait")
    assert job["status"] == "completed" and job["progress"] == 100
    assert cli.json("job", "status", result["job_id"])["version"] == 1


def test_mutations_print_their_result_on_stdout_and_hints_on_stderr(cli: CLI, faq_file: Path, tmp_path: Path) -> None:
    created = cli.ok("index", "create", "faq", "-f", str(faq_file), "--model", MODEL)
    job_id = re.search(r"job_[0-9a-f]{6,}", created.stdout).group()
    assert "faq" in created.stdout and f"mosslite job status {job_id} --wait" in created.stderr
    assert cli.json("job", "status", job_id, "--wait")["status"] == "completed"
    added = cli.ok("doc", "add", "faq", "-f", str(faq_file), "--upsert", "--wait")
    assert "completed" in added.stdout and "job_" in added.stdout
    deleted = cli.ok("doc", "delete", "faq", "--ids", "r1", "--wait")
    assert "completed" in deleted.stdout
    assert "deleted index faq" in cli.ok("index", "delete", "faq", "-y").stdout
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("hello\n")
    assert "1 upserted" in cli.ok("mirror", str(notes), "notes", "--model", MODEL).stdout


def test_index_list_get_delete(cli: CLI, faq_index: str) -> None:
    listed = cli.ok("index", "list").stdout
    assert "faq" in listed and MODEL in listed
    info = cli.json("index", "get", "faq")
    assert (info["name"], info["version"], info["doc_count"], info["model"]) == ("faq", 1, 4, MODEL)
    assert "faq" in cli.ok("index", "get", "faq").stdout

    assert "Aborted" in cli("index", "delete", "faq", input="n\n").stderr
    assert cli.json("index", "get", "faq")["name"] == "faq"
    assert cli.json("index", "delete", "faq", "-y") == {"deleted": "faq"}
    assert cli.json("index", "list") == []


def test_index_inspect_gives_the_file_and_working_sqlite3_commands(cli: CLI, faq_index: str) -> None:
    report = cli.json("index", "inspect", "faq")
    assert (report["version"], report["doc_count"], report["model_id"], report["dimension"]) == (1, 4, MODEL, 256)
    path = Path(report["path"])
    assert path.is_file() and report["size_bytes"] == path.stat().st_size
    assert str(path).startswith(str(cli.cwd / "home"))
    assert report["sqlite3"][0] == f"sqlite3 -readonly '{path}'"
    assert report["vec_extension"] in report["sqlite3"][1]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        for statement in report["sqlite3"][2:]:
            assert conn.execute(statement).fetchall()
    human = cli.ok("index", "inspect", "faq").stdout
    assert str(path) in human.replace("\n", "") or "sqlite3 -readonly" in human


def test_bad_input_is_one_line_and_exit_1(cli: CLI, faq_index: str, tmp_path: Path) -> None:
    assert "no such file: missing.jsonl" in cli.fails("index", "create", "x", "-f", "missing.jsonl")
    (tmp_path / "bad.json").write_text('[{"id": "a", "text": "t"},')
    assert "bad.json: line 1: malformed JSON" in cli.fails("index", "create", "x", "-f", "bad.json")
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "text": "t"}\n{"id": "b", "text": 5}\n')
    assert "line 2" in cli.fails("doc", "add", "faq", "-f", "bad.jsonl")
    (tmp_path / "bad.csv").write_text("name,body\nx,y\n")
    assert "id and text columns" in cli.fails("index", "create", "x", "-f", "bad.csv")
    assert "index 'nope' not found" in cli.fails("index", "get", "nope")
    assert "not found" in cli.fails("query", "nope", "refunds")
    assert "not found" in cli.fails("doc", "get", "nope")
    assert "not found" in cli.fails("job", "status", "job_nope")
    assert "may use only letters" in cli.fails("index", "get", "bad/name")
    exists = cli.fails("index", "create", "faq", "-f", str(tmp_path / "faq.jsonl"))
    assert "already exists" in exists and "mosslite doc add faq" in exists and "add_docs" not in exists
    assert "not valid JSON" in cli.fails("query", "faq", "refunds", "--filter", "{oops")
    assert "unknown operator" in cli.fails("query", "faq", "refunds", "--filter", '{"field": "a", "condition": {"$regex": "x"}}')
    assert "top_k" in cli.fails("query", "faq", "refunds", "--top-k", "0")
    assert "not valid for project" in cli.fails("index", "list", MOSS_PROJECT_KEY="wrong")
    assert "model" in cli.fails("index", "create", "y", "-f", str(tmp_path / "faq.jsonl"), "--model", "no-such-model", "--wait")


HUGE = "1" + "0" * 5000  # json.loads raises ValueError past 4,300 digits (a traceback, issue #8)
DEEP = "[" * 100_000 + "]" * 100_000  # ...and RecursionError this deep
DEEP_ARG = "[" * 20_000 + "]" * 20_000  # (as deep as one command-line argument may be: 128 KB)


@pytest.mark.parametrize("value", [HUGE, DEEP_ARG])
def test_filter_json_python_cannot_hold_is_one_line_and_exit_1(cli: CLI, value: str) -> None:
    spec = '{"field": "category", "condition": {"$lt": ' + value + "}}"
    for command in (("query", "c1", "refunds"), ("doc", "get", "c1")):
        message = cli.fails(*command, "--filter", spec)
        assert "--filter is not JSON mosslite can read" in message and "set_int_max_str_digits" not in message


def test_document_files_python_cannot_hold_are_one_line_and_exit_1(cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "huge.jsonl").write_text('{"id": "a", "text": "t"}\n{"id": "b", "text": "t", "metadata": {"k": ' + HUGE + "}}\n")
    assert "huge.jsonl: line 2: malformed JSON" in cli.fails("index", "create", "x", "-f", "huge.jsonl")
    (tmp_path / "deep.json").write_text('[{"id": "a", "text": "t", "metadata": ' + DEEP + "}]")
    assert "deep.json: line 1: malformed JSON: nested too deeply" in cli.fails("doc", "add", "x", "-f", "deep.json")
    (tmp_path / "twice.csv").write_text("id,text,id\na,t,b\n")
    assert "names column 'id' more than once" in cli.fails("index", "create", "x", "-f", "twice.csv")


def test_a_config_file_python_cannot_hold_is_one_line_and_exit_1(tmp_path: Path) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    for content in ('{"project_id": ' + HUGE + "}", '{"project_id": ' + DEEP + "}"):
        (tmp_path / "home" / "config.json").write_text(content)
        assert "is not valid JSON" in cli.fails("index", "list")


# -- doc ---------------------------------------------------------------------------------


def test_doc_add_get_delete(cli: CLI, faq_index: str, tmp_path: Path) -> None:
    more = tmp_path / "more.json"
    more.write_text(json.dumps([{"id": "g1", "text": "Gift cards never expire."}, {"id": "r1", "text": "Refunds: 10 days."}]))
    assert "already exist" in cli.fails("doc", "add", "faq", "-f", str(more), "--wait")
    job = cli.json("doc", "add", "faq", "-f", str(more), "--upsert", "--wait")
    assert job["status"] == "completed" and job["version"] >= 2
    docs = {d["id"]: d["text"] for d in cli.json("doc", "get", "faq", "--ids", "g1,r1")}
    assert docs == {"g1": "Gift cards never expire.", "r1": "Refunds: 10 days."}
    shipping = cli.json("doc", "get", "faq", "--filter", '{"field": "category", "condition": {"$eq": "shipping"}}')
    assert [d["id"] for d in shipping] == ["s1"]
    assert "g1" in cli.ok("doc", "get", "faq").stdout

    job = cli.json("doc", "delete", "faq", "--ids", "g1,s1", "--wait")
    assert job["status"] == "completed"
    assert {d["id"] for d in cli.json("doc", "get", "faq")} == {"r1", "r2", "a1"}
    assert "at least one id" in cli.fails("doc", "delete", "faq", "--ids", ",")


@pytest.mark.parametrize("ids", ["", " ", ","])
def test_doc_get_with_an_empty_id_list_is_an_error_not_everything(cli: CLI, faq_index: str, ids: str) -> None:
    assert "--ids needs at least one id" in cli.fails("doc", "get", "faq", "--ids", ids)
    assert "at least one id" in cli.fails("doc", "delete", "faq", "--ids", ids)


def test_doc_add_without_upsert_refuses_an_existing_id(cli: CLI, faq_index: str, tmp_path: Path) -> None:
    again = tmp_path / "again.jsonl"
    again.write_text(json.dumps({"id": "r1", "text": "twice"}) + "\n")
    message = cli.fails("doc", "add", "faq", "-f", str(again), "--wait")
    assert "r1" in message
    assert "pass --upsert" in message and "MutationOptions" not in message  # the CLI's flag, not Python
    assert cli.json("doc", "get", "faq", "--ids", "r1")[0]["text"] == FAQ[0]["text"]


# -- query ---------------------------------------------------------------------------------


def test_query_text_stdin_and_options(cli: CLI, faq_index: str) -> None:
    result = cli.json("query", "faq", "refunds for returns", "--top-k", "2", "--alpha", "0.0")
    assert result["index_name"] == "faq" and 1 <= len(result["docs"]) <= 2  # keyword hits only
    assert result["docs"][0]["id"] == "r1" and result["time_taken_ms"] >= 0
    piped = cli.json("query", "faq", "--top-k", "1", input="bluetooth headphones\n")
    assert [d["id"] for d in piped["docs"]] == ["a1"]
    filtered = cli.json("query", "faq", "days", "--filter", '{"field": "category", "condition": {"$eq": "shipping"}}')
    assert [d["id"] for d in filtered["docs"]] == ["s1"]
    human = cli.ok("query", "faq", "refunds").stdout
    assert "r1" in human and "score" in human


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_an_empty_query_is_an_error(cli: CLI, faq_index: str, text: str) -> None:
    assert "query TEXT is empty" in cli.fails("query", "faq", text)
    assert "query TEXT is empty" in cli.fails("query", "faq", text, "--interactive", input="refunds\n")
    assert "empty" in cli.fails("query", "faq", input=text)


def test_query_interactive_reads_until_quit_or_eof(cli: CLI, faq_index: str) -> None:
    done = cli.ok("query", "faq", "--interactive", "--json", "--top-k", "1", input="bluetooth\n\nshipping days\n:q\nrefunds\n")
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(a["query"], a["docs"][0]["id"]) for a in answers] == [("bluetooth", "a1"), ("shipping days", "s1")]
    eof = cli.ok("query", "faq", "-i", input="refunds\n")
    assert "r1" in eof.stdout


def test_progress_bars_only_on_a_terminal(cli: CLI, faq_file: Path) -> None:
    piped = cli.ok("index", "create", "faq", "-f", str(faq_file), "--model", MODEL, "--wait")
    assert "━" not in piped.stderr and "%" not in piped.stderr
    import pty
    import subprocess
    import sys
    import threading

    result = cli.json("doc", "add", "faq", "-f", str(faq_file), "--upsert")
    controller, worker = pty.openpty()
    screen = bytearray()

    def drain() -> None:  # keep reading, so the bar never blocks on a full pty buffer
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    process = subprocess.Popen(
        [sys.executable, "-m", "mosslite", "job", "status", result["job_id"], "--wait"],
        cwd=cli.cwd, env=cli.env, stdin=worker, stdout=subprocess.PIPE, stderr=worker,
    )  # fmt: skip
    os.close(worker)
    out, _ = process.communicate(timeout=60)
    reader.join(10)
    os.close(controller)
    assert process.returncode == 0
    text = bytes(screen).decode(errors="replace")
    assert "100%" in text and "completed" in text
    assert b"completed" in out


# -- a real server -------------------------------------------------------------------------


def test_key_commands_say_when_the_data_folder_holds_no_service(tmp_path: Path) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    typo = tmp_path / "srvv"
    assert "holds no service data" in cli.fails("keys", "list", "--project", "p", "--data", str(typo))
    assert not typo.exists()  # listing made nothing
    made = cli.ok("keys", "create", "--project", "p", "--data", str(typo))
    assert made.stdout.strip().startswith("mk_") and "held no service yet" in made.stderr
    again = cli.ok("keys", "create", "--project", "p", "--data", str(typo))
    assert again.stdout.strip().startswith("mk_") and "held no service" not in again.stderr
    assert len(cli.ok("keys", "list", "--project", "p", "--data", str(typo)).stdout.splitlines()) == 2


def test_every_client_command_works_against_a_server(server: Server, tmp_path: Path, faq_file: Path) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    made = cli.ok("keys", "create", "--project", "remote", "--data", str(server.data))
    key, key_id = made.stdout.strip(), made.stderr.split()[2]
    assert key.startswith("mk_")
    listed = cli.ok("keys", "list", "--project", "remote", "--data", str(server.data)).stdout
    assert key_id in listed and key[:6] not in listed
    flags = ("--url", server.url, "--project-id", "remote", "--project-key", key)
    job = cli.json("index", "create", "faq", "-f", str(faq_file), "--model", MODEL, "--wait", *flags)
    assert job["status"] == "completed"
    assert [i["name"] for i in cli.json("index", "list", *flags)] == ["faq"]
    # The same through the environment, and through the config file.
    env = {"MOSS_URL": server.url, "MOSS_PROJECT_ID": "remote", "MOSS_PROJECT_KEY": key}
    assert cli.json("index", "get", "faq", **env)["doc_count"] == 4
    cli.ok("init", "--url", server.url, "--project-id", "remote", "--project-key", key)
    assert cli.json("query", "faq", "money back guarantee", "--top-k", "1")["docs"][0]["id"] == "r2"
    assert cli.json("index", "inspect", "faq")["path"].startswith(str(tmp_path / "home"))
    assert cli.json("doc", "delete", "faq", "--ids", "a1", "--wait")["status"] == "completed"
    assert len(cli.json("doc", "get", "faq")) == 3
    stored = sorted(p.name for p in (server.data / "storage" / "remote" / "faq").iterdir())
    assert stored == [  # served with --keep-versions 1: v1's file is gone, its page map stays
        "0000000001.sqlite.pages", "0000000002.sqlite", "0000000002.sqlite.from-1.patch", "0000000002.sqlite.pages",
        "manifest.json",
    ]  # fmt: skip
    refused = cli("serve", "--data", str(tmp_path / "srv"), "--keep-versions", "0")
    assert refused.returncode == 2 and "--keep-versions" in refused.stderr
    assert "not valid for project" in cli.fails("index", "list", "--project-key", "mk_wrong")
    assert "not found" in cli.fails("index", "get", "nope")
    assert cli.json("index", "delete", "faq", "-y") == {"deleted": "faq"}
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("hello from a folder\n")
    assert cli.json("mirror", str(notes), "mirror", "--model", MODEL)["created"]
    assert [d["id"] for d in cli.json("doc", "get", "mirror")] == ["a.txt"]


def test_index_public_turns_public_read_mode_on_and_off(tmp_path: Path, faq_file: Path) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    data = tmp_path / "srv"
    served = Served(cli, "--data", str(data), "--port", "0", "--public-url", "https://cdn.example.com/m/")
    try:
        assert "public indexes: read at https://cdn.example.com/m/_public/ without a key" in served.wait_for("public indexes:")
        key = cli.ok("keys", "create", "--project", "p", "--data", str(data)).stdout.strip()
        env = {"MOSS_URL": served.url, "MOSS_PROJECT_ID": "p", "MOSS_PROJECT_KEY": key}
        cli.ok("index", "create", "faq", "-f", str(faq_file), "--model", MODEL, "--wait", **env)
        url = "https://cdn.example.com/m/_public/p/faq/manifest.json"
        assert cli.ok("index", "public", "faq", "--on", **env).stdout == f"index faq is public: devices read {url}\n"
        assert json.loads((data / "storage" / "_public" / "p" / "faq" / "manifest.json").read_text())["version"] == 1
        assert cli.json("index", "get", "faq", **env)["public_manifest"] == url
        assert re.search(r"│ yes +│", cli.ok("index", "list", **env).stdout)
        info = cli.json("index", "public", "faq", "--off", **env)
        assert (info["public"], info["public_manifest"]) == (False, None)
        assert not (data / "storage" / "_public").exists()
        assert cli("index", "public", "faq", **env).returncode == 2  # --on or --off, never a guess
    finally:
        served.stop()


def test_index_public_on_a_service_with_no_public_url_says_how_to_give_it_one(cli: CLI, faq_index: str) -> None:
    message = cli.fails("index", "public", faq_index, "--on")
    assert "cannot be public: this service has no public URL" in message and "--public-url" in message
    assert cli.ok("index", "public", faq_index, "--off").stdout == f"index {faq_index} is private: its public copies are deleted\n"


def test_a_server_that_is_down_is_named_never_answered_from_the_embedded_copy(cli: CLI, faq_index: str) -> None:
    # #12: `query faq --url` with the server down printed "serving cached version N"
    # of the *embedded* faq (the cache was keyed by project and index only).
    assert cli.json("query", "faq", "money back guarantee")["docs"]  # the embedded faq, now cached
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}"
    message = cli.fails("query", "faq", "money back guarantee", "--url", down)
    assert f"cannot reach the service at {down}" in message and "mosslite serve" in message

