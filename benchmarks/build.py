"""Service-side figures: build throughput, incremental add into a 100k index, request overhead.

Run:  .venv/bin/python benchmarks/build.py [--docs 10000] [--small 1000] [--base-docs 100000]
                                          [--adds 3] [--calls 1000] [--quick]

What each table measures
------------------------
1. Build throughput. ``create_index(name, docs)`` with the default embedder
   ``moss-minilm`` on the embedded client (``SyncMossClient``, no url), then
   ``wait_for_job``. The clock runs from the ``create_index`` call to the job's
   ``completed`` event (a ``Service.listeners`` callback, so the figure does not
   depend on the polling interval). Texts: 40-80 English words (Zipf over ~300
   common words, fixed seed). The model's weights are loaded and warmed before
   the clock starts. Baseline, in the same run: the time spent inside
   ``embedder.embed`` (a wrapper on the shared MiniLM instance counts texts and
   seconds), so "embed share" says how much of a build is the model.
2. Incremental add. A 100k-document index with model ``moss-minilm`` whose
   documents all carry supplied vectors (random unit vectors: the builder
   stores them and never runs the model), cached as a service data folder under
   ``~/.cache/mosslite-bench/``, copied to a temp folder per run. Then
   ``add_docs`` of 10 new documents *without* embeddings, so exactly those 10
   go through MiniLM. Reported: time from the ``add_docs`` call to the job's
   ``completed`` event; texts that reached ``embed`` (wrapper) and the
   builder's own ``BuildReport.embedded`` (captured by wrapping
   ``mosslite.service.build.build_from_batch``). Target: exactly 10 re-embedded,
   completion <= 2 s. A second row upserts 10 *existing* documents with the same
   text and no vector (target: 0 re-embedded, the stored vectors are reused).
   The job's phase events give an in-situ breakdown; a second table times the
   suspected costs directly on the same base file (copy, fsync, sha256, FTS5
   integrity-check, ``build_version`` alone).
3. Request overhead. ``get_index`` round trips: the ``Service`` method called
   directly (no client), the embedded ``SyncMossClient`` (caller thread -> loop
   thread -> worker thread -> catalog), and ``SyncMossClient(url=...)`` against a
   real ``mosslite serve`` subprocess on 127.0.0.1. Ratio = p50 / embedded p50.

Everything runs on loopback; data lives in temp folders and the bench cache.
PASS/MISS is informational: the script always exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Percentiles, cache_dir, fmt_ms, machine_summary, print_table, time_each, verdict  # noqa: E402

import mosslite.service.build as worker_module  # noqa: E402  (the job worker's build step)
from mosslite import FORMAT_VERSION, DocumentInfo, SyncMossClient  # noqa: E402
from mosslite._db import connect  # noqa: E402
from mosslite._fs import fsync_file, sha256_file  # noqa: E402
from mosslite.client.embedded import close_embedded_services  # noqa: E402
from mosslite.embeddings import get_embedder  # noqa: E402
from mosslite.index.builder import build_version  # noqa: E402
from mosslite.service import Service  # noqa: E402
from mosslite.types import Job, JobPhase, JobStatus, Version  # noqa: E402

from hydrate import LocalServer  # noqa: E402  (the loopback server helper is shared)

#: Bump when the fixture generator changes, so stale cached folders are not reused.
GENERATOR_VERSION = 1
DIM = 384
MODEL = "moss-minilm"
PROJECT = "bench"
PROJECT_KEY = "bench-key"
ADD_COUNT = 10
ADD_TARGET_S = 2.0
FIXTURE_CHUNK = 20_000  # documents per job while building the cached 100k fixture

COMMON_WORDS = """
the of and to a in is that for it as was with be by on not this are or from at which but have an they you
were her there been one all we their has would when if so no out what up who them some more can time into
only do other then its about could also than two any may these first like new our over after most very made
people years did where just many should between such well year work because each through back even much while
before state world make own still use way same used under long great life little three last here part might
being day how both those high never however small right good take know general public place house again since
system group number without government during school city old come water form found money point large give
hand find home area line family fact order different development important power end thing best business case
night social health information often country report several given service children next local women side less
following market second national street possible member early show light human policy change example support
head level million company law interest question office study within around real land must care problem along
program paper research nature body least history death going close field rate table open child hold turn price
control effect period book language music cost value model future process party private role refund shipping
delivery battery warranty return customer account payment invoice product device screen charger cable software
update password login email message subscription discount coupon package tracking address store pickup size
colour fabric kitchen garden travel ticket booking hotel flight seat luggage insurance claim repair manual
setup install network router printer camera speaker headphones keyboard laptop phone tablet watch fitness
""".split()


# -- corpus --------------------------------------------------------------------------------


def make_texts(n: int, seed: int, *, prefix: str = "") -> list[str]:
    """``n`` texts of 40-80 words, Zipf-distributed over COMMON_WORDS (fixed seed)."""
    rng = np.random.default_rng(seed)
    vocab = list(dict.fromkeys(COMMON_WORDS))
    weights = 1.0 / (np.arange(1, len(vocab) + 1) + 2.7)
    weights /= weights.sum()
    lengths = rng.integers(40, 81, size=n)
    words = rng.choice(len(vocab), size=int(lengths.sum()), p=weights)
    out, at = [], 0
    for i, length in enumerate(lengths):
        out.append(prefix + " ".join(vocab[w] for w in words[at : at + length]))
        at += length
    return out


def unit_vectors(n: int, seed: int) -> np.ndarray:
    """Random unit rows, rounded to 5 decimals (JSON over HTTP stays smaller)."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return np.round(v, 5)


