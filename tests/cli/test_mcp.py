"""``mosslite mcp`` failing to start says why in one line (the conversations are in
tests/integrations/test_mcp.py)."""

from __future__ import annotations

import socket
import subprocess
import sys

from mosslite_cli_helpers import CLI

from mosslite.integrations.mcp import is_loopback

WITHOUT_SDK = "import sys; sys.modules['mcp'] = None; sys.argv = ['mosslite', 'mcp']; from mosslite.cli import main; main()"


def test_without_the_sdk_the_hint_says_what_to_install(cli: CLI) -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_SDK], env=cli.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("Error: the MCP server needs the MCP Python SDK") and line.endswith("(hint: pip install 'mosslite[mcp]')")


def test_a_key_the_service_refuses_stops_the_start(cli: CLI, faq_index: str) -> None:
    line = cli.fails("mcp", "--project-key", "not-the-key", input="")
    assert "the key is not valid for project 'proj'" in line and "hint:" in line


def test_a_taken_port_is_one_line(cli: CLI) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        line = cli.fails("mcp", "--http", "--port", str(port), input="")
    assert line == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_stdin_closed_ends_the_server(cli: CLI, faq_index: str) -> None:
    done = cli.ok("mcp", input="")
    assert done.stdout == ""  # stdout is the protocol: nothing else is written there
    assert "mosslite mcp: project 'proj' on the embedded service" in done.stderr and "(1 index), read only" in done.stderr


def test_a_host_beyond_loopback_needs_allow_remote(cli: CLI) -> None:
    for host in ("0.0.0.0", "::", "example.com"):
        line = cli.fails("mcp", "--http", "--host", host, "--port", "0", input="")
        assert line.startswith(f"Error: refusing to serve MCP over HTTP on {host}") and "no authentication" in line
        assert "anyone who reaches the port" in line and "--allow-writes" in line and "--allow-remote" in line
    assert "--allow-remote" in cli.ok("mcp", "--help").stdout


def test_loopback_hosts() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.2", "example.com", "localhost.example.com"):
        assert not is_loopback(host), host
