"""Footprint: build time, bytes on disk, fresh-process open + first query, RSS, import time.

Run:  .venv/bin/python benchmarks/footprint.py [--sizes 10000,100000] [--reps 5] [--keep] [--tmp DIR] [--quick]
      (1M documents only when asked: --sizes 10000,100000,1000000; allow the disk and the time)

Prints tables; not a timed test. Everything goes through the public API
(``from mosslite import ...``), embedded mode (no server): ``SyncMossClient(project,
key, cache_path=<temp dir>)``, whose data folder is that temp dir.

The corpus (fixed seed; document i is the same at every size)
-----------------------------------------------------------
- Vectors: 384-d float32 unit vectors, 200 Gaussian cluster centres on the
  sphere; a document is its centre plus isotropic noise of the same norm,
  normalised (cos to its centre ~0.7), supplied to the ``custom`` model.
- Text: 12 words, Zipf-Mandelbrot frequencies over a 20k vocabulary whose
  head is common English (``_common.ENGLISH``) and whose tail is pronounceable
  pseudo-words; a quarter of the words come from a 50-word topic list of the
  document's cluster. Metadata: ``category`` (10 values).
- Generated in blocks of 4096 documents (one RNG per block), so the generator
  holds one block at a time, also at 1M. ``create_index`` gets a generator of
  ``DocumentInfo``, not a list (a library that streams can stay bounded); if
  the library refused an iterator, the script would fall back to a list,
  timed, and print a note.
- The query: 4 words of document 7 and a vector near it (cos ~0.9), written
  to a JSON file that every child reads before its clock starts.

What is measured, per size
--------------------------
1. build: a child process (this script, hidden ``--child`` mode, one per size,
   so each build starts from a fresh process) calls ``create_index(name, docs,
   model_id="custom")`` and polls ``get_job_status`` every 50 ms until the job
   completes (then ``wait_for_job``, which returns at once). Wall time from
   the call to the completed status; includes drawing the corpus from the
   generator ("corpus generator alone" in the corpus table is that cost
   without ``DocumentInfo``). Peak RSS: ``ru_maxrss`` / ``VmHWM`` of the child.
   The job's status/phase changes seen by the poller are printed as a timeline.
2. bytes, after the job: the catalog (``<home>/service/catalog.sqlite`` + -wal
   + -shm), the newest version file (``<home>/service/storage/<project>/<index>/``,
   cross-checked against ``load_index(...).path``), the retained version files
   (every ``*.sqlite`` in the service storage), and the whole data folder
   (apparent sizes, each inode once: files may be hard-linked). MB = 10^6 bytes.
3. fresh-process open + first query, ``--reps`` child processes (median): the
   child times ``import numpy`` and then ``import mosslite`` (reported apart),
   builds the client (``client init``, reported apart, not in the headline),
   then times ``client.load_index(name)`` + one ``client.query(name, text,
   QueryOptions(top_k=5, embedding=vec))`` (hybrid, default alpha) on the
   built index (same cache_path). RSS after open = ``VmRSS`` after that query,
   once it stops growing (a large index makes its 8-bit search ready on a
   thread of its own after it opens; that memory counts).
   The first child loads into an empty client cache; the others reuse it.
   Files are in the OS page cache (built moments before; ``os.sync()`` first).
4. ``import mosslite`` in a fresh ``python -c`` process after ``import numpy``
   (numpy's time excluded), median of ``--reps``.
5. Baselines, same vectors and texts, same run:
   - numpy: ``np.save`` of the float32 matrix (the "build"; generation not
     timed; no fsync), the .npy size, then per child ``np.load`` + ``M @ q`` +
     ``argpartition`` top 5.
   - sqlite-vec: one SQLite file (apsw + the sqlite_vec extension) with
     ``docs(rowid, text, category)``, an external-content FTS5 table over the
     text (porter unicode61 remove_diacritics 2, as the library's), and
     ``vec0(embedding float[384] distance_metric=cosine)``, inserted in one
     transaction (generation time subtracted); per child: open + load the
     extension + one ``SELECT rowid, distance FROM v WHERE embedding MATCH ?
     AND k = 5``.
   The open children of the three take turns (mosslite, numpy, sqlite-vec,
   mosslite, ...), so a burst of load from other processes hits all of them.

Targets (informational; the script always exits 0)
--------------------------------------------------
- build: 100k <= 20 s; 1M: completes, with peak build RSS <= 3 GB.
- version file <= 1.4 x (float32 vector bytes n*384*4 + UTF-8 text bytes).
- data folder after the job <= 1.05 x the retained version files + 1 MB.
- open + first query: <= 30 ms at 10k, <= 200 ms at 100k, and <= 4x the
  numpy np.load + query of the same run (1M: reported, no target).
- RSS after opening 100k <= 2x its float32 vector bytes.
- import mosslite <= 100 ms (numpy excluded).

Options: ``--sizes``, ``--reps`` (default 5), ``--seed``, ``--keep`` (keep the
temp folders and print where), ``--tmp DIR`` (where they go; default the
system temp dir), ``--quick`` (sizes 2000,5000, reps 3).
"""

