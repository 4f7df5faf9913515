"""Help that ends with its example, after the options.

click prints a command's docstring before its options, so an example closing
the docstring would sit in the middle of ``--help``, above a screen of flags.
These classes move the docstring's closing ``Example:`` block into the
command's epilog, which click prints last. The example stays in the
docstring, next to the code it shows, and is written once. Example::

    @click.command(cls=Command)
    def query(...) -> None:
        \"\"\"Query index NAME for TEXT.

        \\b
        Example:
            mosslite query faq "refunds"
        \"\"\"
"""

from __future__ import annotations

import inspect
from typing import Any

import click

#: Where a docstring's example starts: click's "do not rewrap" marker, then the title.
EXAMPLE_MARK = "\b\nExample:"


def split_example(help: str | None) -> tuple[str | None, str | None]:
    """``help`` as (text before the example, the example block); no example: (help, None)."""
    if not help:
        return help, None
    head, mark, example = inspect.cleandoc(help).partition(EXAMPLE_MARK)
    if not mark:
        return help, None
    return head.rstrip(), mark + example


class _ExampleLast:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("epilog") is None:
            kwargs["help"], kwargs["epilog"] = split_example(kwargs.get("help"))
        super().__init__(*args, **kwargs)


class Command(_ExampleLast, click.Command):
    """A command whose ``--help`` ends with the example from its docstring."""


class Group(_ExampleLast, click.Group):
    """A group whose ``--help`` ends with its example; its subcommands and
    subgroups (``@group.command()``, ``@group.group()``) are made the same way."""

    command_class = Command
    group_class = type  # subgroups are of this group's own class


__all__ = ["EXAMPLE_MARK", "Command", "Group", "split_example"]
