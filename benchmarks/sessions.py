"""Sessions (issue #5): add_docs latency, local query latency, and bytes pushed per diff.

Run:  .venv/bin/python benchmarks/sessions.py [--quick]

What each table measures
------------------------
- add_docs: ``await session.add_docs(batch)`` on a moss-minilm session, split in
  two. "embedding" is ``embedder.embed(texts)`` for the batch (the default
  model, a numpy transformer forward pass, on fresh texts of 15-60 words).
  "the rest" is ``add_docs`` of a batch of the same size with its vectors
  supplied (random unit vectors: their values do not change the cost), so no
  model runs: validation and
  normalisation, the durable commit (rows + their changeset, one WAL
  transaction), and making the documents queryable (the in-memory matrix and
  FTS5 via triggers). Every call writes new ids into a session that already
  holds 1,000 documents. Target: the rest, 1 doc, p50 <= 2 ms.
- query: ``session.query(text, QueryOptions(top_k=5, alpha=..., embedding=v))``
  on a ``custom`` session (384-dim random unit vectors; texts of 15-60 words
  drawn Zipf-like from 20k words, queries of 3-8), so retrieval alone is timed; texts and metadata of the hits are read from the
  session file. 1k and 10k documents; beside it, ``IndexReader.query`` with the
  same queries on an index file of the same documents (same ranking code).
- bytes pushed: a session of N documents (hashed-ngrams-256, hydrated from an
  index the embedded service built), then K of its documents updated (new
  text, so new vectors); "changeset" is the diff ``push_index`` sends (the
  SQLite changeset: old and new rows of each changed document), "HTTP body"
  that diff base64-encoded in its JSON request, "index file" the size of the
  version the service publishes. Target: 10 docs in 100k <= 1% of the file.
  The push is then really made, and its wall time (embedded service: job,
  build of the next version, publish) is shown.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import Percentiles, fmt_ms, machine_summary, print_table, time_each, verdict  # noqa: E402

from mosslite import DocumentInfo, IndexReader, MossClient, QueryOptions, Version, build_version, get_embedder  # noqa: E402
from mosslite.client.embedded import close_embedded_services  # noqa: E402

WORDS = (
    "refund shipping delivery battery headphones speaker password account order invoice warranty "
    "return exchange damaged express standard tracking parcel courier pickup store credit gift card "
    "discount coupon subscription cancel renew upgrade firmware bluetooth pairing charger cable "
    "screen camera photo lens tripod backpack jacket size colour fabric wash dry iron fold"
).split()


def _vocabulary(size: int = 20_000) -> list[str]:
    """The support words above, then pronounceable pseudo-words: a realistic spread of
    document frequencies for FTS5 (a few very common words, a long tail of rare ones)."""
    rng = np.random.default_rng(0)
    consonants, vowels = list("bcdfghklmnprstvz"), list("aeiou")
    tail = {
        "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(int(rng.integers(2, 4))))
        for _ in range(size)
    }
    return WORDS + sorted(tail - set(WORDS))


VOCABULARY = _vocabulary()
# Zipf-like word frequencies: rank r is drawn with probability ~ 1 / (r + 2.7).
_P = 1.0 / (np.arange(len(VOCABULARY)) + 2.7)
_P /= _P.sum()


def texts(n: int, seed: int, words: tuple[int, int] = (15, 60)) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(words[0], words[1], size=n)
    picks = rng.choice(len(VOCABULARY), size=int(lengths.sum()), p=_P)
    out, at = [], 0
    for length in lengths:
        out.append(" ".join(VOCABULARY[j] for j in picks[at : at + length]))
        at += length
    return out


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    m = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


async def timed(coro_fn, inputs, warmup: int = 5) -> list[float]:
    for x in inputs[:warmup]:
        await coro_fn(x)
    out = []
    for x in inputs[warmup:]:
        started = time.perf_counter()
        await coro_fn(x)
        out.append((time.perf_counter() - started) * 1000.0)
    return out


async def bench_add(home: Path, calls_1: int, calls_100: int) -> list[list[str]]:
    client = MossClient("bench", "k", cache_path=home)
    session = await client.session("adds", model_id="moss-minilm", auto_load_on_init=False)
    embedder = get_embedder("moss-minilm")
    warm = texts(1000, 1)
    await session.add_docs([DocumentInfo(id=f"w{i}", text=t, embedding=v) for i, (t, v) in
                            enumerate(zip(warm, unit_vectors(1000, 384, 1)))])  # fmt: skip
    rows = []
    counter = iter(range(10**9))
    for size, calls, embed_calls in ((1, calls_1, max(10, calls_1 // 3)), (100, calls_100, max(5, calls_100 // 3))):
        # Embedding: the default model on fresh texts (its query cache plays no part in embed()).
        embed_ms = []
        for k in range(embed_calls + 2):
            batch = texts(size, 100 + k)
            started = time.perf_counter()
            embedder.embed(batch)
            embed_ms.append((time.perf_counter() - started) * 1000.0)
        # The rest: the same kind of batch with its vectors supplied (values do not matter here).
        inputs = [
            [DocumentInfo(id=f"d{next(counter)}", text=t, metadata={"k": str(i % 7)}, embedding=v)
             for i, (t, v) in enumerate(zip(texts(size, 500 + k), unit_vectors(size, 384, 500 + k)))]
            for k in range(calls + 5)
        ]  # fmt: skip
        rest_ms = await timed(session.add_docs, inputs)
        e, r = Percentiles.of(embed_ms[2:]), Percentiles.of(rest_ms)
        target = verdict(r.p50 <= 2.0) if size == 1 else ""
        rows.append([f"{size} doc{'s' if size > 1 else ''}", "embedding (moss-minilm)", fmt_ms(e.p50), fmt_ms(e.p99), e.n, ""])
        rows.append(["", "the rest (validate, commit, queryable)", fmt_ms(r.p50), fmt_ms(r.p99), r.n, target])
    await session.close()
    await client.close()
    return rows


async def bench_query(home: Path, sizes: list[int], calls: int) -> list[list[str]]:
    rows = []
    for n in sizes:
        client = MossClient("bench", "k", cache_path=home)
        session = await client.session(f"query-{n}", model_id="custom", auto_load_on_init=False)
        corpus, vecs = texts(n, 7), unit_vectors(n, 384, 7)
        for start in range(0, n, 1000):
            await session.add_docs([
                DocumentInfo(id=f"q{i}", text=corpus[i], metadata={"category": str(i % 10)}, embedding=vecs[i])
                for i in range(start, min(n, start + 1000))
            ])  # fmt: skip
        queries = texts(calls + 5, 99, words=(3, 8))
        qvecs = unit_vectors(calls + 5, 384, 99)
        # The same documents as an index file, to set the session beside IndexReader.
        index_path = home / f"reader-{n}" / Version(1).filename()
        build_version(
            index_path,
            embedder=get_embedder("custom", dimension=384),
            index_name=f"query-{n}",
            version=Version(1),
            upserts=[DocumentInfo(id=f"q{i}", text=corpus[i], metadata={"category": str(i % 10)}, embedding=vecs[i])
                     for i in range(n)],
        )  # fmt: skip
        reader = IndexReader(index_path)
        reader.wait_ready()
        modes = [
            ("vector", dict(alpha=1.0)),
            ("keyword", dict(alpha=0.0)),
            ("hybrid", dict(alpha=0.8)),
            ("hybrid + filter", dict(alpha=0.8, filter={"field": "category", "condition": {"$in": ["1", "2"]}})),
        ]
        for label, extra in modes:
            ms = await timed(
                lambda i: session.query(queries[i], QueryOptions(top_k=5, embedding=qvecs[i], **extra)),
                list(range(calls + 5)),
            )
            p = Percentiles.of(ms)
            reader_ms = time_each(
                lambda i: reader.query(queries[i], QueryOptions(top_k=5, embedding=qvecs[i], **extra)),
                list(range(calls + 5)),
                warmup=5,
            )
            rp = Percentiles.of(reader_ms)
            rows.append([f"{n:,}", label, fmt_ms(p.p50), fmt_ms(p.p99), p.n, fmt_ms(rp.p50), fmt_ms(rp.p99)])
        reader.close()
        await session.close()
        await client.close()
    return rows


async def bench_bytes(home: Path, sizes: list[int]) -> list[list[str]]:
    rows = []
    for n in sizes:
        client = MossClient("bench", "k", cache_path=home)
        name = f"bytes-{n}"
        corpus = texts(n, 3)
        started = time.perf_counter()
        for start in range(0, n, 20_000):
            docs = [DocumentInfo(id=f"b{i}", text=corpus[i], metadata={"n": str(i)}) for i in range(start, min(n, start + 20_000))]
            job = await (client.create_index(name, docs, model_id="hashed-ngrams-256") if start == 0 else client.add_docs(name, docs))
            await client.wait_for_job(job.job_id, timeout_seconds=3600)
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        session = await client.session(name)
        hydrate_s = time.perf_counter() - started
        print(f"  {n:,} docs: index built in {build_s:.1f} s, session hydrated in {hydrate_s:.1f} s", file=sys.stderr)
        changed_so_far = 0
        for k in (10, 100, 1000):
            ids = range(changed_so_far, changed_so_far + k)
            changed_so_far += k
            await session.add_docs([DocumentInfo(id=f"b{i}", text=f"updated {i} " + corpus[i], metadata={"n": str(i)}) for i in ids])
            outgoing = session._store.outgoing()  # exactly what push_index sends next
            body = json.dumps({"diff_id": outgoing.diff_id, "changeset": base64.b64encode(outgoing.changeset).decode(),
                               "model_id": session.model_id, "dimension": session.dimension})  # fmt: skip
            started = time.perf_counter()
            result = await session.push_index()
            push_s = time.perf_counter() - started
            manifest = await client.transport.manifest(name)
            ratio = len(outgoing.changeset) / manifest.size_bytes
            target = verdict(ratio <= 0.01) if (n >= 100_000 and k == 10) else ""
            assert result.doc_count == k
            rows.append([f"{n:,}", k, f"{len(outgoing.changeset):,}", f"{len(body):,}", f"{manifest.size_bytes:,}",
                         f"{ratio * 100:.4f} %", f"{push_s:.2f}", target])  # fmt: skip
        await session.close()
        await client.close()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls; bytes pushed at 10k only")
    parser.add_argument("--parts", default="add,query,bytes", help="which tables to print (default: all three)")
    args = parser.parse_args()
    print(machine_summary())
    with tempfile.TemporaryDirectory(prefix="mosslite-bench-sessions-") as tmp:
        home = Path(tmp)
        calls_1, calls_100, qcalls = (60, 15, 100) if args.quick else (300, 30, 300)
        parts = set(args.parts.split(","))
        if "add" in parts:
            add_rows = await bench_add(home / "add", calls_1, calls_100)
            print_table(
                "add_docs latency (ms per call; moss-minilm session holding 1,000 docs)",
                ["batch", "part", "p50", "p99", "calls", "target"],
                add_rows,
                align="llrrrl",
            )
        if "query" in parts:
            query_rows = await bench_query(home / "query", [1_000, 10_000], qcalls)
            print_table(
                "session query latency (ms per call; top_k=5, query vector given, custom 384-dim)",
                ["docs", "mode", "p50", "p99", "calls", "IndexReader p50", "IndexReader p99"],
                query_rows,
                align="llrrrrr",
            )
        if "bytes" in parts:
            sizes = [10_000] if args.quick else [10_000, 100_000]
            byte_rows = await bench_bytes(home / "bytes", sizes)
            print_table(
                "bytes pushed per diff (hashed-ngrams-256; K documents updated since the last push)",
                ["session docs", "changed", "changeset B", "HTTP body B", "index file B", "changeset/file", "push s",
                 "target"],
                byte_rows,
                align="lrrrrrrl",
            )  # fmt: skip
    close_embedded_services()


if __name__ == "__main__":
    asyncio.run(main())