from __future__ import annotations

# Only the standard library at module level: a child process times `import numpy`
# and `import mosslite` itself, and must not have either imported for it.
import argparse
import json
import os
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

DIM = 384
CLUSTERS = 200
VOCAB_SIZE = 20_000
TOPIC_WORDS = 50
TOPIC_SHARE = 0.25
DOC_NOISE = 1.0  # noise norm relative to the unit centre: cos(doc, centre) ~ 0.71
QUERY_NOISE = 0.45  # cos(query vector, its document) ~ 0.9
WORDS = 12
BLOCK = 4096
CATEGORIES = ("books", "music", "garden", "toys", "tools", "sports", "health", "kitchen", "office", "travel")
QUERY_DOC = 7
QUERY_WORDS = 4
TOP_K = 5

PROJECT = "bench"
PROJECT_KEY = "bench-key"
INDEX = "footprint"
MARKER = "FOOTPRINT-RESULT "
BUILD_TIMEOUT_S = 4 * 3600.0
OPEN_TIMEOUT_S = 600.0
POLL_S = 0.05

# targets
BUILD_S_100K = 20.0
PEAK_RSS_MB_1M = 3000.0
VERSION_VS_RAW = 1.4
FOLDER_VS_RETAINED = 1.05
FOLDER_SLACK_MB = 1.0
OPEN_MS = {10_000: 30.0, 100_000: 200.0}
OPEN_VS_NUMPY = 4.0
RSS_VS_VECTORS_100K = 2.0
IMPORT_MS = 100.0

MB = 1e6


# -- the corpus -------------------------------------------------------------------------------


def doc_id(i: int) -> str:
    return f"doc-{i:07d}"


