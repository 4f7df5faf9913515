"""`make demo`: the whole local-first story in one run, on the embedded default.

No server, no network: the service runs in this process under a temporary
home. The demo builds an index from the bundled sample, loads it with
auto_refresh, keeps querying while a mutation adds and deletes documents in
the background, shows the job's statuses and phases and the hot swap, then
opens a session, adds documents, queries them, pushes them, and resumes the
session from a fresh client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path

from . import DocumentInfo, MossClient, QueryOptions
from ._db import vec_extension_path
from .types import Job, SwapEvent

SAMPLE = "sample_docs.jsonl"
INDEX = "sample"
HELD_BACK = 40  # documents added later by the background mutation

QUERIES: list[tuple[str, str, QueryOptions]] = [
    ("keyword", "refund restocking fee", QueryOptions(top_k=3, alpha=0.0)),
    ("semantic", "can I get my money back if I change my mind", QueryOptions(top_k=3, alpha=1.0)),
    ("hybrid", "headphones that block airplane noise", QueryOptions(top_k=3)),
    (
        "filtered",
        "wireless speaker for the garden",
        QueryOptions(
            top_k=3,
            filter={"$and": [
                {"field": "kind", "condition": {"$eq": "product"}},
                {"field": "price", "condition": {"$lt": "150"}},
            ]},
        ),
    ),
    (
        "near",
        "where can I pick up my order",
        QueryOptions(top_k=3, filter={"field": "location", "condition": {"$near": "52.5200,13.4050,50000"}}),
    ),
]


def load_sample() -> list[DocumentInfo]:
    text = resources.files("mosslite").joinpath("data", SAMPLE).read_text(encoding="utf-8")
    return [DocumentInfo(**json.loads(line)) for line in text.splitlines() if line.strip()]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))] if ordered else 0.0


async def follow_job(client: MossClient, job_id: str, label: str) -> Job:
    """Print each status/phase change of a job until it ends."""
    last = None
    while True:
        job = await client.get_job_status(job_id)
        state = (job.status, job.current_phase)
        if state != last:
            phase = f" / {job.current_phase}" if job.current_phase else ""
            print(f"    {label}: {job.status}{phase} ({job.progress:.0f}%)")
            last = state
        if job.done:
            return job
        await asyncio.sleep(0.01)


class QueryLoad:
    """Queries without pause from a thread while the index is swapped under it."""

    def __init__(self, client: MossClient) -> None:
        self.client = client
        self.latencies_ms: list[tuple[float, int]] = []  # (latency, version answered)
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        texts = [q[1] for q in QUERIES]
        i = 0
        while not self._stop.is_set():
            try:
                started = time.perf_counter()
                self.client.query_local(INDEX, texts[i % len(texts)], QueryOptions(top_k=5))
                self.latencies_ms.append(((time.perf_counter() - started) * 1000, self.client.get_loaded_version(INDEX)))
            except Exception:  # counted, and shown in the summary
                self.errors += 1
            i += 1
            time.sleep(0.001)

    def __enter__(self) -> QueryLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def run(home: Path, model_id: str, *, kept: bool = False) -> None:
    docs = load_sample()
    later = [d for d in docs if d.id.startswith("prod-")][-HELD_BACK:]
    first = [d for d in docs if d not in later]
    summary: list[tuple[str, str]] = []
    client = MossClient("demo", "demo-key", cache_path=home)

    print(f"1. create_index({INDEX!r}) with {len(first)} documents, model {model_id}")
    started = time.perf_counter()
    job = await client.create_index(INDEX, first, model_id=model_id)
    await follow_job(client, job.job_id, "build")
    summary.append(("build", f"{len(first)} docs in {time.perf_counter() - started:.1f} s"))

    print("\n2. load_index(auto_refresh=True): download, verify, hydrate")
    started = time.perf_counter()
    info = await client.load_index(INDEX, auto_refresh=True, polling_interval_in_seconds=5)
    load_ms = (time.perf_counter() - started) * 1000
    print(f"    version {info.version}, {info.doc_count} docs, {load_ms:.0f} ms -> {info.path}")
    summary.append(("load_index", f"v{info.version} in {load_ms:.0f} ms"))

    print("\n3. queries, served locally")
    for kind, text, options in QUERIES:
        result = await client.query(INDEX, text, options)
        print(f"  [{kind}] {text!r}  {result.time_taken_ms:.2f} ms")
        for doc in result.docs:
            print(f"      {doc.score:.3f}  {doc.id:<24} {doc.text[:64]}")

    print(f"\n4. while queries run, a mutation adds {len(later)} and deletes 5 documents")
    swaps: list[SwapEvent] = []
    client.on_swap(swaps.append)
    with QueryLoad(client) as load:
        await asyncio.sleep(0.3)  # a baseline with no swap
        added = await client.add_docs(INDEX, later)
        await follow_job(client, added.job_id, "add_docs")
        deleted = await client.delete_docs(INDEX, [d.id for d in first[:5]])
        await follow_job(client, deleted.job_id, "delete_docs")
        for _ in range(500):  # the embedded service's manifest watch swaps at once
            if client.get_loaded_version(INDEX) == 3:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
    before = [ms for ms, version in load.latencies_ms if version == 1]
    after = [ms for ms, version in load.latencies_ms if version > 1]
    for event in swaps:
        print(f"    hot swap v{event.old_version} -> v{event.new_version} in {event.duration_ms:.1f} ms")
    print(f"    {len(load.latencies_ms)} queries, {load.errors} failed; p50 {statistics.median(before):.2f} ms "
          f"before the swaps, {statistics.median(after or before):.2f} ms after, p99 overall "
          f"{percentile([ms for ms, _ in load.latencies_ms], 99):.2f} ms")
    count = f"{len(swaps)} swap{'' if len(swaps) == 1 else 's'}"
    summary.append(("hot swap", f"v{info.version} -> v{client.get_loaded_version(INDEX)}, {count}"))
    summary.append(("queries during swaps", f"{len(load.latencies_ms)} run, {load.errors} failed"))

    await demo_session(client, home, summary)
    path = client.loaded_index(INDEX).path
    await client.close()

    print("\nsummary")
    width = max(len(k) for k, _ in summary)
    for key, value in summary:
        print(f"  {key:<{width}}  {value}")
    if not kept:
        print("\n(the demo's files are temporary: `python -m mosslite.demo --keep DIR` keeps them)")
        return
    print("\ninspect the index file with sqlite3:")
    print(f"  sqlite3 {path} 'SELECT key, value FROM meta'")
    print(f"  sqlite3 {path} \".load {vec_extension_path()}\" 'SELECT count(*) FROM docs_vec'")


async def demo_session(client: MossClient, home: Path, summary: list[tuple[str, str]]) -> None:
    if not hasattr(client, "session"):
        return
    print("\n5. a session: local, durable, queryable; pushed as a diff")
    session = await client.session("demo-call-42")
    notes = [
        DocumentInfo(id="note-1", text="Customer says the Summit II headphones crackle on the left side."),
        DocumentInfo(id="note-2", text="Offered a replacement under warranty; customer prefers a refund."),
    ]
    await session.add_docs(notes)
    hit = (await session.query("what is wrong with the headphones", QueryOptions(top_k=1))).docs[0]
    print(f"    added {len(notes)} notes; query -> {hit.id}: {hit.text[:60]}")
    pushed = await session.push_index()
    await client.wait_for_job(pushed.job_id)
    print(f"    push_index -> job {pushed.job_id} ({pushed.doc_count} docs)")
    await session.close()  # one agent at a time holds a session's local database
    async with MossClient("demo", "demo-key", cache_path=home) as other:
        resumed = await other.session("demo-call-42")
        print(f"    a fresh client resumes the session: {resumed.doc_count} docs")
        summary.append(("session", f"pushed {pushed.doc_count}, resumed elsewhere with {resumed.doc_count}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="moss-minilm", help="embedder model id (default: moss-minilm)")
    parser.add_argument("--keep", type=Path, help="keep the demo's data in this folder instead of a temporary one")
    args = parser.parse_args()
    if args.keep:
        asyncio.run(run(args.keep, args.model, kept=True))
        return
    with tempfile.TemporaryDirectory(prefix="mosslite-demo-") as tmp:
        asyncio.run(run(Path(tmp), args.model))


if __name__ == "__main__":
    main()
