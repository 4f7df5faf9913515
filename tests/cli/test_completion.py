"""Shell completion works as the README says: its bash line, run in bash, completes
commands and options; its zsh and fish lines make their scripts."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mosslite_cli_helpers import base_env

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def readme_lines() -> dict[str, str]:
    """The README's completion line for each shell, comments dropped."""
    (block,) = [b for b in re.findall(r"```sh\n(.*?)```", README, re.S) if "_MOSSLITE_COMPLETE" in b]
    lines = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    return {shell: next(line for line in lines if f"={shell}_source" in line) for shell in ("bash", "zsh", "fish")}


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """A ``mosslite`` on PATH, as after ``source .venv/bin/activate`` (this checkout's code)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    command = bin_dir / "mosslite"
    command.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m mosslite "$@"\n')
    command.chmod(0o755)
    env = base_env(tmp_path / "home")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def complete(env: dict[str, str], *words: str) -> list[str]:
    """What bash offers on Tab after ``words`` (the last one being typed), with the
    README's line in force."""
    script = "\n".join(
        [
            readme_lines()["bash"],
            f"COMP_WORDS=({shlex.join(words)}); COMP_CWORD={len(words) - 1}",
            "_mosslite_completion mosslite",
            'printf "%s\\n" "${COMPREPLY[@]}"',
        ]
    )
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_readme_bash_line_completes_commands_and_options(shell_env: dict[str, str]) -> None:
    assert complete(shell_env, "mosslite", "ind") == ["index"]
    assert complete(shell_env, "mosslite", "index", "cr") == ["create"]
    assert complete(shell_env, "mosslite", "query", "faq", "--to") == ["--top-k"]
    assert {"init", "query", "serve", "keys"} <= set(complete(shell_env, "mosslite", ""))


SCRIPT_MARKS = [("zsh", "#compdef mosslite"), ("fish", "complete --no-files --command mosslite")]


@pytest.mark.parametrize(("shell", "mark"), SCRIPT_MARKS)
def test_the_readme_zsh_and_fish_lines_make_their_scripts(shell_env: dict[str, str], shell: str, mark: str) -> None:
    # No zsh or fish here to source them: run the part that prints the script.
    (making,) = re.findall(r"_MOSSLITE_COMPLETE=\w+ mosslite", readme_lines()[shell])
    done = subprocess.run(["bash", "-c", making], env=shell_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and mark in done.stdout, done.stderr
