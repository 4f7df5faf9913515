"""``mosslite mcp`` as an MCP client meets it: a subprocess driven by the SDK's own client.

Each test starts ``python -m mosslite mcp`` with a fresh MOSSLITE_HOME whose
embedded service already holds the index ``faq`` (made here, in this process,
through the same data folder), then talks to it over stdio (one test over
streamable HTTP). Every conversation is bounded by ``TIMEOUT_S``: a hang fails.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters, stdio_client

from mosslite import DocumentInfo, SyncMossClient
from mosslite.client.embedded import close_embedded_services

from ..cli.mosslite_cli_helpers import read_line

PROJECT, KEY, MODEL = "proj", "key-1", "hashed-ngrams-256"
TIMEOUT_S = 90
FAQ = [
    DocumentInfo(id="r1", text="Refunds are issued within 5 days of the return.", metadata={"category": "returns"}),
    DocumentInfo(id="r2", text="Money back guarantee on every damaged product.", metadata={"category": "returns"}),
    DocumentInfo(id="s1", text="Standard shipping takes three to five days.", metadata={"category": "shipping"}),
    DocumentInfo(id="a1", text="Pair your headphones over Bluetooth.", metadata={"category": "audio"}),
]
TOOLS = {"search", "get_documents", "list_indexes", "remember", "recall", "add_documents", "delete_documents", "push_session"}
WRITES = ("add_documents", "delete_documents", "push_session")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A MOSSLITE_HOME whose embedded service has project ``proj`` (key ``key-1``) and index ``faq``."""
    home = tmp_path / "home"
    with SyncMossClient(PROJECT, KEY, cache_path=home) as client:
        client.wait_for_job(client.create_index("faq", FAQ, MODEL).job_id)
    yield home
    close_embedded_services()


def server_env(home: Path) -> dict[str, str]:
    env = {"MOSSLITE_HOME": str(home), "MOSS_PROJECT_ID": PROJECT, "MOSS_PROJECT_KEY": KEY}
    if os.environ.get("PYTHONPATH"):  # (this checkout's mosslite, not an installed one)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def drive(home: Path, body: Callable[[Client], Awaitable[Any]], *flags: str) -> Any:
    """Start ``mosslite mcp FLAGS`` on stdio, run ``body(client)``, and stop the server by
    closing its stdin. Its stderr goes to a file, shown if the conversation fails."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mosslite", "mcp", "--session-model", MODEL, *flags],
        env=server_env(home),
    )

    async def main() -> Any:
        with anyio.fail_after(TIMEOUT_S):
            async with Client(stdio_client(params, errlog=log)) as client:
                return await body(client)

    with tempfile.TemporaryFile("w+") as log:
        try:
            return asyncio.run(main())
        except BaseException:
            log.seek(0)
            print("server stderr:\n" + log.read(), file=sys.stderr)
            raise


async def call(client: Client, tool: str, **arguments: Any) -> Any:
    """The tool's structured result; the call must succeed."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    """The text of the tool error the call must end in."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return " ".join(block.text for block in result.content)


def test_tools_are_listed_with_their_schemas_and_descriptions(home: Path) -> None:
    async def body(client: Client) -> None:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        search = tools["search"]
        assert search.input_schema["required"] == ["index", "query"]
        assert set(search.input_schema["properties"]) == {"index", "query", "top_k", "alpha", "filter"}
        assert search.input_schema["properties"]["top_k"]["default"] == 5
        assert "$eq" in search.input_schema["properties"]["filter"]["description"]
        assert search.annotations.read_only_hint is True
        add = tools["add_documents"].input_schema
        assert add["required"] == ["index", "documents"]
        assert add["$defs"]["DocumentIn"]["required"] == ["id", "text"]
        assert tools["remember"].input_schema["required"] == ["session", "text"]
        assert tools["delete_documents"].annotations.destructive_hint is True
        for tool in tools.values():
            assert tool.description and tool.output_schema, tool.name
        for name in WRITES:  # a model learns from the listing that writes are off here
            assert "without --allow-writes" in tools[name].description
        assert "without --allow-writes" not in tools["remember"].description

    drive(home, body)


