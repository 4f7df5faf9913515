"""Every command has help ending with an example and is mentioned in the README
(cf. sqlite-utils' tests/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mosslite.cli import cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if command.hidden:  # an old name kept working (``sync``), not documented
            continue
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(commands(command, (*prefix, name)))
    return found


ALL = commands()


def test_the_issue_s_commands_exist() -> None:
    expected = {
        ("init",), ("serve",), ("keys", "create"), ("keys", "list"),
        ("index", "create"), ("index", "list"), ("index", "get"), ("index", "delete"), ("index", "inspect"),
        ("doc", "add"), ("doc", "delete"), ("doc", "get"), ("query",), ("job", "status"), ("mirror",),
    }  # fmt: skip
    assert expected <= set(ALL)


@pytest.mark.parametrize("path", [(), *ALL], ids=lambda p: " ".join(p) or "mosslite")
def test_help_ends_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    _, options, after = result.output.partition("\nOptions:")
    assert options, f"{path}: help lists the options"
    paragraphs = [p.strip() for p in after.strip().split("\n\n")]
    assert paragraphs[-1].startswith("Example:"), f"{path}: help must end with an example, after the options"
    assert result.output.count("Example:") == 1
    example = paragraphs[-1].splitlines()[1].strip()
    assert example.startswith("mosslite " + " ".join(path)) or example.startswith("export") or not path


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p))
def test_every_command_is_in_the_readme(path: tuple[str, ...]) -> None:
    assert re.search(r"mosslite " + r"\s+".join(map(re.escape, path)) + r"\b", README), f"README lacks `mosslite {' '.join(path)}`"
