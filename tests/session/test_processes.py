"""Sessions across real processes: SIGKILL during a stream of add_docs, two agents
pushing at once, and agent B resuming what agent A pushed (issue #5)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mosslite import MossClient
from mosslite.client.embedded import close_embedded_services

from ..client.conftest import Server
from .conftest import MODEL

ROOT = Path(__file__).resolve().parents[2]

STREAM = textwrap.dedent(
    """
    import asyncio, sys
    from mosslite import DocumentInfo, MossClient
    async def main(home):
        client = MossClient("p", "k", cache_path=home)
        session = await client.session("stream", model_id=sys.argv[2], auto_load_on_init=False)
        i = 0
        while True:
            await session.add_docs([DocumentInfo(id=f"d{i}", text=f"document number {i} about refunds")])
            print(f"d{i}", flush=True)  # printed only after add_docs returned
            i += 1
    asyncio.run(main(sys.argv[1]))
    """
)

AGENT = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from mosslite import DocumentInfo, MossClient
    from mosslite.client.embedded import embedded_service
    from mosslite.transport.local import LocalTransport
    async def main(spec):
        if spec["url"]:
            client = MossClient(spec["project"], spec["key"], url=spec["url"], cache_path=spec["device"])
        else:
            transport = LocalTransport(embedded_service(__import__("pathlib").Path(spec["cloud"])), spec["project"], spec["key"])
            client = MossClient(spec["project"], spec["key"], cache_path=spec["device"], transport=transport)
        session = await client.session(spec["name"], model_id=spec["model"])
        seen = sorted(d.id for d in await session.get_docs())
        await session.add_docs([DocumentInfo(id=i, text=t) for i, t in spec["add"]])
        if spec["barrier"]:
            open(spec["barrier"] + "." + spec["agent"], "w").close()
            while not os.path.exists(spec["barrier"] + ".go"):
                time.sleep(0.01)
        result = await session.push_index()
        await session.close()
        await client.close()
        print(json.dumps({"seen": seen, "overwritten": result.overwritten, "version": result.version,
                          "doc_count": result.doc_count}))
    asyncio.run(main(json.loads(sys.argv[1])))
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def test_sigkill_during_a_stream_of_add_docs_loses_nothing_that_returned(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", STREAM, str(tmp_path), MODEL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        text=True,
    )
    acknowledged = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            raise AssertionError(f"child exited early: {child.stderr.read()}")
        acknowledged.append(line.strip())
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    acknowledged += [line.strip() for line in child.stdout.read().splitlines() if line.strip()]
    assert len(acknowledged) >= 40

    async def reopen() -> None:
        client = MossClient("p", "k", cache_path=tmp_path)
        session = await client.session("stream")  # the kill released the lock
        ids = {d.id for d in await session.get_docs()}
        assert set(acknowledged) <= ids
        assert len(ids) <= len(acknowledged) + 1  # at most one committed add was not yet acknowledged
        assert session.pending_changes() == len(ids)  # every add is still waiting to be pushed
        res = await session.query("refunds", None)
        assert res.docs
        result = await session.push_index()
        assert result.doc_count == len(ids)
        info = await client.get_index("stream")
        assert info.doc_count == len(ids)
        await session.close()
        await client.close()

    try:
        asyncio.run(reopen())
    finally:
        close_embedded_services()


PUSHER = textwrap.dedent(
    """
    import asyncio, sys
    from mosslite import DocumentInfo, MossClient
    async def main(home):
        client = MossClient("p", "k", cache_path=home)
        session = await client.session("midpush", model_id=sys.argv[2])
        await session.add_docs([DocumentInfo(id=f"d{i}", text=f"note {i}") for i in range(200)])
        print("pushing", flush=True)
        await session.push_index()
        print("pushed", flush=True)
    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.mark.parametrize("delay_s", [0.0, 0.05, 0.3])