def test_search_get_documents_and_list_indexes(home: Path) -> None:
    async def body(client: Client) -> None:
        found = await call(client, "search", index="faq", query="refund for a damaged product", top_k=2)
        assert found["index"] == "faq" and found["version"] == 1 and found["stale"] is False
        assert len(found["docs"]) == 2 and found["docs"][0]["id"] in {"r1", "r2"}
        assert set(found["docs"][0]) == {"id", "text", "metadata", "score"}
        only_shipping = {"field": "category", "condition": {"$eq": "shipping"}}
        filtered = await call(client, "search", index="faq", query="days", filter=only_shipping, alpha=0.0)
        assert [d["id"] for d in filtered["docs"]] == ["s1"]

        got = await call(client, "get_documents", index="faq", ids=["s1", "nope", "r1"])
        assert [d["id"] for d in got["docs"]] == ["s1", "r1"] and got["missing"] == ["nope"]
        assert got["docs"][0] == {"id": "s1", "text": FAQ[2].text, "metadata": {"category": "shipping"}}

        listed = await call(client, "list_indexes")
        assert [(i["name"], i["version"], i["doc_count"], i["model"]) for i in listed["indexes"]] == [("faq", 1, 4, MODEL)]

    drive(home, body)


def test_writes_are_refused_without_the_flag_and_memory_stays_local(home: Path) -> None:
    async def body(client: Client) -> None:
        for tool, arguments in (
            ("add_documents", {"index": "faq", "documents": [{"id": "n1", "text": "new"}]}),
            ("delete_documents", {"index": "faq", "ids": ["r1"]}),
            ("push_session", {"session": "notes"}),
        ):
            message = await refused(client, tool, **arguments)
            assert f"{tool} is refused" in message and "--allow-writes" in message and "hint:" in message
        noted = await call(client, "remember", session="notes", text="The caller prefers email over phone.")
        assert noted["pending_changes"] == 1
        recalled = await call(client, "recall", session="notes", query="email")
        assert [d["id"] for d in recalled["docs"]] == [noted["id"]]
        listed = await call(client, "list_indexes")
        assert [(i["name"], i["version"]) for i in listed["indexes"]] == [("faq", 1)]  # nothing reached the service

    drive(home, body)


def test_writes_with_the_flag_publish_and_the_next_search_sees_them(home: Path) -> None:
    async def body(client: Client) -> None:
        await call(client, "search", index="faq", query="refund")  # loaded at version 1
        new = [{"id": "w1", "text": "Gift cards never expire.", "metadata": {"category": "gifts"}}]
        added = await call(client, "add_documents", index="faq", documents=new, wait=True)
        assert added["status"] == "completed" and added["version"] == 2 and added["doc_count"] == 1
        found = await call(client, "search", index="faq", query="gift cards expire", top_k=1)
        assert found["version"] == 2 and found["docs"][0]["id"] == "w1"

        queued = await call(client, "delete_documents", index="faq", ids=["w1"])
        assert queued["job_id"].startswith("job_")
        deleted = await call(client, "delete_documents", index="faq", ids=["r2"], wait=True)
        assert deleted["status"] == "completed" and deleted["version"] == 4
        got = await call(client, "get_documents", index="faq", ids=["w1", "r2", "r1"])
        assert got["missing"] == ["w1", "r2"]

        taken = await refused(client, "add_documents", index="faq", documents=[{"id": "r1", "text": "x"}], upsert=False)
        assert "r1" in taken

        # Without wait, the new version reaches the loaded copy on its own (auto_refresh):
        # searched until seen, bounded by the conversation's TIMEOUT_S.
        await call(client, "add_documents", index="faq", documents=[{"id": "w3", "text": "Store credit lasts a year."}])
        while [d["id"] for d in (await call(client, "search", index="faq", query="store credit", top_k=1))["docs"]] != ["w3"]:
            await anyio.sleep(0.02)

    drive(home, body, "--allow-writes")


