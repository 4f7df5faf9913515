"""``mosslite info``: where everything lives and which credentials are in force (issue #12).

It reads and changes nothing: no client is made (an embedded one would adopt the
key), no server is called. For the embedded service it asks the catalog whether
the key in force opens the project, which is the question behind "the key is not
valid" after mixing the Python tour and the CLI.
"""

from __future__ import annotations

import os
from typing import Any

import click

from .. import __version__
from ..client.embedded import default_home
from .config import CONFIG_ENV, Setting, config_path, credential_options, resolve
from .help import Command
from .home import cache_dir, embedded_data_dir, has_service, home_source, key_status, sessions_dir
from .output import emit_json, json_option


def shown_key(key: str | None) -> str | None:
    """A key as ``info`` shows it: enough to tell two apart, never enough to use."""
    if key is None:
        return None
    return key[: min(4, len(key) // 3)] + f"… ({len(key)} characters)"


def check_key(project_id: str | None, key: str | None, url: str | None) -> str:
    """What the service in force makes of the key, in words."""
    if url is not None:
        return f"not checked: the server at {url} knows (try `mosslite index list`)"
    if not project_id or not key:
        return "no credentials: run `mosslite init`, or set MOSS_PROJECT_ID and MOSS_PROJECT_KEY"
    status, count = key_status(project_id, key)
    if status == "valid":
        return f"valid for project {project_id!r} in the embedded service"
    if status == "new":
        return f"project {project_id!r} has no key in the embedded service yet: its first use adopts this one"
    return (
        f"NOT valid: project {project_id!r} has {count} other key(s) in the embedded service "
        f"(made elsewhere, e.g. by the Python API); use one of them, or run `mosslite init --force` to add one"
    )


def report(settings: dict[str, Setting]) -> dict[str, Any]:
    project_id, key, url = (settings[name].value for name in ("project_id", "project_key", "url"))
    data = embedded_data_dir()
    project_dir = project_id or "<project>"
    return {
        "version": __version__,
        "home": {"path": str(default_home()), "from": home_source()},
        "config": {
            "path": str(config_path()),
            "exists": config_path().is_file(),
            "from": f"environment {CONFIG_ENV}" if os.environ.get(CONFIG_ENV) else "default",
        },
        "service": url or "embedded",
        "data": {"path": str(data), "exists": has_service(data)},
        "cache": str(cache_dir(project_dir, url)),
        "sessions": str(sessions_dir(project_dir)),
        "credentials": {
            "project_id": {"value": project_id, "from": settings["project_id"].source},
            "project_key": {"value": shown_key(key), "from": settings["project_key"].source},
            "url": {"value": url, "from": settings["url"].source if url else "not set: the embedded service"},
        },
        "key_check": check_key(project_id, key, url),
    }


@click.command(cls=Command)
@json_option
@credential_options
def info(project_id: str | None, project_key: str | None, url: str | None, as_json: bool) -> None:
    """Show where mosslite keeps things and which credentials are in force.

    The home ($MOSSLITE_HOME, else ~/.mosslite) and in it: the embedded
    service's data folder, the cache of downloaded versions, the sessions and
    the config file; then the project id, key (shortened) and URL in force,
    each with where it came from (flag, environment variable, config file),
    and whether the embedded service accepts the key. Reads, changes nothing.

    \b
    Example:
        mosslite info --json
    """
    found = report(resolve({"project_id": project_id, "project_key": project_key, "url": url}))
    if as_json:
        emit_json(found)
        return
    data = found["data"]
    rows = [
        ("home", found["home"]["path"], found["home"]["from"]),
        ("config", found["config"]["path"], ("" if found["config"]["exists"] else "no file yet; ") + found["config"]["from"]),
        ("data", data["path"], "the embedded service" + ("" if data["exists"] else ", not created yet")),
        ("cache", found["cache"], f"versions downloaded from {found['service']}"),
        ("sessions", found["sessions"], "MossClient.session"),
    ]
    rows += [(name, item["value"] or "-", item["from"]) for name, item in found["credentials"].items()]
    click.echo(f"mosslite {found['version']}")
    for name, value, source in rows:  # (plain lines, not a table: a long path is never folded)
        click.echo(f"{name:<12} {value}  ({source})")
    click.echo(f"{'key check':<12} {found['key_check']}")
