"""Where commands get their credentials and server, and ``mosslite init``, which writes them.

Each of project id, project key and URL comes from, first to last: its flag,
its environment variable (MOSS_PROJECT_ID, MOSS_PROJECT_KEY, MOSS_URL), the
config file written by ``mosslite init`` ($MOSSLITE_CONFIG, else
``config.json`` in $MOSSLITE_HOME or ~/.mosslite). No URL anywhere means the
embedded service under $MOSSLITE_HOME. ``resolve`` is that rule, written once:
commands use its values and ``mosslite info`` shows where each came from.

``init`` for the embedded service never writes a key the service would refuse
(issue #12): a project that already has keys there (made by the Python API, say)
gets a new key of its own, added to the service; a given key must be one of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource
from rich.markup import escape

from .._fs import atomic_path
from ..client import MossClient
from ..client.embedded import default_home
from ..errors import UnauthorizedError
from ..validation import validate_name
from .help import Command
from .home import add_embedded_key, embedded_data_dir, key_status
from .output import emit_json, fields, json_option, say

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
    #: The credential flags this command was given, for a command it suggests to run next
    #: (``mosslite job status ...``): the same service and project, and no key written out.
    flags: str = ""

    def client(self) -> MossClient:
        return MossClient(self.project_id, self.project_key, url=self.url)

    def run(self, body: Callable[[MossClient], Awaitable[T]]) -> T:
        """Run ``body(client)`` on a fresh event loop, closing the client after."""

        async def main() -> T:
            async with self.client() as client:
                return await body(client)

        try:
            return asyncio.run(main())
        except asyncio.CancelledError as exc:
            # Only Ctrl-C cancels this main task. Python 3.11's asyncio.run lets it out as
            # a CancelledError, not a KeyboardInterrupt, when the signal lands between
            # installing its handler and zeroing its interrupt count (asyncio/runners.py):
            # the suite saw it once, as a traceback and status 1 instead of 130.
            raise KeyboardInterrupt from exc


@dataclass(frozen=True)
class Setting:
    """A credential's value and where it came from: ``flag --url``, ``environment
    MOSS_URL``, ``config file PATH`` or ``not set``."""

    value: str | None
    source: str


#: Each credential's flag and environment variable, in the order commands take them.
CREDENTIALS = {"project_id": ("--project-id", PROJECT_ENV), "project_key": ("--project-key", KEY_ENV), "url": ("--url", URL_ENV)}


def resolve(given: dict[str, str | None]) -> dict[str, Setting]:
    """The credentials in force: each of ``given`` (the options' values, from a flag or
    its environment variable, as click read them) or else the config file's."""
    ctx = click.get_current_context()
    config = read_config()
    settings = {}
    for name, (flag, env) in CREDENTIALS.items():
        value = given.get(name) or None
        if value is not None:
            source = ctx.get_parameter_source(name)
            where = f"environment {env}" if source == ParameterSource.ENVIRONMENT else f"flag {flag}"
            settings[name] = Setting(value, where)
        elif config.get(name):
            settings[name] = Setting(config[name], f"config file {config_path()}")
        else:
            settings[name] = Setting(None, "not set")
    return settings


def credential_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds --project-id, --project-key and --url, passed to the command as they are
    (None when not given); ``resolve`` completes them from the config file."""
    options = [
        click.option("--url", envvar=URL_ENV, help=f"A mosslite server (default: ${URL_ENV}, the config file, else embedded)."),
        click.option("--project-key", envvar=KEY_ENV, help=f"Project key (default: ${KEY_ENV}, else the config file)."),
        click.option("--project-id", envvar=PROJECT_ENV, help=f"Project id (default: ${PROJECT_ENV}, else the config file)."),
    ]
    for option in options:
        command = option(command)
    return command


def client_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds --project-id, --project-key and --url; the command receives ``creds``.
    Put it last (innermost), under the command's own options."""

    def wrapper(project_id: str | None, project_key: str | None, url: str | None, **kwargs: Any) -> Any:
        settings = resolve({"project_id": project_id, "project_key": project_key, "url": url})
        project_id, project_key = settings["project_id"].value, settings["project_key"].value
        if not project_id or not project_key:
            raise click.ClickException(
                f"no credentials: run `mosslite init`, or set {PROJECT_ENV} and {KEY_ENV}, or pass --project-id and --project-key"
            )
        again = " ".join(
            f"{CREDENTIALS[name][0]} {'KEY' if name == 'project_key' else shlex.quote(setting.value)}"
            for name, setting in settings.items()
            if setting.source.startswith("flag")
        )
        return command(creds=Credentials(project_id, project_key, settings["url"].value, again), **kwargs)

    wrapper.__name__ = command.__name__
    wrapper.__doc__ = command.__doc__
    return credential_options(wrapper)


@click.command(cls=Command)
@click.option("--project-id", default="default", show_default=True, help="The project to use.")
@click.option(
    "--project-key",
    help="Its key. With no --url and none given, a new one is made: adopted by the embedded service "
    "on first use, or added to the project there if it already has keys.",
)
@click.option("--url", help="A mosslite server to use instead of the embedded service.")
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@json_option
def init(project_id: str, project_key: str | None, url: str | None, force: bool, as_json: bool) -> None:
    """Write the config file that later commands read their credentials from.

    The file is $MOSSLITE_CONFIG, else config.json in $MOSSLITE_HOME
    (~/.mosslite); it is readable by you only. Flags and MOSS_* environment
    variables still win over it. For the embedded service ($MOSSLITE_HOME/service)
    the key written is one it accepts: a project that already has keys there
    (made by the Python API, say) gets a new key added, and a --project-key
    it does not know is refused. `mosslite info` shows what is in force.

    \b
    Example:
        mosslite init --project-id my-project --url http://127.0.0.1:8700 --project-key "$KEY"
    """
    validate_name(project_id, what="project")
    path = config_path()
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    if url:
        if not project_key:
            raise click.ClickException("a server needs --project-key (make one there: mosslite keys create)")
        key_state = "given"
    else:
        project_key, key_state = _embedded_key(project_id, project_key)
    config = {"project_id": project_id, "project_key": project_key, **({"url": url} if url else {})}
    with atomic_path(path) as temp:
        temp.touch(mode=0o600)  # the key is a secret: never readable by others, not even briefly
        temp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    shown = {"config": str(path), "project_id": project_id, "url": url or "embedded", "key": key_state}
    if not url:
        shown["data"] = str(embedded_data_dir())
    if as_json:
        emit_json(shown)
    else:
        fields(shown, title="mosslite init")


def _embedded_key(project_id: str, given: str | None) -> tuple[str, str]:
    """The key to write for the embedded service, and how it was had: ``given`` (one
    the service knows for the project, or any for a project it has no key for yet),
    ``new`` (minted; the service adopts it on first use) or ``added`` (the project has
    keys, which are stored only as hashes: a new one is added beside them)."""
    status, count = key_status(project_id, given or "")
    data = embedded_data_dir()
    if given:
        if status == "invalid":
            raise UnauthorizedError(
                f"the key is not valid for project {project_id!r}: the embedded service ({data}) has {count} key(s) for it",
                project=project_id,
                hint="pass one of them, or leave --project-key out and init adds a new key for the project",
            )
        return given, "given"
    if status == "new":
        return "mk_" + secrets.token_urlsafe(24), "new"
    key = add_embedded_key(project_id)
    say(escape(f"project {project_id!r} already has {count} key(s) in the embedded service ({data}); they keep working, and a new one was added for this config"))
    return key, "added"
