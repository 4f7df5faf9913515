"""``mosslite query NAME -i`` (cli/interactive.py), typed at in a real pseudo-terminal.

Each test starts ``python -m mosslite query ... -i`` on a pty that is its
controlling terminal, so Ctrl-C is a real SIGINT, readline really edits, and
what the test reads is what a person would see (minus colours).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from mosslite_cli_helpers import CLI, MODEL, Server, base_env

#: Makes the pty the child's controlling terminal (Popen's fork + exec is safe in a
#: threaded pytest, where pty.fork() is not), then becomes ``python -m mosslite`` with
#: SIGINT as a terminal gives it: neither ignored nor blocked, whatever the test process
#: (or a test before this one, in it) made of SIGINT, which a child would inherit.
ON_ITS_OWN_TERMINAL = (
    "import fcntl, os, signal, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); signal.pthread_sigmask(signal.SIG_SETMASK, set()); "
    "os.execv(sys.executable, [sys.executable, '-m', 'mosslite', *sys.argv[1:]])"
)
#: Colours, cursor moves and modes (readline's bracketed paste): not what a person reads.
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>]")
#: A safety net for a broken build, not a measurement: every wait ends as soon as the text is there.
PATIENCE_S = 60.0
CTRL_C, CTRL_D, UP = "\x03", "\x04", "\x1b[A"
GIFT = {"id": "g1", "text": "Gift cards never expire.", "metadata": {"category": "payments"}}


class Terminal:
    """A process on a pseudo-terminal: ``send`` types, ``expect`` reads the screen."""

    def __init__(self, cli: CLI, *args: str) -> None:
        controller, worker = pty.openpty()
        fcntl.ioctl(worker, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-c", ON_ITS_OWN_TERMINAL, *args],
            cwd=cli.cwd, env={**cli.env, "TERM": "xterm"}, stdin=worker, stdout=worker, stderr=worker,
            start_new_session=True,
        )  # fmt: skip
        os.close(worker)
        self.fd = controller
        self.shown = b""
        self.screen = ""  # everything shown so far, escapes removed, a carriage return a new line
        self.read_to = 0  # where the next expect starts looking

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def expect(self, pattern: str) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) shows after what earlier expects read."""
        found = re.compile(pattern, re.M)
        while True:
            match = found.search(self.screen, self.read_to)
            if match:
                self.read_to = match.end()
                return match
            assert self._read(), f"never showed {pattern!r}; the screen:\n{self.screen}"

    def _read(self) -> bool:
        ready, _, _ = select.select([self.fd], [], [], PATIENCE_S)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the process closed the terminal
            return False
        self.shown += chunk  # cleaned whole each time: a chunk may end inside an escape
        self.screen = ESCAPES.sub("", self.shown.decode(errors="replace")).replace("\r\n", "\n").replace("\r", "\n")
        return bool(chunk)

    def wait(self) -> int:
        while self._read():  # drain, so the process never blocks on a full terminal
            pass
        return self.process.wait(PATIENCE_S)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(PATIENCE_S)
        os.close(self.fd)


@pytest.fixture
def terminals():
    opened: list[Terminal] = []

    def open_terminal(cli: CLI, *args: str) -> Terminal:
        opened.append(Terminal(cli, *args))
        return opened[-1]

    yield open_terminal
    for terminal in opened:
        terminal.close()


def publish_gift(cli: CLI, tmp_path: Path, *url: str) -> None:
    """Another process adds a document: version 2."""
    more = tmp_path / "gift.jsonl"
    more.write_text(json.dumps(GIFT) + "\n")
    cli.ok("doc", "add", "faq", "-f", str(more), "--wait", *url)


def ask_until(terminal: Terminal, text: str, answer: str) -> None:
    """Ask ``text`` until an answer shows ``answer``: a new version arrives by itself, at
    a moment the test cannot know, so the first answers may still come from the old one."""
    for _ in range(200):
        if re.search(answer, shown_for(terminal, text)):
            return
        time.sleep(0.25)  # give the refresh a moment before asking again
    raise AssertionError(f"{answer!r} never served; the screen:\n{terminal.screen}")


def shown_for(terminal: Terminal, line: str) -> str:
    """Type ``line`` at the prompt; what the shell showed before its next prompt.

    Every key goes to a prompt on screen, as a person's would: readline holds the
    terminal only then, and a Ctrl-D typed ahead, while an answer prints, reaches
    the terminal's own line editing instead and is lost."""
    start = terminal.read_to
    terminal.send(line + "\r")
    terminal.expect(r"faq> ")
    return terminal.screen[start : terminal.read_to]


