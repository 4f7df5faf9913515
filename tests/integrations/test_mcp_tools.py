"""``MossTools`` in this process, over a real MossClient on the embedded service: what a
conversation over stdio (test_mcp.py) cannot see, such as what the tools hold on to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp.server.mcpserver.exceptions import ToolError

from mosslite import DocumentInfo, MossClient
from mosslite.client.embedded import close_embedded_services
from mosslite.integrations.mcp_tools import MossTools

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[MossClient]:
    client = MossClient("p", "k", cache_path=tmp_path)
    yield client
    await client.close()
    close_embedded_services()


async def make(client: MossClient, name: str, docs: list[DocumentInfo], model: str) -> None:
    await client.wait_for_job((await client.create_index(name, docs, model)).job_id)


async def test_a_custom_index_is_searched_by_keywords_and_the_hint_says_so(client: MossClient) -> None:
    await make(client, "own", [DocumentInfo(id="a", text="alpha beta", embedding=[1.0, 0.0])], "custom")
    tools = MossTools(client, allow_writes=False, poll_interval_s=5)
    with pytest.raises(ToolError) as refused:
        await tools.search("own", "alpha")  # alpha 0.8: there is no model here to embed the query with
    message = str(refused.value)
    assert "(hint: search it with alpha=0 for keywords only)" in message and "QueryOptions" not in message
    assert [hit.id for hit in (await tools.search("own", "alpha", alpha=0.0)).docs] == ["a"]


async def test_only_loaded_indexes_are_remembered(client: MossClient) -> None:
    await make(client, "faq", [DocumentInfo(id="r1", text="Refunds take five days.")], "hashed-ngrams-256")
    tools = MossTools(client, allow_writes=False, poll_interval_s=5)
    for name in ("nope", "no/slashes", "nope"):
        with pytest.raises(ToolError):
            await tools.search(name, "refund")
    assert (await tools.search("faq", "refund")).docs[0].id == "r1"
    assert tools._loads == {} and tools._loaded == {"faq"}


async def test_close_closes_every_session_though_one_fails(client: MossClient, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = MossTools(client, allow_writes=False, poll_interval_s=5, session_model="hashed-ngrams-256")
    for name in ("first", "second"):
        await tools.remember(name, f"a note of {name}")
    first, second = tools._sessions["first"], tools._sessions["second"]
    close_first = first.close

    async def fails() -> None:
        await close_first()
        raise OSError("the disk went away")

    monkeypatch.setattr(first, "close", fails)
    with pytest.raises(OSError, match="the disk went away"):
        await tools.close()
    assert first.closed and second.closed
