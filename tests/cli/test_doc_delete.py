"""Deleting ids an index does not hold publishes no version (issue #12): the job
completes with the version that stays, so no client downloads a copy of what it has."""

from __future__ import annotations

from pathlib import Path

from mosslite_cli_helpers import CLI, MODEL, Server, base_env


def deletes_publish_only_what_changes(cli: CLI, flags: tuple[str, ...] = ()) -> None:
    assert cli.json("index", "get", "faq", *flags)["version"] == 1
    job = cli.json("doc", "delete", "faq", "--ids", "nosuch,gone", "--wait", *flags)
    assert (job["status"], job["version"], job["doc_count"]) == ("completed", 1, 2)
    info = cli.json("index", "get", "faq", *flags)
    assert (info["version"], info["doc_count"]) == (1, 4)

    job = cli.json("doc", "delete", "faq", "--ids", "r1,nosuch", "--wait", *flags)
    assert (job["status"], job["version"]) == ("completed", 2)
    info = cli.json("index", "get", "faq", *flags)
    assert (info["version"], info["doc_count"]) == (2, 3)
    # The id deleted in version 2 is missing now: deleting it again changes nothing.
    assert cli.json("doc", "delete", "faq", "--ids", "r1", "--wait", *flags)["version"] == 2
    assert cli.json("index", "get", "faq", *flags)["version"] == 2


def test_deleting_missing_ids_publishes_no_version(cli: CLI, faq_index: str) -> None:
    deletes_publish_only_what_changes(cli)


def test_deleting_missing_ids_publishes_no_version_on_a_server(server: Server, tmp_path: Path, faq_file: Path) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    key = cli.ok("keys", "create", "--project", "deletes", "--data", str(server.data)).stdout.strip()
    flags = ("--url", server.url, "--project-id", "deletes", "--project-key", key)
    cli.ok("index", "create", "faq", "-f", str(faq_file), "--model", MODEL, "--wait", *flags)
    deletes_publish_only_what_changes(cli, flags)