def test_a_session_in_a_terminal(cli: CLI, faq_index: str, tmp_path: Path, terminals) -> None:
    shell = terminals(cli, "query", "faq", "-i", "--top-k", "1")
    banner = shell.expect(r"^faq: version 1, 4 documents \(hashed-ngrams-256\).*\n.*:help.*:q.*$").group(0)
    assert "new versions load as they are published" in banner

    shell.expect(r"faq> ")
    shell.send("refunds\r")
    shell.expect(r"\br1\b")
    shell.expect(r"^faq version 1$")
    shell.expect(r"faq> ")

    listing = shown_for(shell, ":help")
    assert re.search(r"(?s)TEXT .*:info.*:q .*Ctrl-C clears the line", listing)
    assert "score" not in listing  # a list of commands, not a search for ":help"
    assert f"history: {tmp_path / 'home' / 'query_history'}" in listing
    assert "unknown command :nope; :help lists the commands" in shown_for(shell, ":nope")

    # Ctrl-C drops the line typed so far, and the shell goes on: the next query is whole.
    # Every time: one that lands as readline echoes a key must not be lost (cli/prompt.py).
    for _ in range(10):
        shell.send("zzzz")
        shell.expect("zzzz")
        shell.send(CTRL_C)
        shell.expect(r"faq> ")
    shell.send("bluetooth\r")
    shell.expect(r"\ba1\b")
    shell.expect(r"^faq version 1$")
    shell.expect(r"faq> ")
    assert shell.process.poll() is None and "zzzzbluetooth" not in shell.screen

    publish_gift(cli, tmp_path)
    ask_until(shell, "gift cards", r"\bg1\b")
    assert re.search(r"^faq version 2 \(new since the last answer, which came from version 1\)$", shell.screen, re.M)

    shell.send(CTRL_D)
    assert shell.wait() == 0
    history = (tmp_path / "home" / "query_history").read_text()
    assert "refunds" in history and "bluetooth" in history and "zzzz" not in history


def test_the_history_comes_back_with_up(cli: CLI, faq_index: str, terminals) -> None:
    first = terminals(cli, "query", "faq", "-i", "--json")
    first.expect(r"faq> ")
    first.send("bluetooth headphones\r")
    assert json.loads(first.expect(r"^\{.*\}$").group(0))["query"] == "bluetooth headphones"
    first.expect(r"faq> ")
    first.send(CTRL_D)
    assert first.wait() == 0

    second = terminals(cli, "query", "faq", "-i", "--json", "--top-k", "1")
    second.expect(r"faq> ")
    second.send(UP + "\r")  # the last query of the session before, not "^[[A"
    answer = json.loads(second.expect(r"^\{.*\}$").group(0))
    assert answer["query"] == "bluetooth headphones" and answer["docs"][0]["id"] == "a1"
    second.expect(r"faq> ")
    second.send(CTRL_D)
    assert second.wait() == 0


def test_a_server_s_new_version_arrives_by_polling(server: Server, tmp_path: Path, terminals) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    key = cli.ok("keys", "create", "--project", "shell", "--data", str(server.data)).stdout.strip()
    cli.env.update(MOSS_PROJECT_ID="shell", MOSS_PROJECT_KEY=key, MOSS_URL=server.url)
    faq = tmp_path / "faq.jsonl"
    faq.write_text(json.dumps({"id": "r1", "text": "Refunds are issued within 5 days."}) + "\n")
    cli.ok("index", "create", "faq", "-f", str(faq), "--model", MODEL, "--wait")

    shell = terminals(cli, "query", "faq", "-i", "--poll-interval", "0.2")
    shell.expect(r"^faq: version 1, 1 document \(")
    shell.expect(r"faq> ")
    publish_gift(cli, tmp_path)
    ask_until(shell, "gift cards", r"\bg1\b")
    assert re.search(r"polling_interval_s\W+0\.2\b", shown_for(shell, ":info"))
    shell.send(":q\r")
    assert shell.wait() == 0


def test_piped_lines_get_answers_only(cli: CLI, faq_index: str) -> None:
    """No terminal: a query per line until :q, and nothing but the answers (no banner,
    no prompt, no version lines): what scripts had before the shell."""
    done = cli.ok("query", "faq", "-i", "--json", "--top-k", "1", input="bluetooth\n\nrefunds\n:q\nshipping\n")
    assert [json.loads(line)["query"] for line in done.stdout.splitlines()] == ["bluetooth", "refunds"]
    assert "faq>" not in done.stderr and "version" not in done.stderr and ":help" not in done.stderr
    # A : command is a command in a pipe too, never a search for ":help".
    done = cli.ok("query", "faq", "-i", "--json", "--top-k", "1", input=":help\nbluetooth\n")
    assert [json.loads(line)["query"] for line in done.stdout.splitlines()] == ["bluetooth"]
    assert ":q" in done.stderr and "quit" in done.stderr


def test_no_history_reads_and_writes_none(cli: CLI, faq_index: str, tmp_path: Path, terminals) -> None:
    history = tmp_path / "home" / "query_history"
    history.write_text("an older query\n")
    shell = terminals(cli, "query", "faq", "-i", "--json", "--no-history")
    shell.expect(r"faq> ")
    shell.send(UP + "secret refund\r")  # Up finds nothing to bring back
    assert json.loads(shell.expect(r"^\{.*\}$").group(0))["query"] == "secret refund"
    shell.expect(r"faq> ")
    assert "not kept (--no-history)" in shown_for(shell, ":help")
    shell.send(CTRL_D)
    assert shell.wait() == 0
    assert history.read_text() == "an older query\n"
