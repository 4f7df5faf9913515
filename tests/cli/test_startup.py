"""What a command loads: an embedded one never imports the HTTP client (httpx, ~90 ms of
every command's start), which only commands that talk to a server need."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mosslite_cli_helpers import CLI, MODEL

WITHOUT_HTTPX = "import sys; sys.modules['httpx'] = None; sys.argv = ['mosslite', *sys.argv[1:]]; from mosslite.cli import main; main()"


def test_embedded_commands_never_import_httpx(cli: CLI, faq_file: Path) -> None:
    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", WITHOUT_HTTPX, *args], cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{args} exited {done.returncode}: {done.stderr}"
        return done.stdout

    run("index", "create", "faq", "-f", str(faq_file), "--model", MODEL, "--wait")
    assert "r1" in run("query", "faq", "refunds")
    assert "faq" in run("index", "list")
    run("info")
