"""Where commands get their credentials and server, and ``mosslite init``, which writes them.

Each of project id, project key and URL comes from, first to last: its flag,
its environment variable (MOSS_PROJECT_ID, MOSS_PROJECT_KEY, MOSS_URL), the
config file written by ``mosslite init`` ($MOSSLITE_CONFIG, else
``config.json`` in $MOSSLITE_HOME or ~/.mosslite). No URL anywhere means the
embedded service under $MOSSLITE_HOME.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from .._fs import atomic_path
from ..client import MossClient
from ..client.embedded import default_home
from ..validation import validate_name
from .help import Command
from .output import emit_json, fields, json_option

T = TypeVar("T")

PROJECT_ENV = "MOSS_PROJECT_ID"
KEY_ENV = "MOSS_PROJECT_KEY"
URL_ENV = "MOSS_URL"
CONFIG_ENV = "MOSSLITE_CONFIG"
CONFIG_NAME = "config.json"


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or default_home() / CONFIG_NAME).expanduser()


def read_config() -> dict[str, str]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # malformed, not UTF-8, or JSON Python cannot hold (issue #8)
        reason = str(exc).split(";")[0] or type(exc).__name__
        raise click.ClickException(f"{path} is not valid JSON ({reason}); run `mosslite init --force`") from exc
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Credentials:
    project_id: str
    project_key: str
    url: str | None

    def client(self) -> MossClient:
        return MossClient(self.project_id, self.project_key, url=self.url)

    def run(self, body: Callable[[MossClient], Awaitable[T]]) -> T:
        """Run ``body(client)`` on a fresh event loop, closing the client after."""

        async def main() -> T:
            async with self.client() as client:
                return await body(client)

        return asyncio.run(main())


def client_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds --project-id, --project-key and --url; the command receives ``creds``.
    Put it last (innermost), under the command's own options."""

    options = [
        click.option("--url", envvar=URL_ENV, help=f"A mosslite server (default: ${URL_ENV}, the config file, else embedded)."),
        click.option("--project-key", envvar=KEY_ENV, help=f"Project key (default: ${KEY_ENV}, else the config file)."),
        click.option("--project-id", envvar=PROJECT_ENV, help=f"Project id (default: ${PROJECT_ENV}, else the config file)."),
    ]

    def wrapper(project_id: str | None, project_key: str | None, url: str | None, **kwargs: Any) -> Any:
        config = read_config()
        project_id = project_id or config.get("project_id")
        project_key = project_key or config.get("project_key")
        url = url or config.get("url") or None
        if not project_id or not project_key:
            raise click.ClickException(
                f"no credentials: run `mosslite init`, or set {PROJECT_ENV} and {KEY_ENV}, or pass --project-id and --project-key"
            )
        return command(creds=Credentials(project_id, project_key, url), **kwargs)

    wrapper.__name__ = command.__name__
    wrapper.__doc__ = command.__doc__
    for option in options:
        wrapper = option(wrapper)
    return wrapper


@click.command(cls=Command)
@click.option("--project-id", default="default", show_default=True, help="The project to use.")
@click.option("--project-key", help="Its key; with no --url a new one is made (the embedded service adopts it).")
@click.option("--url", help="A mosslite server to use instead of the embedded service.")
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@json_option
def init(project_id: str, project_key: str | None, url: str | None, force: bool, as_json: bool) -> None:
    """Write the config file that later commands read their credentials from.

    The file is $MOSSLITE_CONFIG, else config.json in $MOSSLITE_HOME
    (~/.mosslite); it is readable by you only. Flags and MOSS_* environment
    variables still win over it.

    \b
    Example:
        mosslite init --project-id my-project --url http://127.0.0.1:8700 --project-key "$KEY"
    """
    validate_name(project_id, what="project")
    path = config_path()
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    if not project_key:
        if url:
            raise click.ClickException("a server needs --project-key (make one there: mosslite keys create)")
        project_key = "mk_" + secrets.token_urlsafe(24)
    config = {"project_id": project_id, "project_key": project_key, **({"url": url} if url else {})}
    with atomic_path(path) as temp:
        temp.touch(mode=0o600)  # the key is a secret: never readable by others, not even briefly
        temp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    shown = {"config": str(path), "project_id": project_id, "url": url or "embedded"}
    if as_json:
        emit_json(shown)
    else:
        fields(shown, title="mosslite init")
