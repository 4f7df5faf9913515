"""Ctrl-C while documents are being sent (cli/sending.py): they stop, the service queues
nothing, the command says so and exits 130, not click's bare "Aborted!" (issue #12).

The test model ``gated-intake`` (tests/plugins) holds the embedded service's intake of
the documents at a gate file, so the Ctrl-C lands while they are being sent: no timing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from mosslite_cli_helpers import CLI, WITH_TEST_MODELS


def test_ctrl_c_while_sending_queues_nothing_and_says_so(
    tmp_path: Path, plugin_env: dict[str, str], faq_file: Path, gate: Path
) -> None:
    env = {**plugin_env, "MOSS_PROJECT_ID": "p", "MOSS_PROJECT_KEY": "k"}
    sending = subprocess.Popen(
        [sys.executable, "-c", WITH_TEST_MODELS, "index", "create", "faq", "-f", str(faq_file), "--model", "gated-intake", "--wait"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    reached = Path(str(gate) + ".reached")
    deadline = time.monotonic() + 60
    while not reached.exists() and sending.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert reached.exists(), sending.communicate()
    sending.send_signal(signal.SIGINT)
    gate.touch()  # the service's reader goes on: it finds the documents stopped
    out, err = sending.communicate(timeout=60)
    assert sending.returncode == 130, err
    assert out == "" and "Aborted" not in err and "Traceback" not in err
    assert "interrupted while sending (creating index faq): the service queued nothing" in err

    cli = CLI(tmp_path, env)
    assert cli.json("index", "list") == []  # no index, no job: nothing was queued
    batches = tmp_path / "home" / "service" / "batches"
    assert [p.name for p in batches.iterdir() if not p.name.startswith(".")] == []  # nor a batch left behind


def test_a_closed_pipe_ends_a_command_quietly(cli: CLI, faq_index: str) -> None:
    """`mosslite ... | head -1`: the reader has what it wanted; no "Broken pipe" error."""
    done = subprocess.run(
        f"{sys.executable} -m mosslite doc get faq --json | head -c 1",
        shell=True, cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.stdout == "[" and done.stderr == ""
    assert json.loads(cli.ok("doc", "get", "faq", "--json").stdout)  # (the whole answer, unpiped)
