"""Helpers for the CLI tests (a module, not conftest, so tests can import them)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL = "hashed-ngrams-256"
FAQ = [
    {"id": "r1", "text": "Refunds are issued within 5 days of the return.", "metadata": {"category": "returns"}},
    {"id": "r2", "text": "Money back guarantee on every damaged product.", "metadata": {"category": "returns"}},
    {"id": "s1", "text": "Standard shipping takes three to five days.", "metadata": {"category": "shipping"}},
    {"id": "a1", "text": "Pair your headphones over Bluetooth.", "metadata": {"category": "audio"}},
]
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
#: The CLI with the test models registered (as `mosslite serve --plugin` does for a server).
WITH_TEST_MODELS = "import mosslite_test_models; from mosslite.cli import main; main()"
CREDENTIAL_ENV = ("MOSS_PROJECT_ID", "MOSS_PROJECT_KEY", "MOSS_URL", "MOSSLITE_CONFIG", "MOSSLITE_DATA")


@dataclass
class CLI:
    """Runs ``python -m mosslite ...`` in ``cwd`` with a private MOSSLITE_HOME."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mosslite", *args],
            cwd=self.cwd,
            env={**self.env, **env},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str, input: str | None = None, **env: str) -> subprocess.CompletedProcess:
        done = self(*args, input=input, **env)
        assert done.returncode == 0, f"{args} exited {done.returncode}: {done.stderr}"
        return done

    def json(self, *args: str, input: str | None = None, **env: str) -> Any:
        return json.loads(self.ok(*args, "--json", input=input, **env).stdout)

    def fails(self, *args: str, input: str | None = None, **env: str) -> str:
        """Runs a command that must fail; returns its one-line message."""
        done = self(*args, input=input, **env)
        assert done.returncode == 1, f"{args} exited {done.returncode}: {done.stdout} {done.stderr}"
        assert done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
        return lines[0]

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "mosslite", *args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_ENV}
    env.update(MOSSLITE_HOME=str(home), COLUMNS="200")
    return env


def read_line(stream: Any, timeout_s: float = 30.0) -> str:
    ready, _, _ = select.select([stream], [], [], timeout_s)
    assert ready, "no line in time"
    return stream.readline()


@dataclass
class Server:
    url: str
    data: Path
    process: subprocess.Popen


class Served:
    """A running ``mosslite serve``: its first line read (the URL), then stdout and stderr
    drained into lists by threads, so a long test never stalls the server on a full
    pipe, and a test can look for a log line."""

    def __init__(self, cli: CLI, *args: str) -> None:
        self.process = cli.popen("serve", *args)
        first = read_line(self.process.stdout)
        if not first.startswith("mosslite serving http://"):
            self.process.kill()
            raise AssertionError(first + self.process.stderr.read())
        self.url = first.split()[2]
        self.stdout: list[str] = [first]
        self.stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._drain, args=(stream, sink), daemon=True)
            for stream, sink in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _drain(stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    def wait_for(self, text: str, *, stream: str = "stdout", timeout_s: float = 30.0) -> str:
        """The first line of ``stream`` holding ``text``, once it has been printed."""
        lines = self.stdout if stream == "stdout" else self.stderr
        deadline = time.monotonic() + timeout_s
        while True:
            found = [line for line in list(lines) if text in line]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"no {text!r} on {stream}: {lines}"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send ``sig``, wait for the exit and the last output; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout_s)
        for thread in self._threads:
            thread.join(timeout_s)
        return code

