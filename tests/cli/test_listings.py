"""Listings a newcomer asked for (issue #12): ``doc get --limit N`` and ``keys list --json``."""

from __future__ import annotations

from pathlib import Path

from mosslite_cli_helpers import CLI, FAQ, base_env


def test_doc_get_limit_reads_only_the_first_documents(cli: CLI, faq_index: str) -> None:
    ids = [d["id"] for d in FAQ]
    assert [d["id"] for d in cli.json("doc", "get", "faq", "--limit", "2")] == ids[:2]
    limited = cli.ok("doc", "get", "faq", "--limit", "2")
    assert "2 documents of faq" in limited.stdout and "there may be more" in limited.stderr
    whole = cli.ok("doc", "get", "faq", "--limit", "4")
    assert "4 documents of faq" in whole.stdout and "more" not in whole.stderr
    assert [d["id"] for d in cli.json("doc", "get", "faq")] == ids  # default: all
    assert "1 document of faq" in cli.ok("doc", "get", "faq", "--ids", "s1,r2", "--limit", "1").stdout
    filtered = cli.json("doc", "get", "faq", "--limit", "1", "--filter", '{"field": "category", "condition": {"$eq": "returns"}}')
    assert [d["id"] for d in filtered] == ["r1"]
    refused = cli("doc", "get", "faq", "--limit", "0")
    assert refused.returncode == 2 and "--limit" in refused.stderr


def test_keys_list_json(tmp_path: Path) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    data = str(tmp_path / "srv")
    made = cli.ok("keys", "create", "--project", "p", "--data", data)
    key_id = made.stderr.split()[2]
    listed = cli.json("keys", "list", "--project", "p", "--data", data)
    assert [k["key_id"] for k in listed] == [key_id] and set(listed[0]) == {"key_id", "created_at"}
    assert made.stdout.strip()[:6] not in str(listed)
    assert cli.json("keys", "list", "--project", "nobody", "--data", data) == []
