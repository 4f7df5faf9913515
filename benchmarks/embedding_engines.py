"""moss-minilm's two engines, onnxruntime and numpy, in one process: query latency, batch throughput, load time.

Run:  .venv/bin/python benchmarks/embedding_engines.py [--queries N] [--batches N] [--ort-threads 1,2] [--quick]

What is measured
----------------
Each engine is a ``MiniLMEmbedder(engine=...)``: the same tokeniser, batching
and normalisation, only the forward pass differs. Engines take turns in
blocks (``time_in_blocks``: a few calls of one, then of the next), so load
from other processes hits every engine alike and the ratios stay meaningful on
a shared machine. Not call by call (``time_interleaved``): numpy's OpenBLAS
threads keep spin-waiting for a while after a matmul, and on 2 cores that
took a core from whichever engine ran next (onnxruntime queries measured
~22 ms instead of ~6 ms), so each turn starts after a short pause.

- query: ``embed_query(text)`` for distinct ~20-word English queries, so the
  query cache never hits (cold): one text, batch of 1. p50/p95/p99 in ms.
- 32 x ~100 tokens / 32 x 256 tokens: ``embed(docs)`` of 32 documents of
  ~98 words (~100 tokens) or of ~300 words (truncated to 256 tokens), the
  same 32 on every call. ms per call, and docs/s at the p50.
- "vs numpy" is the row's p50 over the numpy engine's p50 (below 1.00x is faster).
- load: ``MiniLMEmbedder(engine=...).load()`` with the sha256 already checked
  (it is checked once per process; its own row shows the cost), and for
  onnxruntime the import of its packages (in a fresh interpreter), the graph
  build, serialisation and session creation alone.

``--ort-threads 1,2`` adds one onnxruntime engine per intra-op thread count
(default: the library's own setting). The load average is printed before and
after; on a busy machine the figures describe the machine, not the engines
(``--wait-quiet SECONDS --max-load L`` waits for a quieter one first).

Target (informational, as everywhere): query p50 <= 10 ms.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ENGLISH,
    Percentiles,
    Stopwatch,
    distinct_texts,
    fmt_ms,
    load_average,
    machine_summary,
    print_table,
    verdict,
    wait_for_quiet,
)

from mosslite.embeddings.minilm import MiniLMEmbedder, checkpoint, onnx_engine  # noqa: E402

EMBED_P50_MS = 10.0
QUERY_WORDS = 20
DOC_WORDS = {"32 x ~100 tokens": 98, "32 x 256 tokens": 300}
DOCS_PER_BATCH = 32
#: Calls per turn: ~0.3 s of queries, ~3 batches.
QUERY_BLOCK = 25
BATCH_BLOCK = 3
#: Pause before each turn, so OpenBLAS threads spinning after numpy's last matmul have stopped.
SETTLE_S = 0.2



def time_in_blocks(
    calls: dict[str, tuple[Callable[[Any], Any], Sequence[Any]]], *, block: int, settle_s: float = SETTLE_S
) -> dict[str, list[float]]:
    """Milliseconds per call, ``block`` inputs of one series at a time, round-robin over the series.

    Inputs ``[i, i + block)`` of every series run before ``i + block`` of any,
    and each turn starts after ``settle_s`` of sleep, so threads the previous
    series left spinning have stopped (see the module docstring for why not
    call by call, as ``time_interleaved`` does).
    """
    lengths = {len(inputs) for _, inputs in calls.values()}
    if len(lengths) != 1:
        raise ValueError(f"series have different lengths: {lengths}")
    (count,) = lengths
    gc.collect()
    out: dict[str, list[float]] = {name: [] for name in calls}
    clock = time.perf_counter
    for start in range(0, count, block):
        for name, (fn, inputs) in calls.items():
            time.sleep(settle_s)
            for x in inputs[start : start + block]:
                started = clock()
                fn(x)
                out[name].append((clock() - started) * 1000.0)
    return out


def import_ms() -> float:
    """What the first onnxruntime embed pays to import its two packages (here they are loaded already)."""
    code = "import time, numpy; t = time.perf_counter(); import onnx, onnxruntime; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout) * 1000


def load_engines(ort_threads: list[int | None]) -> tuple[dict[str, MiniLMEmbedder], list[list[str]]]:
    """One loaded embedder per engine (numpy first), and the load-time table rows."""
    rows: list[list[str]] = [["import onnx + onnxruntime (fresh interpreter, numpy already loaded)", fmt_ms(import_ms(), 0)]]
    with Stopwatch() as verify:
        tensors = checkpoint.load_tensors(checkpoint.locate_model_dir())
    rows.append(["sha256 check + read safetensors (once per process)", fmt_ms(verify.seconds * 1000, 0)])
    with Stopwatch() as build:
        model = onnx_engine.build_graph(tensors)
    with Stopwatch() as serialize:
        serialized = model.SerializeToString()
    with Stopwatch() as session:
        onnx_engine.ort.InferenceSession(serialized, onnx_engine.session_options(), providers=["CPUExecutionProvider"])
    del model, serialized, tensors
    rows.append(["onnxruntime: build graph (onnx helper, in memory)", fmt_ms(build.seconds * 1000, 0)])
    rows.append(["onnxruntime: serialise graph", fmt_ms(serialize.seconds * 1000, 0)])
    rows.append(["onnxruntime: create InferenceSession", fmt_ms(session.seconds * 1000, 0)])

    def timed_load(name: str, embedder: MiniLMEmbedder) -> None:
        with Stopwatch() as load:
            embedder.load()
        embedders[name] = embedder
        rows.append([f"{name}: MiniLMEmbedder.load() (tokenizer + engine)", fmt_ms(load.seconds * 1000, 0)])

    embedders: dict[str, MiniLMEmbedder] = {}
    timed_load("numpy", MiniLMEmbedder(engine="numpy"))
    default_threads = onnx_engine.INTRA_OP_THREADS
    try:
        for threads in ort_threads:
            # The engine reads this module setting when it creates its session.
            onnx_engine.INTRA_OP_THREADS = threads or default_threads
            count = onnx_engine.INTRA_OP_THREADS
            timed_load(f"onnxruntime ({count} thread{'s' if count > 1 else ''})", MiniLMEmbedder(engine="onnxruntime"))
    finally:
        onnx_engine.INTRA_OP_THREADS = default_threads
    return embedders, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=None, help="query calls per engine (default 400, 100 with --quick)")
    parser.add_argument("--batches", type=int, default=None, help="batch calls per engine and size (default 9, 3 with --quick)")
    parser.add_argument("--ort-threads", default="", help="comma-separated intra-op thread counts, one onnxruntime engine each")
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to SECONDS for the 1-min load average to drop below --max-load")
    parser.add_argument("--max-load", type=float, default=1.0)
    args = parser.parse_args(argv)
    queries = args.queries or (100 if args.quick else 400)
    batches = args.batches or (3 if args.quick else 9)
    ort_threads: list[int | None] = [int(t) for t in args.ort_threads.split(",") if t.strip()] or [None]

    wait_for_quiet(args.max_load, args.wait_quiet)
    print(f"moss-minilm engines; {machine_summary()}; onnxruntime {onnx_engine.ort.__version__}")
    print(f"{queries} queries, {batches} batch calls per engine and size, seed {args.seed}")
    print(f"at start: {load_average()}")
    embedders, load_rows = load_engines(ort_threads)

    rng = np.random.default_rng(args.seed)
    query_texts = distinct_texts(rng, ENGLISH, queries, QUERY_WORDS)
    batch_docs = {label: distinct_texts(rng, ENGLISH, DOCS_PER_BATCH, words) for label, words in DOC_WORDS.items()}
    probe = next(iter(embedders.values()))
    tokens = {label: np.mean([len(ids) for ids in probe.tokenize(docs)]) for label, docs in batch_docs.items()}
    query_tokens = np.mean([len(ids) for ids in probe.tokenize(query_texts)])

    # Same vectors from every engine: the cosine of each query's vectors against numpy's.
    sample = query_texts[:20] + [doc for docs in batch_docs.values() for doc in docs[:4]]
    reference = embedders["numpy"].embed(sample)
    parity = {name: float(np.einsum("ij,ij->i", e.embed(sample), reference).min()) for name, e in embedders.items()}

    series: dict[str, dict[str, Percentiles]] = {}
    query_ms = time_in_blocks({name: (e.embed_query, query_texts) for name, e in embedders.items()}, block=QUERY_BLOCK)
    series[f"query, ~{QUERY_WORDS} words ({query_tokens:.0f} tokens), cold, batch 1"] = {
        name: Percentiles.of(ms) for name, ms in query_ms.items()
    }
    for label, docs in batch_docs.items():
        for e in embedders.values():
            e.embed(docs[:8])  # warm-up, untimed: first use of these lengths
        calls = {name: (e.embed, [docs] * batches) for name, e in embedders.items()}
        batch_ms = time_in_blocks(calls, block=BATCH_BLOCK)
        series[f"{label} (mean {tokens[label]:.0f})"] = {name: Percentiles.of(ms) for name, ms in batch_ms.items()}
    print(f"after measuring: {load_average()}")

    rows = []
    for what, by_engine in series.items():
        base = by_engine["numpy"].p50
        is_query = what.startswith("query")
        for name, stats in by_engine.items():
            docs_per_s = "" if is_query else f"{DOCS_PER_BATCH / stats.p50 * 1000:.1f}"
            ok = stats.p50 <= EMBED_P50_MS if is_query else None
            rows.append([
                what, name, str(stats.n), fmt_ms(stats.p50, 2), fmt_ms(stats.p95, 2), fmt_ms(stats.p99, 2), docs_per_s,
                f"{stats.p50 / base:.2f}x", f"p50<={EMBED_P50_MS:g}ms" if is_query else "", verdict(ok),
            ])
    print_table(
        "== moss-minilm: ms per call, engines taking turns ==",
        ["measurement", "engine", "n", "p50 ms", "p95 ms", "p99 ms", "docs/s (p50)", "vs numpy", "target", ""],
        rows,
        align="llrrrrrrll",
    )
    print_table("== load (once per process) ==", ["step", "ms"], load_rows)
    print_table(
        f"== parity: min cosine vs the numpy engine over {len(sample)} texts ==",
        ["engine", "min cosine"],
        [[name, f"{cos:.7f}"] for name, cos in parity.items()],
    )
    print()
    print("PASS/MISS is informational. 'vs numpy' below 1.00x means faster than the numpy engine.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