class Corpus:
    """``n`` documents drawn block by block: block b is the same whatever ``n`` is."""

    def __init__(self, n: int, seed: int) -> None:
        import numpy as np

        from _common import ENGLISH, pseudo_words

        self.n = n
        self.seed = seed
        rng = np.random.default_rng([seed, 0])
        vocab = ENGLISH + pseudo_words(rng, VOCAB_SIZE - len(ENGLISH), set(ENGLISH))
        self.vocab = np.array(vocab, dtype=object)
        zipf = 1.0 / (np.arange(1, VOCAB_SIZE + 1, dtype=np.float64) + 2.7)  # Zipf-Mandelbrot, s = 1
        self.cdf = np.cumsum(zipf / zipf.sum())
        self.topics = np.stack(
            [rng.choice(np.arange(len(ENGLISH), VOCAB_SIZE), size=TOPIC_WORDS, replace=False) for _ in range(CLUSTERS)]
        )
        self.centres = _unit_rows(rng.standard_normal((CLUSTERS, DIM)))

    def block(self, b: int) -> tuple[int, Any, list[str], Any]:
        """(first document, float32 vectors, texts, category indexes) of block ``b``."""
        import numpy as np

        rng = np.random.default_rng([self.seed, 1, b])
        clusters = rng.integers(0, CLUSTERS, size=BLOCK)
        ids = np.minimum(np.searchsorted(self.cdf, rng.random((BLOCK, WORDS))), VOCAB_SIZE - 1)
        topical = rng.random((BLOCK, WORDS)) < TOPIC_SHARE
        picks = self.topics[clusters[:, None], rng.integers(0, TOPIC_WORDS, size=(BLOCK, WORDS))]
        ids = np.where(topical, picks, ids)
        noise = rng.standard_normal((BLOCK, DIM), dtype=np.float32) * np.float32(DOC_NOISE / np.sqrt(DIM))
        vectors = _unit_rows(self.centres[clusters] + noise)
        categories = rng.integers(0, len(CATEGORIES), size=BLOCK)
        start = b * BLOCK
        m = max(0, min(BLOCK, self.n - start))
        texts = [" ".join(row) for row in self.vocab[ids[:m]].tolist()]
        return start, vectors[:m], texts, categories[:m]

    def blocks(self):  # -> Iterator[tuple[int, ndarray, list[str], ndarray]]
        for b in range((self.n + BLOCK - 1) // BLOCK):
            yield self.block(b)

    def documents(self, stats: dict[str, int]):  # -> Iterator[DocumentInfo]
        """DocumentInfo one at a time; counts documents and text bytes into ``stats``."""
        from mosslite import DocumentInfo

        for start, vectors, texts, categories in self.blocks():
            for j, text in enumerate(texts):
                stats["docs"] += 1
                stats["text_bytes"] += len(text.encode("utf-8"))
                yield DocumentInfo(
                    id=doc_id(start + j),
                    text=text,
                    metadata={"category": CATEGORIES[int(categories[j])]},
                    embedding=vectors[j],
                )

    def query(self) -> dict[str, Any]:
        import numpy as np

        _, vectors, texts, _ = self.block(0)
        rng = np.random.default_rng([self.seed, 2])
        words = texts[QUERY_DOC].split()
        text = " ".join(words[i] for i in sorted(rng.choice(len(words), size=QUERY_WORDS, replace=False)))
        noise = rng.standard_normal(DIM).astype(np.float32) * np.float32(QUERY_NOISE / np.sqrt(DIM))
        vector = _unit_rows((vectors[QUERY_DOC] + noise)[None, :])[0]
        return {"doc": QUERY_DOC, "text": text, "vector": [float(x) for x in vector]}


def _unit_rows(m: Any) -> Any:
    import numpy as np

    m = np.asarray(m, dtype=np.float32)
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


# -- process measurements ---------------------------------------------------------------------


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for text in fh:
                if text.startswith(field + ":"):
                    return int(text.split()[1]) * 1024 / MB
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB  # KiB on Linux
    hwm = _status_mb("VmHWM")
    return max(peak, hwm or 0.0)


def rss_mb() -> float | None:
    return _status_mb("VmRSS")


def settled_rss_mb(step_s: float = 0.2, limit_s: float = 5.0) -> float | None:
    """VmRSS once it stops growing: a large index opens exact at once and makes its
    8-bit search ready on a thread beside the first queries; its memory counts."""
    rss = rss_mb()
    deadline = time.monotonic() + limit_s
    while rss is not None and time.monotonic() < deadline:
        time.sleep(step_s)
        now = rss_mb()
        if now is None or now <= rss + 0.5:
            return max(rss, now or 0.0)
        rss = now
    return rss


def emit(result: dict[str, Any]) -> None:
    print(MARKER + json.dumps(result), flush=True)


# -- child processes --------------------------------------------------------------------------


def child_build_moss(args: argparse.Namespace) -> None:
    import numpy  # noqa: F401

    from mosslite import SyncMossClient

    corpus = Corpus(args.n, args.seed)
    out: dict[str, Any] = {"input": "generator"}
    client = SyncMossClient(PROJECT, PROJECT_KEY, cache_path=Path(args.dir))
    try:
        stats = {"docs": 0, "text_bytes": 0}
        clock = time.perf_counter
        started = clock()
        try:
            job = client.create_index(INDEX, corpus.documents(stats), model_id="custom")
        except Exception as exc:  # a library that refuses an iterator: fall back to a list (timed too)
            out["input"] = "list (fallback)"
            out["generator_error"] = f"{type(exc).__name__}: {exc}"[:400]
            stats = {"docs": 0, "text_bytes": 0}
            started = clock()
            job = client.create_index(INDEX, list(corpus.documents(stats)), model_id="custom")
        out["create_returned_s"] = clock() - started
        out["consumed_at_return"] = stats["docs"]
        out["rss_at_return_mb"] = rss_mb()
        timeline: dict[str, float] = {}
        deadline = time.monotonic() + BUILD_TIMEOUT_S
        while True:
            status = client.get_job_status(job.job_id)
            key = status.status if not status.current_phase else f"{status.status}/{status.current_phase}"
            timeline.setdefault(key, clock() - started)
            if status.status in ("completed", "failed") or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        build_s = clock() - started
        final = client.wait_for_job(job.job_id, poll_interval_seconds=POLL_S, timeout_seconds=1.0)  # raises if failed
        info = client.get_index(INDEX)
        out.update(
            build_s=build_s,
            timeline=timeline,
            version=final.version,
            doc_count=info.doc_count,
            docs_generated=stats["docs"],
            text_bytes=stats["text_bytes"],
        )
    finally:
        client.close()
    out["peak_rss_mb"] = peak_rss_mb()
    emit(out)


def child_build_numpy(args: argparse.Namespace) -> None:
    import numpy as np

    corpus = Corpus(args.n, args.seed)
    matrix = np.empty((args.n, DIM), dtype=np.float32)
    text_bytes = 0
    started = time.perf_counter()
    for start, vectors, texts, _ in corpus.blocks():
        matrix[start : start + len(vectors)] = vectors
        text_bytes += sum(len(t.encode("utf-8")) for t in texts)
    generate_s = time.perf_counter() - started
    path = Path(args.dir) / "vectors.npy"
    started = time.perf_counter()
    np.save(path, matrix)
    build_s = time.perf_counter() - started
    emit({"build_s": build_s, "generate_s": generate_s, "text_bytes": text_bytes, "peak_rss_mb": peak_rss_mb()})


VEC_DDL = f"""
CREATE TABLE docs (rowid INTEGER PRIMARY KEY, text TEXT NOT NULL, category TEXT NOT NULL);
CREATE VIRTUAL TABLE docs_fts USING fts5(text, content = 'docs', content_rowid = 'rowid',
                                         tokenize = 'porter unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE v USING vec0(embedding float[{DIM}] distance_metric=cosine);
"""


def child_build_vec(args: argparse.Namespace) -> None:
    import apsw
    import sqlite_vec

    corpus = Corpus(args.n, args.seed)
    path = Path(args.dir) / "baseline.sqlite"
    clock = time.perf_counter
    generate_s = 0.0
    started = clock()
    conn = apsw.Connection(str(path))
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.execute(VEC_DDL)
    conn.execute("BEGIN")
    blocks = corpus.blocks()
    while True:
        g = clock()
        block = next(blocks, None)
        generate_s += clock() - g
        if block is None:
            break
        start, vectors, texts, categories = block
        rowids = range(start + 1, start + 1 + len(texts))  # rowid = document index + 1
        conn.executemany(
            "INSERT INTO docs(rowid, text, category) VALUES (?, ?, ?)",
            [(r, t, CATEGORIES[int(c)]) for r, t, c in zip(rowids, texts, categories)],
        )
        conn.executemany("INSERT INTO docs_fts(rowid, text) VALUES (?, ?)", list(zip(rowids, texts)))
        conn.executemany(
            "INSERT INTO v(rowid, embedding) VALUES (?, ?)", [(r, vectors[j].tobytes()) for j, r in enumerate(rowids)]
        )
    conn.execute("COMMIT")
    conn.close()
    build_s = clock() - started - generate_s
    emit({"build_s": build_s, "generate_s": generate_s, "peak_rss_mb": peak_rss_mb()})


def child_open_moss(args: argparse.Namespace) -> None:
    clock = time.perf_counter
    t0 = clock()
    import numpy  # noqa: F401

    t1 = clock()
    from mosslite import QueryOptions, SyncMossClient

    t2 = clock()
    query = json.loads(Path(args.query).read_text())
    t3 = clock()
    client = SyncMossClient(PROJECT, PROJECT_KEY, cache_path=Path(args.dir))
    t4 = clock()
    info = client.load_index(INDEX)
    t5 = clock()
    result = client.query(INDEX, query["text"], QueryOptions(top_k=TOP_K, embedding=query["vector"]))
    t6 = clock()
    rss = settled_rss_mb()
    out = {
        "import_numpy_ms": (t1 - t0) * 1e3,
        "import_mosslite_ms": (t2 - t1) * 1e3,
        "client_ms": (t4 - t3) * 1e3,
        "load_ms": (t5 - t4) * 1e3,
        "query_ms": (t6 - t5) * 1e3,
        "open_query_ms": (t6 - t4) * 1e3,
        "rss_mb": rss,
        "path": info.path,
        "version": info.version,
        "doc_count": info.doc_count,
        "top": [d.id for d in result.docs],
    }
    client.close()
    emit(out)


def child_open_numpy(args: argparse.Namespace) -> None:
    clock = time.perf_counter
    t0 = clock()
    import numpy as np

    t1 = clock()
    q = np.asarray(json.loads(Path(args.query).read_text())["vector"], dtype=np.float32)
    path = Path(args.dir) / "vectors.npy"
    t2 = clock()
    matrix = np.load(path)
    t3 = clock()
    scores = matrix @ q
    top = np.argpartition(-scores, TOP_K)[:TOP_K]
    top = top[np.argsort(-scores[top])]
    t4 = clock()
    emit({
        "import_ms": (t1 - t0) * 1e3,
        "load_ms": (t3 - t2) * 1e3,
        "query_ms": (t4 - t3) * 1e3,
        "open_query_ms": (t4 - t2) * 1e3,
        "rss_mb": rss_mb(),
        "top": [int(i) for i in top],
    })


def child_open_vec(args: argparse.Namespace) -> None:
    import array

    clock = time.perf_counter
    t0 = clock()
    import apsw
    import sqlite_vec

    t1 = clock()
    blob = array.array("f", json.loads(Path(args.query).read_text())["vector"]).tobytes()
    path = Path(args.dir) / "baseline.sqlite"
    t2 = clock()
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    t3 = clock()
    rows = conn.execute(f"SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = {TOP_K}", (blob,)).fetchall()
    t4 = clock()
    rss = rss_mb()
    conn.close()
    emit({
        "import_ms": (t1 - t0) * 1e3,
        "load_ms": (t3 - t2) * 1e3,
        "query_ms": (t4 - t3) * 1e3,
        "open_query_ms": (t4 - t2) * 1e3,
        "rss_mb": rss,
        "top": [int(r) - 1 for r, _ in rows],
    })


CHILDREN = {
    "build-moss": child_build_moss,
    "build-numpy": child_build_numpy,
    "build-vec": child_build_vec,
    "open-moss": child_open_moss,
    "open-numpy": child_open_numpy,
    "open-vec": child_open_vec,
}

# `import mosslite` after `import numpy`, nothing else imported first (not even json).
IMPORT_PROGRAM = (
    "import time\n"
    "t0 = time.perf_counter()\n"
    "import numpy\n"
    "t1 = time.perf_counter()\n"
    "import mosslite\n"
    "t2 = time.perf_counter()\n"
    f"print({MARKER!r} + '{{\"numpy_ms\": %r, \"mosslite_ms\": %r}}' % ((t1 - t0) * 1e3, (t2 - t1) * 1e3))\n"
)


# -- the parent -------------------------------------------------------------------------------


def run_child(label: str, cmd: list[str], timeout: float) -> dict[str, Any] | None:
    """Run a child; its result (the last MARKER line of its stdout), or None after
    printing what went wrong (the tail of its stderr)."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        print(f"  ! {label}: timed out after {timeout:.0f} s", flush=True)
        _print_tail(tail)
        return None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        print(f"  ! {label}: failed (exit {proc.returncode})", flush=True)
        _print_tail(proc.stderr or proc.stdout)
        return None
    try:
        return json.loads(lines[-1][len(MARKER) :])
    except ValueError:
        print(f"  ! {label}: unreadable result {lines[-1][:200]!r}", flush=True)
        return None


def _print_tail(text: str, lines: int = 15) -> None:
    for line in text.strip().splitlines()[-lines:]:
        print(f"    | {line}", flush=True)


def child_cmd(mode: str, n: int, seed: int, folder: Path, query: Path | None = None) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--n", str(n), "--seed", str(seed),
           "--dir", str(folder)]
    if query is not None:
        cmd += ["--query", str(query)]
    return cmd


def folder_bytes(root: Path, suffix: str | None = None) -> tuple[int, int]:
    """(apparent bytes, files) of the regular files under ``root`` (each inode once;
    only names ending in ``suffix`` if given)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            if suffix is not None and not name.endswith(suffix):
                continue
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total, len(seen)


def sqlite_free_pages(path: Path) -> tuple[int, int] | None:
    """(free pages, pages) from a SQLite file's header (read as bytes: nothing opened)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError:
        return None
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return None
    return int.from_bytes(header[36:40], "big"), int.from_bytes(header[28:32], "big")


def moss_bytes(home: Path) -> dict[str, Any]:
    service = home / "service"
    catalog = service / "catalog.sqlite"
    out: dict[str, Any] = {
        "catalog": sum(p.stat().st_size for p in (catalog, Path(f"{catalog}-wal"), Path(f"{catalog}-shm")) if p.exists()),
        "catalog_free": sqlite_free_pages(catalog),
    }
    folder = service / "storage" / PROJECT / INDEX
    versions = sorted(folder.glob("*.sqlite")) if folder.is_dir() else []
    if versions:
        newest = versions[-1]  # zero-padded version numbers
        largest = max(versions, key=lambda p: p.stat().st_size)
        out["version_path"] = str(newest)
        out["version"] = newest.stat().st_size
        out["largest_is_newest"] = largest == newest
    out["retained"], out["retained_files"] = folder_bytes(service / "storage", ".sqlite")
    out["folder"], out["folder_files"] = folder_bytes(home)
    return out


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def measure_imports(reps: int) -> dict[str, Any]:
    samples = [run_child("import mosslite", [sys.executable, "-c", IMPORT_PROGRAM], OPEN_TIMEOUT_S) for _ in range(reps)]
    ok = [s for s in samples if s]
    return {
        "numpy_ms": median([s["numpy_ms"] for s in ok]),
        "mosslite_ms": median([s["mosslite_ms"] for s in ok]),
        "mosslite_all": [s["mosslite_ms"] for s in ok],
        "runs": len(ok),
    }


def measure_size(n: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    folder = root / f"n{n}"
    home, npdir, vecdir = folder / "mosslite-home", folder / "numpy", folder / "sqlite-vec"
    for d in (home, npdir, vecdir):
        d.mkdir(parents=True, exist_ok=True)
    from_corpus = Corpus(n, args.seed)
    query_file = folder / "query.json"
    query = from_corpus.query()
    query_file.write_text(json.dumps(query))
    del from_corpus
    res: dict[str, Any] = {"n": n, "query": query, "folder": str(folder)}

    print(f"{n:,} docs: mosslite build (child process) ...", flush=True)
    res["moss_build"] = run_child(f"mosslite build {n:,}", child_cmd("build-moss", n, args.seed, home), BUILD_TIMEOUT_S)
    res["moss_bytes"] = moss_bytes(home)
    print(f"{n:,} docs: numpy and sqlite-vec builds ...", flush=True)
    res["np_build"] = run_child(f"numpy build {n:,}", child_cmd("build-numpy", n, args.seed, npdir), BUILD_TIMEOUT_S)
    res["vec_build"] = run_child(f"sqlite-vec build {n:,}", child_cmd("build-vec", n, args.seed, vecdir), BUILD_TIMEOUT_S)
    res["np_bytes"] = folder_bytes(npdir)[0]
    res["vec_bytes"] = folder_bytes(vecdir)[0]
    npy, vdb = npdir / "vectors.npy", vecdir / "baseline.sqlite"
    res["np_file"] = npy.stat().st_size if npy.exists() else None
    res["vec_file"] = vdb.stat().st_size if vdb.exists() else None

    os.sync()  # writeback of the builds would otherwise throttle the loads' own writes
    print(f"{n:,} docs: {args.reps} x fresh-process open + first query, each kind in turn ...", flush=True)
    opens: dict[str, list[dict[str, Any] | None]] = {"moss": [], "np": [], "vec": []}
    for rep in range(args.reps):
        if res["moss_build"] is not None:
            opens["moss"].append(run_child(f"mosslite open {n:,} #{rep + 1}",
                                           child_cmd("open-moss", n, args.seed, home, query_file), OPEN_TIMEOUT_S))
        if res["np_build"] is not None:
            opens["np"].append(run_child(f"numpy open {n:,} #{rep + 1}",
                                         child_cmd("open-numpy", n, args.seed, npdir, query_file), OPEN_TIMEOUT_S))
        if res["vec_build"] is not None:
            opens["vec"].append(run_child(f"sqlite-vec open {n:,} #{rep + 1}",
                                          child_cmd("open-vec", n, args.seed, vecdir, query_file), OPEN_TIMEOUT_S))
    res["opens"] = opens
    res["moss_folder_after_loads"] = folder_bytes(home)[0] if res["moss_build"] is not None else None
    return res


# -- reporting --------------------------------------------------------------------------------


def _mb(value: float | None) -> float | None:
    return None if value is None else value / MB


def _get(d: dict[str, Any] | None, key: str) -> Any:
    return None if d is None else d.get(key)


def summarise(res: dict[str, Any]) -> dict[str, Any]:
    """The table's numbers for one size (None where a child failed)."""
    n = res["n"]
    mb, nb, vb = res["moss_build"], res["np_build"], res["vec_build"]
    by = res["moss_bytes"]
    ok = {kind: [o for o in runs if o] for kind, runs in res["opens"].items()}

    def med(kind: str, key: str) -> float | None:
        return median([o[key] for o in ok[kind]])

    text_bytes = _get(mb, "text_bytes") or _get(nb, "text_bytes")
    s: dict[str, Any] = {
        "n": n,
        "vector_bytes": n * DIM * 4,
        "text_bytes": text_bytes,
        "generate_s": _get(nb, "generate_s"),
        "build_s": (_get(mb, "build_s"), _get(nb, "build_s"), _get(vb, "build_s")),
        "peak_mb": (_get(mb, "peak_rss_mb"), _get(nb, "peak_rss_mb"), _get(vb, "peak_rss_mb")),
        "version_mb": (_mb(by.get("version")) if mb else None, _mb(res["np_file"]), _mb(res["vec_file"])),
        "folder_mb": (_mb(by.get("folder")) if mb else None, _mb(res["np_bytes"]) if nb else None,
                      _mb(res["vec_bytes"]) if vb else None),
        "catalog_mb": (_mb(by.get("catalog")) if mb else None, None, None),
        "open_ms": (med("moss", "open_query_ms"), med("np", "open_query_ms"), med("vec", "open_query_ms")),
        "rss_mb": (med("moss", "rss_mb"), med("np", "rss_mb"), med("vec", "rss_mb")),
        "load_ms": (med("moss", "load_ms"), med("np", "load_ms"), med("vec", "load_ms")),
        "query_ms": (med("moss", "query_ms"), med("np", "query_ms"), med("vec", "query_ms")),
        "client_ms": med("moss", "client_ms"),
        "import_in_child_ms": med("moss", "import_mosslite_ms"),
        "moss_open_runs": [o["open_query_ms"] if o else None for o in res["opens"]["moss"]],
        "moss_load_runs": [o["load_ms"] if o else None for o in res["opens"]["moss"]],
        "retained_mb": _mb(by.get("retained")) if mb else None,
        "retained_files": by.get("retained_files"),
        "ok_runs": {k: (len(v), len(res["opens"][k])) for k, v in ok.items()},
    }
    return s


def fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "-"
    r = a / b
    return f"{r:,.0f}x" if r >= 100 else f"{r:.2f}x"


def comparison_rows(s: dict[str, Any]) -> list[list[str]]:
    rows = []
    for label, key, digits in [
        ("build s", "build_s", 3),
        ("peak build RSS MB", "peak_mb", 0),
        ("version file MB", "version_mb", 2),
        ("data folder MB", "folder_mb", 2),
        ("catalog MB", "catalog_mb", 2),
        ("open + first query ms (median)", "open_ms", 1),
        ("  of which load / open ms", "load_ms", 1),
        ("  of which first query ms", "query_ms", 1),
        ("RSS after open MB (median)", "rss_mb", 0),
    ]:
        m, npv, vec = s[key]
        rows.append([label, fmt(m, digits), fmt(npv, digits), fmt(vec, digits), ratio(m, npv), ratio(m, vec)])
    return rows


def details_rows(res: dict[str, Any], s: dict[str, Any]) -> list[list[str]]:
    mb, by = res["moss_build"], res["moss_bytes"]
    rows: list[list[str]] = []
    if mb:
        rows.append(["create_index given", mb["input"] + (f" (refused generator: {mb['generator_error']})" if mb.get("generator_error") else "")])
        rows.append(["create_index returned after",
                     f"{mb['create_returned_s']:.2f} s, {mb['consumed_at_return']:,} of {s['n']:,} docs drawn, "
                     f"RSS then {fmt(mb.get('rss_at_return_mb'), 0)} MB"])
        rows.append(["job timeline (first seen, s)",
                     ", ".join(f"{k} {v:.2f}" for k, v in sorted(mb["timeline"].items(), key=lambda kv: kv[1]))])
        rows.append(["published", f"version {mb['version']}, {mb['doc_count']:,} docs"])
    if by.get("version_path"):
        rows.append(["newest version file", f"{by['version_path']}" + ("" if by.get("largest_is_newest") else " (not the largest!)")])
    rows.append(["retained version files", f"{fmt(s['retained_mb'], 2)} MB in {s['retained_files']} file(s)"])
    free = by.get("catalog_free")
    if free and free[1]:
        rows.append(["catalog free pages", f"{free[0]:,} of {free[1]:,} ({free[0] / free[1]:.0%})"])
    rows.append(["data folder after the loads", f"{fmt(_mb(res['moss_folder_after_loads']), 2)} MB "
                 f"(the loads' cached copies; hard links count once)"])
    moss_ok = [o for o in res["opens"]["moss"] if o]
    if moss_ok:
        first = moss_ok[0]
        paths = {o["path"] for o in moss_ok}
        relation = "gone by now"
        if by.get("version_path") and os.path.exists(first["path"]):
            if os.path.samefile(first["path"], by["version_path"]):
                relation = "a hard link of the newest storage file"
            elif os.path.getsize(first["path"]) == by.get("version"):
                relation = "a copy (same size) of the newest storage file"
            else:
                relation = "NOT the newest storage file's size"
        rows.append(["load_index(...).path", f"{first['path']} (v{first['version']}, {first['doc_count']:,} docs; "
                     f"{relation})" + ("" if len(paths) == 1 else f"; {len(paths)} different paths over the reps")])
        rows.append(["client init ms (median)", fmt(s["client_ms"], 1) + " (SyncMossClient(...), not in open + first query)"])
        rows.append(["import mosslite in the open child ms", fmt(s["import_in_child_ms"], 1) + " (median; after numpy)"])
    rows.append(["mosslite open + first query, each rep ms", " / ".join(fmt(v, 1) for v in s["moss_open_runs"]) or "-"])
    rows.append(["mosslite load_index, each rep ms", " / ".join(fmt(v, 1) for v in s["moss_load_runs"])
                 + " (rep 1 loads into an empty client cache)"])
    tops = []
    for kind, label in (("moss", "mosslite"), ("np", "numpy"), ("vec", "sqlite-vec")):
        runs = [o for o in res["opens"][kind] if o]
        if runs:
            tops.append(f"{label} {runs[0]['top'][:3]}")
    rows.append([f"query top hits (doc {res['query']['doc']} targeted)", "; ".join(tops) or "-"])
    failed = [f"{k} {total - good}/{total}" for k, (good, total) in s["ok_runs"].items() if good < total]
    if failed:
        rows.append(["failed open children", ", ".join(failed)])
    return rows


def target_rows(s: dict[str, Any], moss_build_ok: bool) -> list[list[str]]:
    n = s["n"]
    rows: list[list[str]] = []
    size = f"{n:,}"

    def add(what: str, value: float | None, limit: float, digits: int, unit: str, limit_text: str | None = None) -> None:
        ok = None if value is None else value <= limit
        rows.append([size, what, fmt(value, digits) + unit if value is not None else "-",
                     limit_text or f"<= {limit:,.{digits}f}{unit}", verdict_text(ok)])

    build_s, peak = s["build_s"][0], s["peak_mb"][0]
    if n == 100_000:
        add("build", build_s, BUILD_S_100K, 2, " s")
    if n == 1_000_000:
        rows.append([size, "build completes", "yes" if moss_build_ok else "no", "completes", verdict_text(moss_build_ok)])
        add("peak build RSS", peak, PEAK_RSS_MB_1M, 0, " MB")
    raw = s["vector_bytes"] + s["text_bytes"] if s["text_bytes"] is not None else None
    version = s["version_mb"][0]
    if raw is not None:
        limit = VERSION_VS_RAW * raw / MB
        add("version file", version, limit, 2, " MB",
            f"<= {VERSION_VS_RAW} x (vectors {s['vector_bytes'] / MB:.2f} + texts {s['text_bytes'] / MB:.2f} MB) = {limit:,.2f} MB")
    if s["retained_mb"] is not None:
        limit = FOLDER_VS_RETAINED * s["retained_mb"] + FOLDER_SLACK_MB
        add("data folder after the job", s["folder_mb"][0], limit, 2, " MB",
            f"<= {FOLDER_VS_RETAINED} x retained versions {s['retained_mb']:,.2f} + {FOLDER_SLACK_MB:g} MB = {limit:,.2f} MB")
    open_ms, np_ms = s["open_ms"][0], s["open_ms"][1]
    if n != 1_000_000:
        if n in OPEN_MS:
            add("open + first query (fresh process)", open_ms, OPEN_MS[n], 1, " ms")
        if np_ms is not None:
            add("open + first query vs numpy", None if open_ms is None else open_ms / np_ms, OPEN_VS_NUMPY, 2, "x",
                f"<= {OPEN_VS_NUMPY:g}x numpy's {np_ms:.1f} ms")
    if n == 100_000:
        limit = RSS_VS_VECTORS_100K * s["vector_bytes"] / MB
        add("RSS after open", s["rss_mb"][0], limit, 0, " MB",
            f"<= {RSS_VS_VECTORS_100K:g} x vectors {s['vector_bytes'] / MB:.1f} MB = {limit:,.0f} MB")
    return rows


def verdict_text(ok: bool | None) -> str:
    from _common import verdict

    return verdict(ok)


def parse_sizes(text: str) -> list[int]:
    return [int(float(s.replace("_", ""))) for s in text.split(",") if s.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=None, help="comma-separated corpus sizes (default 10000,100000; "
                        "1M only when asked, e.g. 10000,100000,1000000)")
    parser.add_argument("--reps", type=int, default=None, help="fresh processes per open / import median (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temp folders and print where")
    parser.add_argument("--tmp", default=None, metavar="DIR", help="where the temp folders go (default: system temp dir)")
    parser.add_argument("--quick", action="store_true", help="sizes 2000,5000 and 3 reps")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--query", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        CHILDREN[args.child](args)
        return 0

    sizes = parse_sizes(args.sizes) if args.sizes else ([2000, 5000] if args.quick else [10_000, 100_000])
    args.reps = args.reps or (3 if args.quick else 5)
    if any(n <= QUERY_DOC for n in sizes):
        parser.error(f"every size must be more than {QUERY_DOC} documents")

    from _common import load_average, machine_summary, print_table

    tmp_base = Path(args.tmp) if args.tmp else Path(tempfile.gettempdir())
    tmp_base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="mosslite-footprint-", dir=tmp_base))
    try:
        import mosslite

        version = mosslite.__version__
    except Exception as exc:  # the library may be mid-change: report it, the children will fail visibly too
        version = f"(import failed: {type(exc).__name__}: {exc})"
    free = shutil.disk_usage(root).free / 1e9
    print(f"mosslite {version} footprint; {machine_summary()}")
    print(f"sizes {', '.join(f'{n:,}' for n in sizes)}; {DIM} dims; {args.reps} fresh processes per median; "
          f"seed {args.seed}; temp {root} ({free:,.1f} GB free)")
    print(f"at start: {load_average()}", flush=True)

    results = []
    try:
        imports = measure_imports(args.reps)
        for n in sizes:
            res = measure_size(n, args, root)
            s = summarise(res)
            results.append((res, s))
            print_table(f"== {n:,} documents: mosslite vs numpy vs sqlite-vec ==",
                        ["", "mosslite", "numpy", "sqlite-vec", "x numpy", "x sqlite-vec"],
                        comparison_rows(s))
            print_table(f"   {n:,} documents: mosslite details", ["item", "value"], details_rows(res, s), align="ll")
            print(flush=True)
            if not args.keep:
                shutil.rmtree(res["folder"], ignore_errors=True)
        print(f"after measuring: {load_average()}")

        print_table(
            "== corpus ==",
            ["docs", "vectors MB (n*384*4)", "texts MB (UTF-8)", "vectors + texts MB", "corpus generator alone s"],
            [[f"{s['n']:,}", f"{s['vector_bytes'] / MB:,.2f}", fmt(_mb(s["text_bytes"]), 2),
              fmt(_mb(s["vector_bytes"] + s["text_bytes"]) if s["text_bytes"] is not None else None, 2),
              fmt(s["generate_s"], 2)] for _, s in results],
        )
        print_table(
            "== import (fresh `python -c`, numpy imported first and excluded) ==",
            ["", "median ms", "each run ms", "target", ""],
            [["import numpy", fmt(imports["numpy_ms"], 1), "", "", ""],
             ["import mosslite", fmt(imports["mosslite_ms"], 1), " / ".join(f"{v:.1f}" for v in imports["mosslite_all"]),
              f"<= {IMPORT_MS:g} ms",
              verdict_text(None if imports["mosslite_ms"] is None else imports["mosslite_ms"] <= IMPORT_MS)]],
            align="lrrll",
        )
        rows = []
        for res, s in results:
            rows.extend(target_rows(s, res["moss_build"] is not None))
        rows.append(["-", "import mosslite (numpy excluded)", fmt(imports["mosslite_ms"], 1) + " ms"
                     if imports["mosslite_ms"] is not None else "-", f"<= {IMPORT_MS:g} ms",
                     verdict_text(None if imports["mosslite_ms"] is None else imports["mosslite_ms"] <= IMPORT_MS)])
        print_table("== targets ==", ["docs", "target", "value", "limit", ""], rows, align="llrll")
        print()
        print("PASS/MISS is informational. Open + first query = load_index + query in a fresh process, after imports "
              "and client init; files in the OS page cache. mosslite's build includes drawing the corpus from its "
              "generator; the baselines' builds do not.")
    finally:
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