# -- instrumentation ---------------------------------------------------------------------


class EmbedCounter:
    """Wraps ``embed`` on the shared embedder instance: texts and seconds spent in the model."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self._original = embedder.embed  # the bound class method
        self.texts = 0
        self.calls = 0
        self.seconds = 0.0
        self._lock = threading.Lock()
        embedder.embed = self._embed  # instance attribute shadows the class method

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self._original(texts)
        finally:
            with self._lock:
                self.texts += len(texts)
                self.calls += 1
                self.seconds += time.perf_counter() - started

    def reset(self) -> None:
        with self._lock:
            self.texts = self.calls = 0
            self.seconds = 0.0

    def remove(self) -> None:
        self.embedder.__dict__.pop("embed", None)


class ReportCapture:
    """Wraps ``build_from_batch`` as the job worker sees it, keeping each BuildReport."""

    def __init__(self) -> None:
        self.reports: list[Any] = []
        self._original = worker_module.build_from_batch
        worker_module.build_from_batch = self._build

    def _build(self, *args: Any, **kwargs: Any) -> Any:
        report = self._original(*args, **kwargs)
        self.reports.append(report)
        return report

    def remove(self) -> None:
        worker_module.build_from_batch = self._original


@dataclass
class Timeline:
    """perf_counter stamps of a job's status/phase changes, from a Service listener."""

    events: list[tuple[float, str, str | None, float]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def first(self, status: str | None = None, phase: str | None = None, progress: float | None = None) -> float | None:
        for t, s, p, pct in self.events:
            if (status is None or s == status) and (phase is None or p == phase) and (progress is None or pct == progress):
                return t
        return None


class JobWatcher:
    """Records every job's timeline on an embedded Service."""

    def __init__(self, service: Service) -> None:
        self.timelines: dict[str, Timeline] = {}
        self._lock = threading.Lock()
        service.listeners.append(self._on_job)

    def _on_job(self, project_id: str, job: Job) -> None:
        now = time.perf_counter()
        with self._lock:
            tl = self.timelines.setdefault(job.job_id, Timeline())
        tl.events.append((now, job.status, job.current_phase, job.progress))
        if job.status in JobStatus.FINAL:
            tl.done.set()

    def wait(self, job_id: str, timeout_s: float = 3600.0) -> Timeline:
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                tl = self.timelines.get(job_id)
            if tl is not None and tl.done.wait(0.05):
                return tl
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not finish")


def service_of(client: SyncMossClient) -> Service:
    return client.async_client.transport.service


# -- 1. build throughput -------------------------------------------------------------------


def measure_build(n: int, seed: int, counter: EmbedCounter, work: Path) -> dict[str, Any]:
    texts = make_texts(n, seed)
    docs = [DocumentInfo(id=f"doc-{i:06d}", text=t, metadata={"n": str(i % 10)}) for i, t in enumerate(texts)]
    home = Path(tempfile.mkdtemp(prefix=f"build-{n}-", dir=work))
    client = SyncMossClient(PROJECT, PROJECT_KEY, cache_path=home)
    watcher = JobWatcher(service_of(client))
    counter.reset()
    try:
        started = time.perf_counter()
        job = client.create_index(f"build-{n}", docs)
        submitted = time.perf_counter()
        tl = watcher.wait(job.job_id)
        client.wait_for_job(job.job_id, poll_interval_seconds=0.05)  # raises if it failed
        completed = tl.first(status=JobStatus.COMPLETED)
        assert completed is not None
        total_s = completed - started
        emb_end = tl.first(phase=JobPhase.BUILDING_INDEX, progress=70.0) or tl.first(phase=JobPhase.BUILDING_INDEX)
        return {
            "n": n,
            "total_s": total_s,
            "submit_ms": (submitted - started) * 1000.0,
            "docs_per_s": n / total_s,
            "embed_s": counter.seconds,
            "embedded": counter.texts,
            "embed_docs_per_s": counter.texts / counter.seconds if counter.seconds else float("nan"),
            "after_embed_s": completed - emb_end if emb_end else float("nan"),
        }
    finally:
        client.close()
        close_embedded_services()
        shutil.rmtree(home, ignore_errors=True)


# -- 2. incremental add into a 100k index ---------------------------------------------------


def fixture_dir(n: int, seed: int) -> Path:
    return cache_dir() / f"build-base-g{GENERATOR_VERSION}-f{FORMAT_VERSION}-{MODEL}-n{n}-s{seed}"


def ensure_fixture(n: int, seed: int) -> Path:
    """A service data folder holding index ``base`` (``n`` docs, model moss-minilm, supplied vectors)."""
    root = fixture_dir(n, seed)
    if (root / "ready").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    print(f"building fixture {root} ({n:,} docs, supplied vectors; cached for later runs) ...", flush=True)
    started = time.perf_counter()
    texts = make_texts(n, seed + 1)
    vectors = unit_vectors(n, seed + 2)
    client = SyncMossClient(PROJECT, PROJECT_KEY, cache_path=root)
    try:
        # In chunks, as an app adding documents over time would (and as this fixture always was).
        for start in range(0, n, FIXTURE_CHUNK):
            chunk = [
                DocumentInfo(id=f"base-{i:06d}", text=texts[i], embedding=vectors[i].tolist())
                for i in range(start, min(n, start + FIXTURE_CHUNK))
            ]
            if start == 0:
                job = client.create_index("base", chunk, model_id=MODEL)
            else:
                job = client.add_docs("base", chunk)
            client.wait_for_job(job.job_id, poll_interval_seconds=0.2, timeout_seconds=3600)
            print(f"  {min(n, start + FIXTURE_CHUNK):,} docs", flush=True)
    finally:
        client.close()
        close_embedded_services()
    prune_old_versions(root / "service")
    (root / "ready").write_text(f"built in {time.perf_counter() - started:.0f} s\n")
    return root


def prune_old_versions(data: Path) -> None:
    """Delete all but the newest version file of each index in a cached fixture (to save disk:
    add_docs reads only the newest; the catalog rows of older ones are never used here)."""
    for folder in {p.parent for p in (data / "storage").rglob("*.sqlite")}:
        versions = sorted(p for p in folder.iterdir() if p.suffix == ".sqlite")
        for old in versions[:-1]:
            old.unlink()


def latest_version_file(service: Service, name: str) -> Path:
    record = service.catalog.latest_version(PROJECT, name)
    assert record is not None
    return service.local_copy(record)


@dataclass
class AddRun:
    label: str
    total_s: float
    submit_ms: float
    embedded_texts: int
    report_embedded: int
    report_reused: int
    phases: list[tuple[str, float]]
    version: int


PHASES: list[tuple[str, Callable[[Timeline], float | None]]] = [
    ("submit -> job building", lambda tl: tl.first(status=JobStatus.BUILDING)),
    ("copy base + open + lookups", lambda tl: tl.first(phase=JobPhase.GENERATING_EMBEDDINGS) or tl.first(phase=JobPhase.BUILDING_INDEX)),
    ("embedding (MiniLM)", lambda tl: tl.first(phase=JobPhase.BUILDING_INDEX)),
    ("writes (docs, FTS5, vec0)", lambda tl: tl.first(phase=JobPhase.BUILDING_INDEX, progress=82.0)),
    ("compact + verify (FTS5 integrity-check)", lambda tl: tl.first(phase=JobPhase.BUILDING_INDEX, progress=90.0)),
    ("close + fsync + rename temp", lambda tl: tl.first(phase=JobPhase.UPLOADING)),
    ("sha256 + store", lambda tl: tl.first(phase=JobPhase.PUBLISHING)),
    ("publish (catalog) + manifest", lambda tl: tl.first(status=JobStatus.COMPLETED)),
]


def run_add(client: SyncMossClient, watcher: JobWatcher, counter: EmbedCounter, capture: ReportCapture,
            docs: list[DocumentInfo], label: str) -> AddRun:
    counter.reset()
    before = len(capture.reports)
    started = time.perf_counter()
    job = client.add_docs("base", docs)
    submitted = time.perf_counter()
    tl = watcher.wait(job.job_id)
    final = client.wait_for_job(job.job_id, poll_interval_seconds=0.02)
    completed = tl.first(status=JobStatus.COMPLETED)
    assert completed is not None
    phases, previous = [], started
    for name, stamp in PHASES:
        t = stamp(tl)
        if t is None:
            phases.append((name, float("nan")))
            continue
        phases.append((name, t - previous))
        previous = t
    report = capture.reports[before] if len(capture.reports) > before else None
    return AddRun(
        label=label,
        total_s=completed - started,
        submit_ms=(submitted - started) * 1000.0,
        embedded_texts=counter.texts,
        report_embedded=report.embedded if report else -1,
        report_reused=report.reused if report else -1,
        phases=phases,
        version=final.version or 0,
    )


def direct_breakdown(base: Path, work: Path, counter: EmbedCounter, docs: list[DocumentInfo]) -> list[tuple[str, float]]:
    """The suspected costs of an incremental build, timed one by one on the same base file."""
    out: list[tuple[str, float]] = []
    tmp = work / "direct-copy.sqlite"
    t = time.perf_counter()
    shutil.copyfile(base, tmp)
    out.append(("shutil.copyfile(base)", time.perf_counter() - t))
    t = time.perf_counter()
    fsync_file(tmp)
    out.append(("fsync(copy) (dirty pages -> disk)", time.perf_counter() - t))
    t = time.perf_counter()
    sha256_file(base)
    out.append(("sha256_file(base) (page cache)", time.perf_counter() - t))
    conn = connect(tmp, vec=True)
    try:
        t = time.perf_counter()
        conn.execute("INSERT INTO docs_fts (docs_fts) VALUES ('integrity-check')")
        out.append(("FTS5 'integrity-check'", time.perf_counter() - t))
        t = time.perf_counter()
        conn.execute("SELECT count(*) FROM docs_vec").fetchone()
        out.append(("SELECT count(*) FROM docs_vec", time.perf_counter() - t))
        t = time.perf_counter()
        conn.execute("SELECT count(*) FROM docs").fetchone()
        out.append(("SELECT count(*) FROM docs", time.perf_counter() - t))
    finally:
        conn.close()
    tmp.unlink(missing_ok=True)
    embedder = get_embedder(MODEL)
    t = time.perf_counter()
    embedder.embed([d.text for d in docs])
    out.append((f"embed {len(docs)} texts", time.perf_counter() - t))
    counter.reset()
    target = work / "direct-build.sqlite"
    target.unlink(missing_ok=True)  # (a crashed run's: a build never replaces a file)
    t = time.perf_counter()
    build_version(target, embedder=embedder, index_name="base", version=Version(999_999), upserts=docs, base=base)
    out.append(("build_version(base, 10 docs) alone", time.perf_counter() - t))
    target.unlink(missing_ok=True)
    out.append(("(file size, MB)", base.stat().st_size / 1e6))
    return out


def measure_incremental(args: argparse.Namespace, counter: EmbedCounter, work: Path) -> None:
    fixture = ensure_fixture(args.base_docs, args.seed)
    home = work / "incremental"
    print(f"copying fixture to {home} ...", flush=True)
    shutil.copytree(fixture, home, ignore=shutil.ignore_patterns("cache", "ready"))
    capture = ReportCapture()
    client = SyncMossClient(PROJECT, PROJECT_KEY, cache_path=home)
    service = service_of(client)
    watcher = JobWatcher(service)
    runs: list[AddRun] = []
    try:
        for r in range(args.adds):
            texts = make_texts(ADD_COUNT, args.seed + 100 + r)
            docs = [DocumentInfo(id=f"new-{r}-{i}", text=t) for i, t in enumerate(texts)]
            runs.append(run_add(client, watcher, counter, capture, docs, f"add {ADD_COUNT} new docs #{r + 1}"))
        # Same ids and texts as stored, no vectors: every stored vector should be reused.
        same = client.get_docs("base", ids=[f"base-{i:06d}" for i in range(ADD_COUNT)])
        unchanged = [DocumentInfo(id=d.id, text=d.text, metadata=d.metadata) for d in same]
        runs.append(run_add(client, watcher, counter, capture, unchanged, f"upsert {ADD_COUNT} unchanged docs"))
        base = latest_version_file(service, "base")
        direct_docs = [DocumentInfo(id=f"direct-{i}", text=t) for i, t in enumerate(make_texts(ADD_COUNT, args.seed + 999))]
        direct = direct_breakdown(base, work, counter, direct_docs)
    finally:
        client.close()
        close_embedded_services()
        capture.remove()
        shutil.rmtree(home, ignore_errors=True)

    rows = []
    for run in runs:
        want = 0 if run.label.startswith("upsert") else ADD_COUNT
        ok_count = run.embedded_texts == want and run.report_embedded == want
        ok_time = run.total_s <= ADD_TARGET_S
        rows.append([
            run.label, f"v{run.version}", f"{run.total_s * 1000:.0f}", f"{run.submit_ms:.1f}",
            str(run.embedded_texts), str(run.report_embedded), str(run.report_reused),
            f"=={want}: {verdict(ok_count)}", f"<={ADD_TARGET_S:g}s: {verdict(ok_time)}",
        ])
    print_table(
        f"2. add_docs into a {args.base_docs:,}-doc index (moss-minilm, stored vectors) -> job completed",
        ["run", "ver", "total ms", "submit ms", "embed() texts", "report.embedded", "reused", "re-embedded target", "time target"],
        rows,
    )
    totals = np.array([r.total_s for r in runs])
    print(f"   completion over {len(runs)} runs: p50 {np.median(totals) * 1000:.0f} ms, max {totals.max() * 1000:.0f} ms")

    names = [name for name, _ in runs[0].phases]
    phase_rows = []
    for i, name in enumerate(names):
        values = np.array([run.phases[i][1] for run in runs]) * 1000.0
        share = np.nanmedian(values) / (np.median(totals) * 1000.0)
        phase_rows.append([name, fmt_ms(float(np.nanmedian(values)), 0), fmt_ms(float(np.nanmax(values)), 0), f"{share:.0%}"])
    print_table(
        "   in-situ phases of those jobs (listener stamps; median / max over the runs)",
        ["phase", "p50 ms", "max ms", "share"],
        phase_rows,
    )
    build_alone = dict(direct).get("build_version(base, 10 docs) alone", float("nan"))
    direct_rows = []
    for name, value in direct:
        if name.startswith("(file size"):
            direct_rows.append([name, f"{value:.0f}", ""])
        else:
            direct_rows.append([name, f"{value * 1000:.0f}", f"{value / build_alone:.0%}" if name != "build_version(base, 10 docs) alone" else "100%"])
    print_table(
        "   direct timings on the same base file (one call each)",
        ["operation", "ms", "of build_version"],
        direct_rows,
    )


# -- 3. request overhead -----------------------------------------------------------------


def measure_overhead(args: argparse.Namespace, work: Path) -> None:
    docs = [DocumentInfo(id=f"d{i}", text=t) for i, t in enumerate(make_texts(20, args.seed + 5))]
    calls = list(range(args.calls))

    home = work / "overhead-embedded"
    client = SyncMossClient(PROJECT, PROJECT_KEY, cache_path=home)
    try:
        client.wait_for_job(client.create_index("small", docs, model_id="hashed-ngrams-256").job_id, 0.02)
        service = service_of(client)
        direct_ms = time_each(lambda _: service.get_index(PROJECT, "small"), calls, warmup=50)
        embedded_ms = time_each(lambda _: client.get_index("small"), calls, warmup=50)
    finally:
        client.close()
        close_embedded_services()

    server = LocalServer(work / "overhead-server").start()
    try:
        key = server.new_key(PROJECT)
        remote = SyncMossClient(PROJECT, key, url=server.url, cache_path=work / "overhead-http-home")
        try:
            remote.wait_for_job(remote.create_index("small", docs, model_id="hashed-ngrams-256").job_id, 0.02)
            http_ms = time_each(lambda _: remote.get_index("small"), calls, warmup=50)
        finally:
            remote.close()
    finally:
        server.stop()

    base = Percentiles.of(embedded_ms)
    rows = []
    for name, samples in [
        ("Service.get_index (direct, no client)", direct_ms),
        ("embedded SyncMossClient.get_index", embedded_ms),
        ("HTTP SyncMossClient.get_index (mosslite serve, loopback)", http_ms),
    ]:
        s = Percentiles.of(samples)
        rows.append([name, str(s.n), fmt_ms(s.p50), fmt_ms(s.p95), fmt_ms(s.p99), f"{s.p50 / base.p50:.2f}x"])
    print_table(
        "3. get_index round trip (ms; ratio = p50 / embedded client p50)",
        ["path", "calls", "p50", "p95", "p99", "vs embedded"],
        rows,
    )


# -- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000, help="documents for the main build figure")
    parser.add_argument("--small", type=int, default=1_000, help="documents for the small build figure")
    parser.add_argument("--base-docs", type=int, default=100_000, help="size of the index add_docs goes into")
    parser.add_argument("--adds", type=int, default=3, help="add_docs runs of 10 docs")
    parser.add_argument("--calls", type=int, default=1_000, help="get_index calls per path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", default="", help="comma list of sections to skip: build,add,overhead")
    parser.add_argument("--quick", action="store_true", help="small, fast run: 300/100 docs, 5k base, 200 calls")
    args = parser.parse_args()
    if args.quick:
        args.docs, args.small, args.base_docs, args.adds, args.calls = 300, 100, 5_000, 2, 200
    skip = set(filter(None, args.skip.split(",")))

    print("mosslite build / service benchmark")
    print(machine_summary())
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    embedder = get_embedder(MODEL)
    started = time.perf_counter()
    embedder.embed(["warm up the model"])  # loads and verifies the weights
    print(f"model load + first embed: {(time.perf_counter() - started) * 1000:.0f} ms (not in any figure)")
    counter = EmbedCounter(embedder)

    with tempfile.TemporaryDirectory(prefix="mosslite-bench-build-") as tmp:
        work = Path(tmp)
        if "build" not in skip:
            results = []
            for n in sorted({args.small, args.docs}):
                print(f"building {n:,} docs with {MODEL} ...", flush=True)
                results.append(measure_build(n, args.seed, counter, work))
            rows = [
                [
                    f"{r['n']:,}", f"{r['total_s']:.1f}", f"{r['docs_per_s']:.1f}", f"{r['embed_docs_per_s']:.1f}",
                    f"{r['docs_per_s'] / r['embed_docs_per_s']:.2f}", f"{r['embed_s'] / r['total_s']:.0%}",
                    f"{r['after_embed_s']:.2f}", f"{r['submit_ms']:.0f}", str(r["embedded"]),
                ]
                for r in results
            ]
            print_table(
                f"1. create_index + wait_for_job, embedded, model {MODEL} (texts of 40-80 words)",
                ["docs", "total s", "docs/s", "embed() docs/s", "vs embed()", "embed share", "after embed s",
                 "submit ms", "embedded"],
                rows,
            )
        if "add" not in skip:
            measure_incremental(args, counter, work)
        if "overhead" not in skip:
            measure_overhead(args, work)
    counter.remove()


if __name__ == "__main__":
    main()
