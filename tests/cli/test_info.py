"""One home, one truth (issue #12): `mosslite info` names every folder and where each
credential came from; `init` and `keys` use the embedded service's own data folder,
so the Python tour and the CLI tour work in one home."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mosslite_cli_helpers import CLI, FAQ, MODEL, base_env

#: The README's Python tour in short: the embedded service adopts "my-key" for my-project.
PYTHON_TOUR = f"""
from mosslite import DocumentInfo, SyncMossClient
client = SyncMossClient("my-project", "my-key")
docs = [DocumentInfo(id=d["id"], text=d["text"]) for d in {FAQ!r}]
client.wait_for_job(client.create_index("faq", docs, {MODEL!r}).job_id)
print(sorted(i.name for i in client.list_indexes()))
client.close()
"""

STILL_WORKS = """
from mosslite import SyncMossClient
client = SyncMossClient("my-project", "my-key")
print(sorted(i.name for i in client.list_indexes()))
client.close()
"""


def python(cli: CLI, code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_info_names_the_folders_and_where_each_credential_came_from(tmp_path: Path, faq_file: Path) -> None:
    home = tmp_path / "home"
    cli = CLI(tmp_path, base_env(home))
    found = cli.json("info")
    assert found["home"] == {"path": str(home), "from": "environment MOSSLITE_HOME"}
    assert found["data"] == {"path": str(home / "service"), "exists": False}
    assert found["config"] == {"path": str(home / "config.json"), "exists": False, "from": "default"}
    assert found["service"] == "embedded"
    assert {k: v["from"] for k, v in found["credentials"].items()} == {
        "project_id": "not set", "project_key": "not set", "url": "not set: the embedded service",
    }  # fmt: skip
    assert "no credentials" in found["key_check"]
    assert not home.exists()  # it looked, and made nothing

    by_env = cli.json("info", MOSS_PROJECT_ID="proj", MOSS_PROJECT_KEY="key-number-1")
    assert by_env["credentials"]["project_id"] == {"value": "proj", "from": "environment MOSS_PROJECT_ID"}
    assert by_env["credentials"]["project_key"]["from"] == "environment MOSS_PROJECT_KEY"
    assert "key-number-1" not in json.dumps(by_env)  # a key is shown shortened, never whole
    assert by_env["cache"] == str(home / "cache" / "embedded" / "proj") and by_env["sessions"] == str(home / "sessions" / "proj")
    assert "first use adopts this one" in by_env["key_check"]
    by_flag = cli.json("info", "--project-id", "other", MOSS_PROJECT_ID="proj")
    assert by_flag["credentials"]["project_id"] == {"value": "other", "from": "flag --project-id"}

    made = cli.json("init", "--project-id", "proj")
    assert (made["key"], made["data"]) == ("new", str(home / "service"))
    cli.ok("index", "create", "faq", "-f", str(faq_file), "--model", MODEL, "--wait")
    found = cli.json("info")
    assert found["credentials"]["project_key"]["from"] == f"config file {home / 'config.json'}"
    assert found["data"]["exists"] and found["key_check"] == "valid for project 'proj' in the embedded service"
    # The cache folder it names is where the client keeps the files it loads.
    assert Path(cli.json("index", "inspect", "faq")["path"]).parent.parent == Path(found["cache"])

    shown = cli.ok("info").stdout
    assert str(home / "service") in shown and "environment MOSSLITE_HOME" in shown and "valid for project" in shown
    bad = cli.json("info", "--project-key", "wrong")
    assert bad["key_check"].startswith("NOT valid") and bad["credentials"]["project_key"]["from"] == "flag --project-key"
    url = cli.json("info", MOSS_URL="http://127.0.0.1:9")
    assert url["service"] == "http://127.0.0.1:9" and url["credentials"]["url"]["from"] == "environment MOSS_URL"
    assert url["key_check"].startswith("not checked")


def test_the_python_tour_then_the_cli_tour_in_one_home(tmp_path: Path) -> None:
    """The newcomer's hit: after the Python tour, `mosslite init` wrote a key the
    embedded service refused, and every command failed."""
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    assert python(cli, PYTHON_TOUR) == "['faq']"

    done = cli("init", "--project-id", "my-project", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["key"] == "added" and "already has 1 key(s)" in done.stderr
    assert [i["name"] for i in cli.json("index", "list")] == ["faq"]
    assert cli.json("info")["key_check"] == "valid for project 'my-project' in the embedded service"
    assert python(cli, STILL_WORKS) == "['faq']"  # the tour's key still opens it

    refused = cli.fails("init", "--force", "--project-id", "my-project", "--project-key", "not-my-key")
    assert "not valid for project 'my-project'" in refused and "hint:" in refused
    assert cli.json("init", "--force", "--project-id", "my-project", "--project-key", "my-key")["key"] == "given"
    assert [i["name"] for i in cli.json("index", "list")] == ["faq"]

    # keys default to the same data folder: a key made there opens the same indexes.
    assert len(cli.ok("keys", "list", "--project", "my-project").stdout.splitlines()) == 2
    key = cli.ok("keys", "create", "--project", "my-project").stdout.strip()
    assert [i["name"] for i in cli.json("index", "list", MOSS_PROJECT_KEY=key)] == ["faq"]


def test_the_cli_tour_then_the_python_tour_says_which_key_to_use(tmp_path: Path, faq_file: Path) -> None:
    """The other order: `mosslite init` made the project's key, so the tour's "my-key" is
    refused; the error says where the service's keys are and how to add one."""
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    cli.ok("init", "--project-id", "my-project")
    cli.ok("index", "create", "faq", "-f", str(faq_file), "--model", MODEL, "--wait")
    done = subprocess.run([sys.executable, "-c", STILL_WORKS], cwd=tmp_path, env=cli.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "UnauthorizedError: the key is not valid for project 'my-project'" in done.stderr
    assert str(tmp_path / "home" / "service") in done.stderr and "config.json" in done.stderr
    assert "mosslite keys create --project my-project" in done.stderr
    key = json.loads((tmp_path / "home" / "config.json").read_text())["project_key"]
    assert python(cli, STILL_WORKS.replace('"my-key"', repr(key))) == "['faq']"


def test_keys_default_to_the_embedded_data_folder_and_say_so(tmp_path: Path) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    assert "holds no service data" in cli.fails("keys", "list", "--project", "p")
    made = cli.ok("keys", "create", "--project", "p")
    assert "the embedded one" in made.stderr
    assert (tmp_path / "home" / "service" / "catalog.sqlite").is_file()
    help_text = cli.ok("keys", "create", "--help").stdout
    assert "export MOSS_PROJECT_KEY=$(mosslite keys create" in help_text and "MOSSLITE_KEY" not in help_text
