"""Drive ``mosslite`` as a user would: a subprocess per command, real files, a real
embedded store under a temporary MOSSLITE_HOME, and a real ``mosslite serve``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mosslite_cli_helpers import CLI, FAQ, MODEL, PLUGINS, Served, Server, base_env  # noqa: E402


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    """Embedded store, credentials in the environment."""
    env = base_env(tmp_path / "home")
    env.update(MOSS_PROJECT_ID="proj", MOSS_PROJECT_KEY="key-1")
    return CLI(tmp_path, env)


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    """The gate file of the test models ``gated-hashed`` and ``gated-intake`` (tests/plugins)."""
    return tmp_path / "gate"


@pytest.fixture
def plugin_env(tmp_path: Path, gate: Path) -> dict[str, str]:
    """A private home, the test models importable, and their gate."""
    env = base_env(tmp_path / "home")
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGINS), env.get("PYTHONPATH", "")])
    env["MOSSLITE_TEST_GATE"] = str(gate)
    return env


@pytest.fixture
def faq_file(tmp_path: Path) -> Path:
    path = tmp_path / "faq.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in FAQ))
    return path


@pytest.fixture
def faq_index(cli: CLI, faq_file: Path) -> str:
    cli.ok("index", "create", "faq", "-f", str(faq_file), "--model", MODEL, "--wait")
    return "faq"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real ``mosslite serve`` on a free loopback port (--port 0); its output is
    drained (an access log line per request would otherwise fill the pipe)."""
    root = tmp_path_factory.mktemp("cli-server")
    cli = CLI(root, base_env(root / "home"))
    served = Served(cli, "--data", str(root / "srv"), "--host", "127.0.0.1", "--port", "0", "--keep-versions", "1")
    yield Server(url=served.url, data=root / "srv", process=served.process)
    served.stop()
