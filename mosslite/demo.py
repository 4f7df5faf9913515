"""`make demo`: build an index from the bundled sample and query it locally.

Runs on the embedded default (moss-minilm, no server, no network): it builds a
version file from ``mosslite/data/sample_docs.jsonl``, hydrates a reader, and
prints keyword, semantic, hybrid and filtered queries with their timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

from . import DocumentInfo, IndexReader, QueryOptions, Version, build_version, get_embedder
from ._db import vec_extension_path

SAMPLE = "sample_docs.jsonl"

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


def run(workdir: Path, model_id: str) -> None:
    docs = load_sample()
    embedder = get_embedder(model_id)
    path = workdir / "sample" / Version(1).filename()
    started = time.perf_counter()
    report = build_version(path, embedder=embedder, index_name="sample", version=Version(1), upserts=docs)
    build_s = time.perf_counter() - started
    print(f"built {report.meta.doc_count} docs with {model_id} in {build_s:.1f} s -> {path} ({report.size_bytes / 1e6:.1f} MB)")

    started = time.perf_counter()
    reader = IndexReader(path)
    print(f"hydrated version {reader.version} in {(time.perf_counter() - started) * 1000:.1f} ms\n")

    for kind, text, options in QUERIES:
        result = reader.query(text, options)
        print(f"[{kind}] {text!r}  alpha={options.alpha}  {result.time_taken_ms:.2f} ms")
        for doc in result.docs:
            print(f"    {doc.score:.3f}  {doc.id:<24} {doc.text[:70]}")
        print()

    # Warm timings: the query embedding is cached after the first call.
    timings = [reader.query(text, options).time_taken_ms for _ in range(20) for _, text, options in QUERIES]
    print(f"warm query latency over {len(timings)} queries: p50 {statistics.median(timings):.2f} ms, "
          f"max {max(timings):.2f} ms")
    print("\ninspect it yourself:")
    print(f"    sqlite3 {path} 'SELECT key, value FROM meta'")
    print(f"    sqlite3 {path} \".load {vec_extension_path()}\" 'SELECT count(*) FROM docs_vec'")
    reader.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="moss-minilm", help="embedder model id (default: moss-minilm)")
    parser.add_argument("--keep", type=Path, help="build into this folder instead of a temporary one")
    args = parser.parse_args()
    if args.keep:
        run(args.keep, args.model)
        return
    with tempfile.TemporaryDirectory(prefix="mosslite-demo-") as tmp:
        run(Path(tmp), args.model)


if __name__ == "__main__":
    main()