def test_sigkill_mid_push_then_retry_applies_once(tmp_path: Path, delay_s: float) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", PUSHER, str(tmp_path), MODEL],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), text=True,
    )  # fmt: skip
    assert child.stdout.readline().strip() == "pushing", child.stderr.read()
    time.sleep(delay_s)
    child.send_signal(signal.SIGKILL)
    child.wait(10)

    async def resume() -> None:
        client = MossClient("p", "k", cache_path=tmp_path)  # its service resumes or fails the dead one's job
        session = await client.session("midpush")
        assert session.doc_count == 200
        await session.push_index()  # resends the stored diff if it was not confirmed
        assert session.pending_changes() == 0
        info = await client.get_index("midpush")
        assert info.doc_count == 200 and info.version == 1  # applied exactly once
        await session.close()
        await client.close()

    _run(resume(), {})


def _agent(spec: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", AGENT, json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        text=True,
    )


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(params=["embedded", "http"])
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    """Where the agents' service is: a shared embedded data folder, or a `mosslite serve`."""
    project = "p-" + os.urandom(4).hex()
    if request.param == "embedded":
        return {"url": None, "cloud": str(tmp_path / "cloud"), "project": project, "key": "k-" + project}
    server: Server = request.getfixturevalue("server")
    return {"url": server.url, "cloud": None, "project": project, "key": server.new_key(project)}


def test_two_processes_push_at_once_and_both_land(cloud: dict, tmp_path: Path) -> None:
    barrier = str(tmp_path / "barrier")
    base = {**cloud, "name": "together", "model": MODEL, "barrier": barrier}
    agents = [
        _agent({**base, "agent": name, "device": str(tmp_path / name),
                "add": [[f"{name}-{i}", f"{name} note {i}"] for i in range(20)] + [["shared", f"written by {name}"]]})
        for name in ("a", "b")
    ]  # fmt: skip
    deadline = time.monotonic() + 60
    while not all(os.path.exists(f"{barrier}.{n}") for n in ("a", "b")):
        assert time.monotonic() < deadline and all(a.poll() is None for a in agents), [a.stderr.read() for a in agents if a.poll() is not None]
        time.sleep(0.01)
    Path(f"{barrier}.go").touch()
    results = [_finish(a) for a in agents]
    assert sorted(r["version"] for r in results) == [1, 2]
    assert sum(r["overwritten"] for r in results) == 1  # the later push replaced the other's "shared"
    winner = "ab"[[r["version"] for r in results].index(2)]

    async def check() -> None:
        client = _client(cloud, tmp_path / "checker")
        docs = {d.id: d.text for d in await client.get_docs("together")}
        assert len(docs) == 41 and docs["shared"] == f"written by {winner}"
        await client.close()

    _run(check(), cloud)


def test_agent_b_resumes_what_agent_a_pushed(cloud: dict, tmp_path: Path) -> None:
    base = {**cloud, "name": "handoff", "model": MODEL, "barrier": None}
    a1 = _finish(_agent({**base, "agent": "a", "device": str(tmp_path / "a"), "add": [["a1", "from A"]]}))
    assert a1["seen"] == [] and a1["version"] == 1
    b = _finish(_agent({**base, "agent": "b", "device": str(tmp_path / "b"), "add": [["b1", "from B"]]}))
    assert b["seen"] == ["a1"] and b["version"] == 2
    a2 = _finish(_agent({**base, "agent": "a", "device": str(tmp_path / "a"), "add": [["a2", "A again"]]}))
    assert a2["seen"] == ["a1", "b1"] and a2["version"] == 3 and a2["doc_count"] == 1


def _client(cloud: dict, home: Path) -> MossClient:
    if cloud["url"]:
        return MossClient(cloud["project"], cloud["key"], url=cloud["url"], cache_path=home)
    from mosslite.client.embedded import embedded_service
    from mosslite.transport.local import LocalTransport

    transport = LocalTransport(embedded_service(Path(cloud["cloud"])), cloud["project"], cloud["key"])
    return MossClient(cloud["project"], cloud["key"], cache_path=home, transport=transport)


def _run(coro, cloud: dict) -> None:
    try:
        asyncio.run(coro)
    finally:
        close_embedded_services()
