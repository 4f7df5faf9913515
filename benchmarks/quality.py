"""Retrieval quality of mosslite on BEIR SciFact (test split): nDCG@10 and Recall@100.

Run:  .venv/bin/python benchmarks/quality.py [--model moss-minilm|hashed-ngrams-256] [--data DIR]

What is measured
----------------
- The 5,183 SciFact abstracts are indexed with ``build_version``: id = ``_id``,
  text = ``(title + " " + text).strip()`` (BEIR's and MTEB's document string),
  embedded by ``--model`` (default moss-minilm, all-MiniLM-L6-v2).
- Each of the 300 test claims (the query ids of ``qrels/test.tsv``) is asked with
  ``reader.query(claim, QueryOptions(top_k=100, alpha=a))``: alpha 0.0 is keyword
  only (BM25 as FTS5 scores it, from the postings), 1.0 is vector only, values between are mosslite's
  hybrid score (``mosslite/index/ranking.py``); 0.8 is the library default.
- nDCG@10: graded gains from the qrels (SciFact's are all 1), discount
  1/log2(rank + 1), divided by the DCG of the ideal ranking built from the
  qrels, i.e. trec_eval's ``ndcg_cut_10`` as used by BEIR. Recall@100: relevant
  documents found in the top 100 / relevant documents. Both are averaged over
  the 300 queries (a query finding nothing scores 0).
- p50 ms: median ``reader.query`` time per claim at top_k=100, with the claim's
  embedding already cached (retrieval alone).
- Embedding throughput: documents embedded per second during the cold build
  (the builder's "generating_embeddings" phase); build = the rest of
  ``build_version`` (SQLite inserts, FTS5 and vec0 indexing, compaction).

Caching: the corpus embeddings are stored as ``.npy`` (with a ``.json`` of the
cold run's timings) in ``~/.cache/mosslite-bench/``, keyed by model id and the
sha256 of ``corpus.jsonl``. A re-run builds the index from those vectors (the
stored model id stays the model's, so queries are still embedded by it) and
takes seconds; its table repeats the throughput recorded by the cold run.

Reference figures (``baselines.json`` beside the data): BM25 0.665 (BEIR paper),
all-MiniLM-L6-v2 0.6451 (MTEB). Targets (informational; exit code is 0 either
way): keyword >= 0.67, hybrid >= 0.70.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Stopwatch,
    cache_dir,
    load_average,
    machine_summary,
    print_table,
    verdict,
    wait_for_quiet,
)

import mosslite  # noqa: E402
from mosslite import DocumentInfo, IndexReader, QueryOptions, Version, build_version, get_embedder  # noqa: E402
from mosslite._db import connect  # noqa: E402
from mosslite._fs import sha256_file  # noqa: E402
from mosslite.index.apply_batch import PHASE_BUILDING, PHASE_EMBEDDING  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/scifact")
BM25_PUBLISHED = 0.665  # BEIR paper, Table 2 (Elasticsearch)
MINILM_PUBLISHED = 0.6451  # MTEB, all-MiniLM-L6-v2
KEYWORD_TARGET = 0.67
HYBRID_TARGET = 0.70
DEFAULT_ALPHA = mosslite.DEFAULT_ALPHA
SWEEP = (0.3, 0.5, 0.7, 0.8, 0.9)
NDCG_K = 10
RECALL_K = 100


# -- metrics -------------------------------------------------------------------


def ndcg_at_k(ranking: Sequence[str], rels: Mapping[str, int], k: int = NDCG_K) -> float:
    """trec_eval ``ndcg_cut_k``: linear gains, 1/log2(rank+1) discount, ideal from the qrels."""
    dcg = sum(rels.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranking[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(rank + 2) for rank, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], rels: Mapping[str, int], k: int = RECALL_K) -> float:
    relevant = {doc for doc, r in rels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def self_test() -> None:
    """The metrics against hand-computed values (run on every invocation; it is instant)."""
    rels = {"a": 3, "b": 2, "c": 1}
    # ranking c, x, a, b at k=3: DCG = 1/log2(2) + 0 + 3/log2(4) = 1 + 1.5 = 2.5
    # ideal a, b, c:             IDCG = 3/1 + 2/log2(3) + 1/log2(4) = 3 + 1.2618595 + 0.5 = 4.7618595
    got = ndcg_at_k(["c", "x", "a", "b"], rels, k=3)
    assert abs(got - 2.5 / 4.7618595) < 1e-6, got  # 0.5250078
    assert abs(ndcg_at_k(["a", "b", "c"], rels, k=3) - 1.0) < 1e-12
    assert ndcg_at_k(["x", "y"], rels) == 0.0
    # binary, SciFact-like: one relevant doc at rank 2 -> 1/log2(3) = 0.6309298
    assert abs(ndcg_at_k(["x", "d"], {"d": 1}) - 0.6309298) < 1e-6
    # two relevant, one found at rank 1, k=10: 1 / (1 + 1/log2(3)) = 0.6131472
    assert abs(ndcg_at_k(["d", "x"], {"d": 1, "e": 1}) - 0.6131472) < 1e-6
    assert recall_at_k(["a", "x", "c"], rels, k=2) == 1 / 3
    assert recall_at_k(["a", "x", "c"], rels, k=3) == 2 / 3


# -- data ----------------------------------------------------------------------


@dataclass(frozen=True)
class SciFact:
    doc_ids: list[str]
    doc_texts: list[str]
    queries: dict[str, str]  # test query id -> claim, in qrels order
    qrels: dict[str, dict[str, int]]
    corpus_sha256: str


def load_scifact(folder: Path) -> SciFact:
    corpus_path = folder / "corpus.jsonl"
    doc_ids, doc_texts = [], []
    with open(corpus_path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                doc_ids.append(str(rec["_id"]))
                doc_texts.append((rec.get("title", "") + " " + rec.get("text", "")).strip())
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / "test.tsv", encoding="utf-8", newline="") as fh:
        next(fh)  # header
        for line in fh:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) == 3:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    all_queries: dict[str, str] = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                all_queries[str(rec["_id"])] = rec["text"]
    missing = [q for q in qrels if q not in all_queries]
    if missing:
        raise SystemExit(f"{len(missing)} qrels query ids are not in queries.jsonl, e.g. {missing[:3]}")
    return SciFact(doc_ids, doc_texts, {q: all_queries[q] for q in qrels}, qrels, sha256_file(corpus_path))


# -- index (with cached embeddings) -------------------------------------------------


@dataclass
class BuildFacts:
    cached: bool
    build_s: float  # this run's build_version, seconds
    embed_s: float | None  # this run's embedding phase (None when cached)
    cold: dict[str, Any] | None  # the cold run's record (from the .json beside the .npy)


def cache_key(model_id: str, corpus_sha256: str) -> str:
    return f"scifact-{model_id}-{corpus_sha256[:16]}"


def build_index(data: SciFact, model_id: str, target: Path) -> BuildFacts:
    embedder = get_embedder(model_id)
    npy = cache_dir() / f"{cache_key(model_id, data.corpus_sha256)}.npy"
    record_path = npy.with_suffix(".json")
    if npy.exists():
        vectors = np.load(npy)
        record = json.loads(record_path.read_text()) if record_path.exists() else None
        if vectors.shape != (len(data.doc_ids), embedder.dimension):
            raise SystemExit(f"{npy} has shape {vectors.shape}; delete it to re-embed")
        docs = [DocumentInfo(id=i, text=t, embedding=v) for i, t, v in zip(data.doc_ids, data.doc_texts, vectors)]
        with Stopwatch() as sw:
            build_version(target, embedder=embedder, index_name="scifact", version=Version(1), upserts=docs)
        return BuildFacts(cached=True, build_s=sw.seconds, embed_s=None, cold=record)

    marks: dict[str, float] = {}
    last_report = [0.0]

    def progress(phase: str, pct: float) -> None:
        now = time.perf_counter()
        marks.setdefault(phase, now)
        if phase == PHASE_EMBEDDING and (pct - last_report[0] >= 10.0 or pct >= 100.0):
            last_report[0] = pct
            elapsed = now - marks[PHASE_EMBEDDING]
            print(f"  embedding {pct:5.1f}%  {elapsed:7.1f} s", file=sys.stderr, flush=True)

    docs = [DocumentInfo(id=i, text=t) for i, t in zip(data.doc_ids, data.doc_texts)]
    print(f"embedding {len(docs):,} documents with {model_id} (cold run; cached afterwards) ...", file=sys.stderr, flush=True)
    with Stopwatch() as sw:
        build_version(target, embedder=embedder, index_name="scifact", version=Version(1), upserts=docs, progress=progress)
    embed_s = marks.get(PHASE_BUILDING, time.perf_counter()) - marks.get(PHASE_EMBEDDING, 0.0)

    # Read the stored vectors back (they are what the index holds) and cache them in corpus order.
    conn = connect(target, immutable=True, vec=True)  # each vector is stored once, in vec0
    try:
        stored = dict(conn.execute("SELECT docs.id, docs_vec.embedding FROM docs JOIN docs_vec USING (rowid)"))
    finally:
        conn.close()
    vectors = np.stack([np.frombuffer(stored[i], dtype="<f4") for i in data.doc_ids]).astype(np.float32)
    record = {
        "model_id": model_id,
        "corpus_sha256": data.corpus_sha256,
        "docs": len(docs),
        "dimension": int(vectors.shape[1]),
        "embed_s": embed_s,
        "docs_per_s": len(docs) / embed_s if embed_s > 0 else None,
        "build_s": sw.seconds,
        "index_s": sw.seconds - embed_s,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_summary(),
        "load_at_end": load_average(),
        "mosslite": mosslite.__version__,
    }
    tmp = npy.with_name(npy.name + ".tmp.npy")
    np.save(tmp, vectors)
    os.replace(tmp, npy)
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return BuildFacts(cached=False, build_s=sw.seconds, embed_s=embed_s, cold=record)


# -- evaluation ------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    alpha: float
    ndcg: float
    recall: float
    p50_ms: float


def evaluate(reader: IndexReader, data: SciFact, alpha: float) -> Scores:
    ndcgs, recalls, times = [], [], []
    for qid, text in data.queries.items():
        started = time.perf_counter()
        result = reader.query(text, QueryOptions(top_k=RECALL_K, alpha=alpha))
        times.append((time.perf_counter() - started) * 1000.0)
        ranking = [d.id for d in result.docs]
        ndcgs.append(ndcg_at_k(ranking, data.qrels[qid]))
        recalls.append(recall_at_k(ranking, data.qrels[qid]))
    return Scores(alpha, float(np.mean(ndcgs)), float(np.mean(recalls)), statistics.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="moss-minilm", help="embedder model id (moss-minilm, hashed-ngrams-256)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BEIR scifact folder")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to SECONDS for the 1-min load average to drop below --max-load")
    parser.add_argument("--max-load", type=float, default=1.0)
    args = parser.parse_args(argv)

    self_test()
    wait_for_quiet(args.max_load, args.wait_quiet)
    print(f"mosslite {mosslite.__version__} quality on BEIR SciFact (test); {machine_summary()}")
    data = load_scifact(args.data)
    n_qrels = sum(len(v) for v in data.qrels.values())
    print(f"{len(data.doc_ids):,} docs, {len(data.queries)} test queries, {n_qrels} qrels; model {args.model}")
    print(f"at start: {load_average()}")

    with tempfile.TemporaryDirectory(prefix="mosslite-quality-") as tmp:
        index_file = Path(tmp) / Version(1).filename()
        facts = build_index(data, args.model, index_file)
        reader = IndexReader(index_file)
        reader.wait_ready()
        assert reader.meta.model_id == args.model, reader.meta

        # Embed every claim once (cold), timed; the evaluations below then hit the query cache.
        embed_ms = []
        for text in data.queries.values():
            started = time.perf_counter()
            reader.embedder.embed_query(text)
            embed_ms.append((time.perf_counter() - started) * 1000.0)

        results = {a: evaluate(reader, data, a) for a in sorted({0.0, 1.0, DEFAULT_ALPHA, *SWEEP})}
        reader.close()

    minilm = args.model == "moss-minilm"
    rows = []

    def add(label: str, s: Scores, reference: str, target: float | None) -> None:
        rows.append(
            [
                label,
                f"{s.alpha:.1f}",
                f"{s.ndcg:.4f}",
                f"{s.recall:.4f}",
                f"{s.p50_ms:.1f}",
                reference,
                f">={target:.2f}" if target is not None else "",
                verdict(s.ndcg >= target if target is not None else None),
            ]
        )

    add("keyword (BM25, porter)", results[0.0], f"BM25 (BEIR paper) {BM25_PUBLISHED:.3f}", KEYWORD_TARGET)
    add(f"vector ({args.model})", results[1.0], f"MiniLM (MTEB) {MINILM_PUBLISHED:.4f}" if minilm else "", None)
    add("hybrid, default alpha", results[DEFAULT_ALPHA], "", HYBRID_TARGET)
    for a in SWEEP:
        add("hybrid sweep", results[a], "", HYBRID_TARGET)
    print_table(
        f"== nDCG@{NDCG_K} / Recall@{RECALL_K}, {len(data.queries)} queries ==",
        ["mode", "alpha", f"nDCG@{NDCG_K}", f"R@{RECALL_K}", "p50 ms", "published", "target", ""],
        rows,
        align="lrrrrlll",
    )

    cold = facts.cold or {}
    if facts.cached:
        when = f"cached; cold run {cold.get('measured_at', '?')}" if cold else "cached; no cold-run record"
        if cold.get("load_at_end"):
            when += f", {cold['load_at_end'].split(' (')[0]}"
        build_rows = [
            ["embedding (cold run, recorded)", _s(cold.get("embed_s")), _rate(cold.get("docs_per_s")), when],
            ["build incl. embedding (cold run)", _s(cold.get("build_s")), "", when],
            ["build from cached embeddings (this run)", _s(facts.build_s), _rate(len(data.doc_ids) / facts.build_s), "vectors supplied"],
        ]
    else:
        build_rows = [
            ["embedding (this run)", _s(facts.embed_s), _rate(cold.get("docs_per_s")), "cold"],
            ["index writing (this run)", _s(cold.get("index_s")), "", "inserts, FTS5, vec0, optimize"],
            ["build incl. embedding (this run)", _s(facts.build_s), "", "cached for next time"],
        ]
    q = np.percentile(embed_ms, [50, 95, 99])
    build_rows.append(["query embedding (300 claims, cold)", "", "", f"p50 {q[0]:.1f} / p95 {q[1]:.1f} / p99 {q[2]:.1f} ms"])
    print_table(f"== build: {len(data.doc_ids):,} docs, {args.model} ==", ["step", "seconds", "docs/s", "note"], build_rows, align="lrrl")
    print()
    print(f"at end: {load_average()}. Quality figures do not depend on load; timings do.")
    print("PASS/MISS is informational.")
    return 0


def _s(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def _rate(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


if __name__ == "__main__":
    sys.exit(main())
