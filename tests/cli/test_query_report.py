"""What ``mosslite query`` reports (issue #12): the query's own time, apart from loading
the index and the model (each said on stderr), "1 result", and nothing at all for a
query with nothing to search by."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mosslite_cli_helpers import CLI

LOADED = re.compile(r"index (\S+) v(\d+) loaded \((\d+) documents?\) in [\d.]+ m?s")


def test_a_query_reports_its_own_time_and_the_load_apart(cli: CLI, faq_index: str) -> None:
    done = cli.ok("query", "faq", "bluetooth headphones", "--top-k", "1")
    assert re.search(r"'bluetooth headphones': 1 result in \d+\.\d\d ms", done.stdout), done.stdout
    assert LOADED.search(done.stderr).groups() == ("faq", "1", "4"), done.stderr
    assert "model" not in done.stderr  # hashed-ngrams-256 has nothing to load
    piped = cli.ok("query", "faq", "refunds", "--json")
    assert json.loads(piped.stdout)["time_taken_ms"] >= 0 and LOADED.search(piped.stderr)
    assert "3 results in" in cli.ok("query", "faq", "days refunds bluetooth", "--top-k", "3").stdout


def test_the_model_is_loaded_and_timed_before_the_query(cli: CLI, faq_file: Path) -> None:
    """The issue's case: moss-minilm's weights used to load inside the first query, which
    then reported ~1.7 s as its time. (The default model: a few seconds.)"""
    cli.ok("index", "create", "faqm", "-f", str(faq_file), "--wait")
    done = cli.ok("query", "faqm", "refund", "--top-k", "1")
    load = re.search(r"model moss-minilm loaded in [\d.]+ m?s", done.stderr)
    assert load and LOADED.search(done.stderr), done.stderr
    assert done.stderr.index("index faqm") < load.start()  # the index first, then its model
    assert re.search(r"'refund': 1 result in \d+\.\d\d ms", done.stdout)
    nothing = cli.ok("query", "faqm", "?!")  # no word: answered without the model, so not loaded
    assert "0 results in" in nothing.stdout and LOADED.search(nothing.stderr) and "model" not in nothing.stderr


@pytest.mark.parametrize("text", ["?!", "...", "!? ;"])
def test_a_query_with_nothing_to_search_by_finds_nothing(cli: CLI, faq_index: str, text: str) -> None:
    for alpha in ("0.0", "0.5", "1.0"):
        assert cli.json("query", "faq", text, "--alpha", alpha)["docs"] == []
    assert "0 results in" in cli.ok("query", "faq", text).stdout
    # One word among the punctuation is something to search by.
    assert [d["id"] for d in cli.json("query", "faq", f"bluetooth{text}", "--top-k", "1")["docs"]] == ["a1"]
