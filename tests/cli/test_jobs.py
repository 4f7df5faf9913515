"""Jobs you can let go of (issue #12): the job id on stderr the moment it is submitted,
and Ctrl-C during ``--wait`` says the job carries on and how to follow it, exit 130.

A job is held mid-build by the test model ``gated-hashed`` (tests/plugins), which
embeds only once the test creates its gate file: no sleeping, no timing.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mosslite.cli.config import Credentials
from mosslite_cli_helpers import CLI, MODEL, WITH_TEST_MODELS, read_line

GATED = "gated-hashed"
SUBMITTED = re.compile(r"job (job_[0-9a-f]+) submitted")


def submitted_job(stderr: str) -> str:
    found = SUBMITTED.search(stderr)
    assert found, stderr
    return found.group(1)


@pytest.mark.parametrize("wait", [False, True])
def test_every_submitting_command_says_its_job_id_on_stderr(cli: CLI, faq_file: Path, wait: bool) -> None:
    flag = ("--wait",) if wait else ()
    commands = [
        ("index", "create", "faq", "-f", str(faq_file), "--model", MODEL),
        ("doc", "add", "faq", "-f", str(faq_file), "--upsert"),
        ("doc", "delete", "faq", "--ids", "r1"),
    ]
    for command in commands:
        done = cli.ok(*command, *flag, "--json")
        result = json.loads(done.stdout)  # stdout: one JSON document, the job id is on stderr
        job_id = submitted_job(done.stderr)
        assert result["job_id"] == job_id
        if wait:
            assert result["status"] == "completed" and "Ctrl-C stops the waiting, not the job" in done.stderr
        else:
            assert f"follow it with: mosslite job status {job_id} --wait" in done.stderr
            assert cli.json("job", "status", job_id, "--wait")["status"] == "completed"


@pytest.fixture
def gated_server(tmp_path: Path, plugin_env: dict[str, str]) -> Iterator[tuple[str, tuple[str, ...]]]:
    """A real `mosslite serve` that knows the gated model: (url, credential flags)."""
    cli = CLI(tmp_path, plugin_env)
    data = tmp_path / "srv"
    process = cli.popen("serve", "--data", str(data), "--port", "0", "--plugin", "mosslite_test_models")
    try:
        line = read_line(process.stdout)
        assert line.startswith("mosslite serving http://"), line
        url = line.split()[2]
        key = cli.ok("keys", "create", "--project", "p", "--data", str(data)).stdout.strip()
        yield url, ("--url", url, "--project-id", "p", "--project-key", key)
    finally:
        process.terminate()
        process.wait(30)


def test_ctrl_c_during_wait_lets_go_of_a_server_job(
    tmp_path: Path, plugin_env: dict[str, str], gated_server: tuple[str, tuple[str, ...]], faq_file: Path, gate: Path
) -> None:
    url, flags = gated_server
    cli = CLI(tmp_path, plugin_env)
    waiting = cli.popen("index", "create", "faq", "-f", str(faq_file), "--model", GATED, "--wait", *flags)
    job_id = submitted_job(read_line(waiting.stderr))  # said before any waiting
    waiting.send_signal(signal.SIGINT)
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 130, err
    assert out == "" and "Aborted" not in err
    follow = f"mosslite job status {job_id} --wait --project-id p --project-key KEY --url {url}"
    assert f"stopped waiting; job {job_id} carries on at {url}: follow it with: {follow}\n" in err
    # The job did carry on: still building (its gate is shut), then done once it opens;
    # the command it names reaches the same server and project (the key, not written out, put back).
    assert cli.json("job", "status", job_id, *flags)["status"] in ("pending_upload", "uploading", "building")
    gate.touch()
    again = [flags[-1] if word == "KEY" else word for word in follow.split()[1:]]
    job = cli.json(*again)
    assert (job["status"], job["version"]) == ("completed", 1)
    assert cli.json("index", "get", "faq", *flags)["doc_count"] == 4


def test_ctrl_c_during_job_status_wait_also_lets_go(
    tmp_path: Path, plugin_env: dict[str, str], gated_server: tuple[str, tuple[str, ...]], faq_file: Path, gate: Path
) -> None:
    _, flags = gated_server
    cli = CLI(tmp_path, plugin_env)
    job_id = cli.json("index", "create", "faq", "-f", str(faq_file), "--model", GATED, *flags)["job_id"]
    following = cli.popen("job", "status", job_id, "--wait", *flags)
    assert read_line(following.stderr).startswith(f"waiting for job {job_id}: Ctrl-C stops the waiting, not the job")
    following.send_signal(signal.SIGINT)  # (the job is held at its gate: this lands while waiting)
    out, err = following.communicate(timeout=60)
    assert following.returncode == 130 and out == "" and "Aborted" not in err
    assert f"mosslite job status {job_id} --wait" in err
    gate.touch()
    assert cli.json("job", "status", job_id, "--wait", *flags)["status"] == "completed"


def test_ctrl_c_twice_on_the_embedded_service_exits_and_the_next_command_resumes_the_job(
    tmp_path: Path, plugin_env: dict[str, str], faq_file: Path, gate: Path
) -> None:
    """The embedded service runs the job in the CLI's own process: the first Ctrl-C says so,
    the second exits at once, and the next command on the same home resumes the job."""
    env = {**plugin_env, "MOSS_PROJECT_ID": "p", "MOSS_PROJECT_KEY": "k"}

    def command(*args: str) -> list[str]:
        return [sys.executable, "-c", WITH_TEST_MODELS, *args]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(command(*args), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    # Unbuffered bytes: a buffered reader would take both lines of a message at once,
    # and select() would then wait for a second line that already arrived.
    waiting = subprocess.Popen(
        command("index", "create", "faq", "-f", str(faq_file), "--model", GATED, "--wait"),
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
    )  # fmt: skip

    def said() -> str:
        return read_line(waiting.stderr).decode()

    job_id = submitted_job(said())
    for _ in range(200):  # until the job is building (held at its gate), so that it is resumed, not failed
        if json.loads(run("job", "status", job_id, "--json").stdout)["status"] == "building":
            break
    waiting.send_signal(signal.SIGINT)
    assert f"job {job_id} carries on: follow it with: mosslite job status {job_id} --wait" in said()
    assert "Ctrl-C again exits now" in said()
    assert waiting.poll() is None  # it lets the job finish before exiting...
    waiting.send_signal(signal.SIGINT)  # ...unless told again
    waiting.communicate(timeout=60)
    assert waiting.returncode == 130
    gate.touch()
    done = run("job", "status", job_id, "--wait", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "completed"
    assert json.loads(run("index", "get", "faq", "--json").stdout)["doc_count"] == 4


def test_a_second_mosslite_on_the_same_home_leaves_a_running_build_alone(
    tmp_path: Path, plugin_env: dict[str, str], faq_file: Path, gate: Path
) -> None:
    """Following a job from another terminal (`job status`, as the Ctrl-C message says)
    opens the embedded service there too; its start-up clean-up removed the build's file
    in progress, and the job failed with FileNotFoundError."""
    env = {**plugin_env, "MOSS_PROJECT_ID": "p", "MOSS_PROJECT_KEY": "k"}

    def command(*args: str) -> list[str]:
        return [sys.executable, "-c", WITH_TEST_MODELS, *args]

    def status(job_id: str) -> dict[str, str]:
        done = subprocess.run(command("job", "status", job_id, "--json"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        return json.loads(done.stdout)

    building = subprocess.Popen(
        command("index", "create", "faq", "-f", str(faq_file), "--model", GATED, "--wait", "--json"),
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
    )  # fmt: skip
    job_id = submitted_job(read_line(building.stderr).decode())
    for _ in range(200):  # each look is another process opening the same service
        if status(job_id)["current_phase"] == "generating_embeddings":  # (its file in progress exists)
            break
    assert status(job_id)["status"] == "building"
    gate.touch()
    out, err = building.communicate(timeout=120)
    assert building.returncode == 0, err
    assert json.loads(out)["status"] == "completed"


def test_a_cancelled_main_task_reads_as_ctrl_c() -> None:
    """Python 3.11's asyncio.run can let a Ctrl-C out as a CancelledError (the signal
    between its handler's installation and its count's reset): the wait then still
    ends as a Ctrl-C does. Here the task cancels itself, as that handler would."""

    async def cancelled(client: object) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(1)

    with pytest.raises(KeyboardInterrupt):
        Credentials("p", "k", url="http://127.0.0.1:9").run(cancelled)
