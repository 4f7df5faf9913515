"""Moving data in and out (issue #12): ``index export`` writes JSON Lines that ``index
create -f`` takes back with the same model and the same vectors, embedding nothing
again; ``index history`` lists the versions the service published."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mosslite_cli_helpers import CLI, FAQ, MODEL


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_an_export_comes_back_with_its_model_and_the_same_vectors(cli: CLI, faq_index: str, tmp_path: Path) -> None:
    export = tmp_path / "faq.jsonl"
    done = cli.ok("index", "export", "faq", "-o", str(export))
    assert done.stdout == "" and f"exported 4 documents of faq (model {MODEL}) to {export}" in done.stderr
    assert f"mosslite index create NEW_NAME -f {export}" in done.stderr
    exported = lines(export.read_text())
    assert [d["id"] for d in exported] == [d["id"] for d in FAQ]
    assert {k: exported[0][k] for k in ("id", "text", "metadata")} == FAQ[0]
    assert all(d["embedding_model"] == MODEL and len(d["embedding"]) == 256 for d in exported)
    assert lines(cli.ok("index", "export", "faq").stdout) == exported  # - (stdout) by default

    job = cli.json("index", "create", "copy", "-f", str(export), "--wait")  # no --model: the file's
    assert job["status"] == "completed"
    assert cli.json("index", "get", "copy")["model"] == MODEL
    assert lines(cli.ok("index", "export", "copy").stdout) == exported  # the very same vectors
    for text in ("refunds", "bluetooth headphones", "shipping days"):
        original, copy = cli.json("query", "faq", text), cli.json("query", "copy", text)
        assert [(d["id"], d["score"]) for d in copy["docs"]] == [(d["id"], d["score"]) for d in original["docs"]]


def test_the_vectors_in_the_file_are_stored_not_computed_again(cli: CLI, faq_index: str, tmp_path: Path) -> None:
    exported = lines(cli.ok("index", "export", "faq").stdout)
    by_id = {d["id"]: d for d in exported}
    by_id["a1"]["embedding"] = by_id["r1"]["embedding"]  # headphones, with the vector of a refund
    swapped = tmp_path / "swapped.jsonl"
    swapped.write_text("".join(json.dumps(d) + "\n" for d in exported))
    cli.ok("index", "create", "swapped", "-f", str(swapped), "--wait")
    semantic = cli.json("query", "swapped", FAQ[0]["text"], "--alpha", "1.0", "--top-k", "2")["docs"]
    assert {d["id"] for d in semantic} == {"r1", "a1"} and semantic[1]["score"] == semantic[0]["score"]


def test_a_file_s_embeddings_never_join_another_model(cli: CLI, faq_index: str, tmp_path: Path) -> None:
    export = tmp_path / "faq.jsonl"
    cli.ok("index", "export", "faq", "-o", str(export))
    refused = cli.fails("index", "create", "x", "-f", str(export), "--model", "custom")
    assert f"its embeddings come from model '{MODEL}', not --model 'custom'" in refused
    assert "not found" in cli.fails("index", "get", "x")  # nothing was made

    # A custom-model index from the same vectors (the file says so), and its own round trip.
    as_custom = tmp_path / "custom.jsonl"
    as_custom.write_text("".join(json.dumps({**d, "embedding_model": "custom"}) + "\n" for d in lines(export.read_text())))
    cli.ok("index", "create", "vectors", "-f", str(as_custom), "--wait")
    info = cli.json("index", "get", "vectors")
    assert (info["model"], info["dimension"]) == ("custom", 256)
    again = tmp_path / "again.jsonl"
    cli.ok("index", "export", "vectors", "-o", str(again))
    assert lines(again.read_text()) == lines(as_custom.read_text())
    refused = cli.fails("doc", "add", "vectors", "-f", str(export), "--upsert")
    assert f"its embeddings come from model '{MODEL}'; index 'vectors' uses 'custom'" in refused

    bare = cli.ok("index", "export", "vectors", "--no-embeddings")
    assert all(set(d) == {"id", "text", "metadata"} for d in lines(bare.stdout))
    assert "cannot make a custom-model index again" in bare.stderr

    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(as_custom.read_text() + export.read_text())
    assert "differs from 'custom'" in cli.fails("index", "create", "y", "-f", str(mixed))


def test_an_export_without_embeddings_is_embedded_by_the_model_asked_for(cli: CLI, faq_index: str, tmp_path: Path) -> None:
    bare = tmp_path / "bare.jsonl"
    cli.ok("index", "export", "faq", "-o", str(bare), "--no-embeddings")
    assert all("embedding" not in d and "embedding_model" not in d for d in lines(bare.read_text()))
    cli.ok("index", "create", "again", "-f", str(bare), "--model", MODEL, "--wait")
    assert lines(cli.ok("index", "export", "again").stdout) == lines(cli.ok("index", "export", "faq").stdout)
    assert "not found" in cli.fails("index", "export", "nope", "-o", str(tmp_path / "nope.jsonl"))
    assert not (tmp_path / "nope.jsonl").exists()  # a failed export leaves no file


def test_index_history_lists_every_version_newest_first(cli: CLI, faq_index: str, faq_file: Path) -> None:
    for _ in range(4):
        cli.ok("doc", "add", "faq", "-f", str(faq_file), "--upsert", "--wait")
    versions = cli.json("index", "history", "faq")
    assert [(v["version"], v["doc_count"], v["model_id"]) for v in versions] == [(n, 4, MODEL) for n in (5, 4, 3, 2, 1)]
    assert versions[0]["size_bytes"] == cli.json("index", "inspect", "faq")["size_bytes"]
    # The service keeps the newest 3 files by default: version 1's was pruned before job 5 ran.
    assert [v["kept"] for v in versions[:3]] == [True, True, True] and not versions[4]["kept"]
    human = cli.ok("index", "history", "faq").stdout
    assert "versions of faq" in human and "kept" in human and "pruned" in human and "KiB" in human
    assert "not found" in cli.fails("index", "history", "nope")
