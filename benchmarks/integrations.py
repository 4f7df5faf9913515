"""What the agent integrations cost over a direct query, and what importing them costs.

Run:  .venv/bin/python benchmarks/integrations.py [--docs 10000] [--queries 300]

What is measured
----------------
One embedded index of ``--docs`` documents (model ``hashed-ngrams-256``, texts of
40-80 words from benchmarks/build.py's Zipf vocabulary, so the numbers are
retrieval and glue, not a transformer), loaded in this process; a second index
of the same texts with its vectors given by a LangChain ``Embeddings`` (stored
as ``custom``). Queries: the first 6 words of other texts of the same law,
each run once untimed first (the embedder caches query vectors, and the reader
scored posting lists: both sides get the warm caches).

Series, measured round-robin (query i of every series before query i + 1 of
any, so load from other processes hits them alike; query i starts at series
i mod 5, so no series always runs right after the MCP server's reply), top 5,
alpha 0.8:

- direct: ``SyncMossClient.query`` (the call a Python agent makes);
- LangChain: ``MossliteVectorStore.similarity_search`` over the same client,
  with mosslite's model, and with LangChain ``Embeddings`` (custom vectors; the
  direct row for it passes the same query vector itself);
- MCP: the ``search`` tool of a ``mosslite mcp`` subprocess over stdio, called
  with the MCP SDK's client (JSON-RPC framing, validation, the query in the
  server, the structured answer back): a whole round trip between processes.

Every answer of a glue row is checked against the direct one (the same ids).
Then import times: ``python -c "import X"`` in a fresh process, best of 7,
minus ``python -c "pass"``.

Targets (#11; informational, exit status 0 either way): LangChain <= 1 ms over
the direct call at p50; MCP reported; ``import mosslite`` unchanged (it imports
no framework: tests/integrations/ checks that).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import Percentiles, fmt_ms, load_average, machine_summary, print_table, verdict
from build import make_texts

MODEL = "hashed-ngrams-256"
LANGCHAIN_TARGET_MS = 1.0
IMPORTS = (
    "mosslite",
    "mosslite.integrations.langchain",
    "mosslite.integrations.llama_index",
    "mosslite.integrations.mcp_tools",
)


def import_ms(module: str, runs: int = 7) -> float:
    def best(code: str) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append((time.perf_counter() - started) * 1000)
        return min(times)

    return best(f"import {module}") - best("pass")


async def measure(docs: int, queries: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="bench-integrations-") as folder:  # nothing left behind
        return await _measure(Path(folder), docs, queries)


async def _measure(home: Path, docs: int, queries: int) -> dict[str, list[float]]:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from mcp import Client, StdioServerParameters, stdio_client

    from mosslite import QueryOptions, SyncMossClient
    from mosslite.embeddings import get_embedder
    from mosslite.integrations.langchain import MossliteVectorStore

    class HashedEmbeddings(Embeddings):  # a LangChain Embeddings: its vectors are stored as custom
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return get_embedder(MODEL).embed(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return get_embedder(MODEL).embed_query(text).tolist()

    os.environ["MOSSLITE_HOME"] = str(home)
    texts = make_texts(docs, seed=7)
    asked = [" ".join(t.split()[:6]) for t in make_texts(queries, seed=8)]
    client = SyncMossClient("bench", "bench-key")
    started = time.perf_counter()
    own = MossliteVectorStore("own", client, model_id=MODEL)
    own.add_documents([Document(id=f"d{i}", page_content=t) for i, t in enumerate(texts)])
    embeddings = HashedEmbeddings()
    custom = MossliteVectorStore("custom", client, embedding=embeddings)
    custom.add_documents([Document(id=f"d{i}", page_content=t) for i, t in enumerate(texts)])
    print(f"built two {docs}-document indexes in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    for name in ("own", "custom"):
        client.load_index(name)  # (the stores search this same loaded copy)
    options = QueryOptions(top_k=5, alpha=0.8)
    vectors = {q: embeddings.embed_query(q) for q in asked}

    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mosslite", "mcp", "--project-id", "bench", "--project-key", "bench-key"],
        env=dict(os.environ),
    )
    with open(home / "mcp.log", "w") as log:
        async with Client(stdio_client(server, errlog=log)) as agent:

            async def mcp_search(q: str) -> list[str]:
                found = await agent.call_tool("search", {"index": "own", "query": q, "top_k": 5, "alpha": 0.8})
                assert not found.is_error, found
                return [d["id"] for d in found.structured_content["docs"]]

            series: dict[str, Callable[[str], object]] = {
                "direct query (mosslite model)": lambda q: [d.id for d in client.query("own", q, options).docs],
                "LangChain similarity_search (mosslite model)": lambda q: [
                    d.id for d in own.similarity_search(q, k=5, alpha=0.8)
                ],
                "MCP search tool over stdio (mosslite model)": mcp_search,
                "direct query (custom vectors)": lambda q: [
                    d.id for d in client.query("custom", q, QueryOptions(top_k=5, alpha=0.8, embedding=vectors[q])).docs
                ],
                "LangChain similarity_search (custom vectors)": lambda q: [
                    d.id for d in custom.similarity_search(q, k=5, alpha=0.8)
                ],
            }

            async def call(fn: Callable[[str], object], q: str) -> object:
                answer = fn(q)
                return await answer if asyncio.iscoroutine(answer) else answer

            for q in asked:  # untimed: warm caches on every side, and the same answers
                direct, lc, via_mcp = [await call(series[name], q) for name in list(series)[:3]]
                assert direct == lc == via_mcp, (q, direct, lc, via_mcp)
                assert await call(series["direct query (custom vectors)"], q) == await call(
                    series["LangChain similarity_search (custom vectors)"], q
                )
            out: dict[str, list[float]] = {name: [] for name in series}
            names = list(series)
            for i, q in enumerate(asked):  # each query starts at another series: none always follows MCP
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    fn = series[name]
                    begun = time.perf_counter()
                    await call(fn, q)
                    out[name].append((time.perf_counter() - begun) * 1000)
    client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    print(machine_summary())
    print(load_average())
    series = asyncio.run(measure(args.docs, args.queries))
    p = {name: Percentiles.of(ms) for name, ms in series.items()}
    rows = []
    for name, stats in p.items():
        kind = name[name.index("(") :]
        direct = p[f"direct query {kind}"]
        over = stats.p50 - direct.p50
        target = "" if name.startswith("direct") else (
            verdict(over <= LANGCHAIN_TARGET_MS) if name.startswith("LangChain") else "reported"
        )  # fmt: skip
        rows.append([name, fmt_ms(stats.p50), fmt_ms(stats.p95), fmt_ms(stats.p99),
                     "" if name.startswith("direct") else fmt_ms(over), target])  # fmt: skip
    print_table(
        f"{args.docs} documents, {args.queries} queries, top 5, alpha 0.8 (ms; round-robin)",
        ["series", "p50", "p95", "p99", "p50 over direct", "target"],
        rows,
    )
    baseline = import_ms("mosslite")
    print_table(
        "import time in a fresh process, best of 7, minus `python -c pass` (ms)",
        ["module", "ms", "vs import mosslite"],
        [[m, f"{ms:.1f}", f"{ms / baseline:.1f}x"] for m, ms in ((m, baseline if m == "mosslite" else import_ms(m)) for m in IMPORTS)],
    )
    print(load_average())


if __name__ == "__main__":
    main()