def test_a_session_remembers_recalls_and_pushes_to_the_service(home: Path) -> None:
    async def body(client: Client) -> list[str]:
        first = await call(client, "remember", session="call-7", text="The caller wants a refund for the blue kettle.")
        second = await call(
            client, "remember", session="call-7", text="Ship the replacement by express delivery.", metadata={"step": "2"}, id="plan"
        )
        assert first["id"].startswith("note-") and second["id"] == "plan" and second["doc_count"] == 2
        recalled = await call(client, "recall", session="call-7", query="refund kettle", top_k=1)
        assert [d["id"] for d in recalled["docs"]] == [first["id"]]

        pushed = await call(client, "push_session", session="call-7")
        assert pushed["status"] == "completed" and pushed["doc_count"] == 2 and pushed["version"] == 1
        again = await call(client, "push_session", session="call-7")
        assert again["job_id"] == "" and again["doc_count"] == 0  # nothing new to send
        found = await call(client, "search", index="call-7", query="express delivery", top_k=1)
        assert found["docs"][0]["id"] == "plan"
        return [first["id"], "plan"]

    ids = drive(home, body, "--allow-writes")
    with SyncMossClient(PROJECT, KEY, cache_path=home) as fresh:  # as any other agent sees it
        docs = {d.id: d for d in fresh.get_docs("call-7", include_embedding=False)}
    assert set(docs) == set(ids)
    assert docs["plan"].metadata == {"step": "2"}


def test_bad_input_is_a_tool_error_with_the_typed_message_and_hint(home: Path) -> None:
    async def body(client: Client) -> None:
        missing = await refused(client, "search", index="nope", query="refund")
        assert "'nope'" in missing and "not found" in missing and "hint: the list_indexes tool" in missing
        bad_filter = await refused(client, "search", index="faq", query="refund", filter={"field": "category"})
        assert "filter" in bad_filter and 'hint: filters look like {"field"' in bad_filter
        assert "top_k must be an integer from 1 to 1000" in await refused(client, "search", index="faq", query="x", top_k=0)
        bad_name = await refused(client, "remember", session="no/slashes", text="x")
        assert "session name 'no/slashes'" in bad_name
        assert "Traceback" not in missing + bad_filter + bad_name
        listed = await call(client, "list_indexes")  # the server carries on
        assert listed["indexes"][0]["name"] == "faq"

    drive(home, body)


def test_streamable_http(home: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "mosslite", "mcp", "--http", "--port", "0"],
        env={**os.environ, **server_env(home)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    async def main(url: str) -> None:
        with anyio.fail_after(TIMEOUT_S):
            async with Client(url) as client:
                assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
                found = await call(client, "search", index="faq", query="bluetooth headphones", top_k=1)
                assert found["docs"][0]["id"] == "a1"
                assert "--allow-writes" in await refused(client, "delete_documents", index="faq", ids=["a1"])

    try:
        banner = ""
        while "streamable HTTP at" not in banner:  # said once it accepts connections
            banner = read_line(server.stderr, TIMEOUT_S)
            assert banner, "the server exited"
        assert "read only (no --allow-writes), on streamable HTTP at http://127.0.0.1:" in banner, banner
        asyncio.run(main(banner.split()[-1]))
        server.send_signal(signal.SIGTERM)
        assert server.wait(TIMEOUT_S) == 0
        assert "mosslite mcp stopped" in server.stderr.read()
    finally:
        server.kill()
        server.wait(TIMEOUT_S)
        server.stderr.close()


def test_import_mosslite_does_not_import_the_sdk() -> None:
    code = "import sys, mosslite, mosslite.cli; print(sorted({m.split('.')[0] for m in sys.modules} & {'mcp', 'pydantic'}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
