"""Query latency from many threads while the loaded index is hot-swapped every ~300 ms.

Run:  .venv/bin/python benchmarks/hot_swap.py [--docs 10000] [--threads 4] [--duration 30] [--rounds 5]
                                             [--period 0.3] [--modes embedded,http] [--quick]

Set-up
------
A 10k-document index (model ``custom``, random 384-d unit vectors, texts of
40-80 words; the cached fixture of ``hydrate.py``), copied to a temp service
folder per mode. ``--threads`` threads call ``SyncMossClient.query`` (which
runs in the caller's thread) back to back for ``--duration`` seconds: hybrid
queries (alpha 0.8, top_k 5, 3-6 words of text drawn from the corpus's Zipf
word distribution, plus a supplied unit vector,
both pre-built so the loop times only the query). Each call is timed with
``perf_counter``; an exception counts as an error (and its time is kept).

Phases, each on the same loaded index
-------------------------------------
Each phase gets ``--duration`` s of queries, cut into ``--rounds`` slices that
are taken in turn with the other phases' slices (A B C A B C ...), so a
drifting background load (a shared machine) hits every phase alike.

- no refresh: ``load_index(name)`` without auto_refresh; nothing else runs.
- swaps: ``load_index(name, auto_refresh=True, polling_interval_in_seconds=--poll)``
  while a publisher (its own client) calls ``add_docs`` of ``--batch``
  documents, waits for the job, and starts the next one ``--period`` s after the
  previous start (or at once if the build took longer). In embedded mode the
  publisher is a thread of this process and a watchfiles watch on the
  service's manifest wakes IndexSync at once; over HTTP the publisher is a
  process of its own (another device: its requests, a job poll every 10 ms,
  cost ~7% of a core that would have been charged to the refresh) and
  IndexSync polls. Swaps are counted with ``client.on_swap``.

Modes
-----
- embedded: the service runs in this process, so each new version is also
  *built* here (job thread: copy, writes, FTS5 check, sha256 ...), competing
  with the query threads for the GIL and the 2 cores.
- http: the service is a separate ``mosslite serve`` process on 127.0.0.1 and
  the client uses ``url=...``: the client process pays only for refreshing
  (manifest poll, download, sha256, fsync, open + hydrate, swap); the build
  still competes for the machine's cores but not for the client's GIL. This
  is the fair comparison for the refresh path (a real service runs elsewhere).

Diagnostics (``--diagnose``, on by default; embedded, no refresh): the same
query load with one interferer at a time, repeated every ``--period`` s, to
attribute the swap phase's tail: builds only (add_docs, auto_refresh off),
``IndexReader(file)`` + ``wait_ready()`` (opening a version as a refresh does) only, ``sha256`` of the file only, copy +
fsync of the file only; over HTTP: the server's builds only (add_docs,
auto_refresh off: on a shared machine the server's work loads the queries
too, which a real, remote service would not), and downloading the newest
version (httpx, in this process) only. Every phase also records garbage-collector pauses
(``gc.callbacks``) and how often a retired reader was closed and its file
deleted by a query thread (``LiveIndex._dispose`` runs in whichever thread
releases the last lease), with the longest such call.

Pinning (``--server-cpus 1 --client-cpus 0``): the server on one CPU and this
process (queries and refreshes) on the other, as if the service ran on another
machine: on 2 cores its builds otherwise take CPU time from the queries, which
a remote service would not. The client then has one core for 4 query threads
and its refreshes; the ratio is against its own no-refresh phase, pinned alike.
numpy's BLAS is held to as many threads as this process has CPUs, and the
publisher process runs on the server's CPUs.

"host steal" is the share of this process's CPUs' time the hypervisor took
(/proc/stat's steal), per phase: on a VM, a busy second vCPU can slow the first
one down, which no work of the queries or the refresh explains.

Targets (informational; exit status 0 either way): 0 errors; p99 during swaps
<= 1.5x p99 without refresh (same mode, same process).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt_ms, machine_summary, print_table, verdict  # noqa: E402
from hydrate import (  # noqa: E402  (the fixture and server helpers are shared with hydrate.py)
    PROJECT,
    PROJECT_KEY,
    LocalServer,
    copy_service_data,
    ensure_fixture,
    index_name,
    make_docs,
    vocabulary,
    zipf_weights,
)

from mosslite import QueryOptions, SyncMossClient  # noqa: E402
from mosslite._fs import fsync_file, sha256_file  # noqa: E402
from mosslite.client.embedded import close_embedded_services  # noqa: E402
from mosslite.index.reader import IndexReader  # noqa: E402
from mosslite.sync.live_index import LiveIndex  # noqa: E402

DIM = 384
RATIO_TARGET = 1.5
TOP_K = 5
ALPHA = 0.8


# -- workload ------------------------------------------------------------------------------


def make_queries(count: int, seed: int) -> list[tuple[str, QueryOptions]]:
    rng = np.random.default_rng(seed)
    vocab = vocabulary()
    weights = zipf_weights(len(vocab))
    vectors = rng.standard_normal((count, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    out = []
    for i in range(count):
        text = " ".join(vocab[w] for w in rng.choice(len(vocab), size=int(rng.integers(3, 7)), p=weights))
        out.append((text, QueryOptions(top_k=TOP_K, alpha=ALPHA, embedding=vectors[i].tolist())))
    return out


class GcPauses:
    """Durations of garbage collections while installed (gc.callbacks)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started: float | None = None

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.pauses.append((info["generation"], (time.perf_counter() - self._started) * 1000.0))
            self._started = None


class DisposeProbe:
    """Times ``LiveIndex._dispose`` (closing a retired reader and deleting its file), and
    records whether it ran on a query thread: the last lease holder pays for it."""

    def __init__(self) -> None:
        self.samples: list[tuple[bool, float]] = []
        self._original = LiveIndex._dispose
        probe = self

        def dispose(live: LiveIndex, slot: Any) -> None:
            started = time.perf_counter()
            try:
                probe._original(live, slot)
            finally:
                on_query_thread = threading.current_thread().name.startswith(QUERY_THREAD_PREFIX)
                probe.samples.append((on_query_thread, (time.perf_counter() - started) * 1000.0))

        LiveIndex._dispose = dispose  # type: ignore[method-assign]

    def take(self) -> str:
        samples, self.samples = self.samples, []
        if not samples:
            return "-"
        in_queries = [ms for q, ms in samples if q]
        longest = max(ms for _, ms in samples)
        return f"{len(in_queries)}/{len(samples)}, max {longest:.1f}"

    def remove(self) -> None:
        LiveIndex._dispose = self._original  # type: ignore[method-assign]


QUERY_THREAD_PREFIX = "bench-query-"


def open_ready(path: Path) -> IndexReader:
    """What a refresh does to open a version before it swaps it in: open, then wait
    for the 8-bit search of a large index (made on the reader's own thread)."""
    reader = IndexReader(path)
    reader.wait_ready()
    return reader


@dataclass
class PhaseResult:
    mode: str
    phase: str
    seconds: float
    latencies_ms: np.ndarray
    errors: int
    error_kinds: dict[str, int]
    swaps: int = 0
    published: int = 0
    swap_ms: list[float] = field(default_factory=list)
    gc: str = ""
    disposals: str = ""
    stolen: float = float("nan")  # share of this process's CPUs' time the hypervisor took

    @property
    def qps(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else float("nan")


def run_queries(client: SyncMossClient, name: str, queries: list[tuple[str, QueryOptions]], threads: int,
                duration_s: float) -> tuple[float, np.ndarray, int, dict[str, int]]:
    """``threads`` threads querying back to back for ``duration_s``; (seconds, latencies, errors, kinds)."""
    stop = threading.Event()
    start_gate = threading.Barrier(threads + 1)
    per_thread: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        out = per_thread[k]
        clock = time.perf_counter
        i = k * 7919
        start_gate.wait()
        while not stop.is_set():
            text, options = queries[i % len(queries)]
            i += 1
            started = clock()
            try:
                client.query(name, text, options)
            except Exception as exc:  # counted, never fatal: the figure is how many
                with lock:
                    errors.append(type(exc).__name__)
            out.append((clock() - started) * 1000.0)

    pool = [threading.Thread(target=worker, args=(k,), name=f"{QUERY_THREAD_PREFIX}{k}", daemon=True)
            for k in range(threads)]
    for t in pool:
        t.start()
    start_gate.wait()
    started = time.perf_counter()
    time.sleep(duration_s)
    stop.set()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    kinds: dict[str, int] = {}
    for kind in errors:
        kinds[kind] = kinds.get(kind, 0) + 1
    return elapsed, np.concatenate([np.asarray(p) for p in per_thread]), len(errors), kinds


class Periodic:
    """Runs ``action`` every ``period_s`` (start to start) on a thread until stopped."""

    def __init__(self, action: Callable[[int], None], period_s: float) -> None:
        self.action, self.period_s = action, period_s
        self.count = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.action(self.count)
                self.count += 1
            except Exception as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(max(0.0, self.period_s - (time.monotonic() - started)))

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bench-interferer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(120)


def publisher(client: SyncMossClient, name: str, batch: int, tag: str) -> Callable[[int], None]:
    def publish(k: int) -> None:
        docs = make_docs(batch, 50_000 + k, f"{tag}-{k}-")
        client.wait_for_job(client.add_docs(name, docs).job_id, poll_interval_seconds=0.01, timeout_seconds=120)

    return publish


class PublisherProcess:
    """A Periodic publisher in a process of its own (``--publisher URL``), driven over
    its stdin: over HTTP the writer is another device, and in this process its
    requests (add_docs, then a job poll every 10 ms: ~0.4 s of CPU in 6 s at 100k)
    took a client core's time from the queries that no refresh had spent."""

    def __init__(self, url: str, args: argparse.Namespace, tag: str) -> None:
        self.count = 0
        self.failures: list[str] = []
        cmd = [sys.executable, __file__, "--publisher", url, "--docs", str(args.docs), "--batch", str(args.batch),
               "--period", str(args.period), "--tag", tag]
        pin = (lambda: os.sched_setaffinity(0, args.server_cpus)) if args.server_cpus else None
        self._process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=pin)
        self._ask("ready")

    def _ask(self, command: str) -> str:
        assert self._process.stdin and self._process.stdout
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the publisher process exited ({self._process.wait()})")
        return answer.strip()

    def start(self) -> None:
        self._ask("start")

    def stop(self) -> None:
        if self._process.poll() is None:
            state = json.loads(self._ask("stop"))
            self.count, self.failures = state["count"], state["failures"]

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.communicate("quit\n", timeout=60)


def serve_publisher(url: str, args: argparse.Namespace) -> None:
    """The child of PublisherProcess: one line in (ready, start, stop, quit), one line out."""
    home = tempfile.TemporaryDirectory(prefix="mosslite-bench-writer-")
    client = SyncMossClient(PROJECT, PROJECT_KEY, url=url, cache_path=home.name)
    periodic = Periodic(publisher(client, index_name(args.docs), args.batch, args.tag), args.period)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            if command == "start":
                periodic.start()
            elif command == "stop":
                periodic.stop()
            answer = json.dumps({"count": periodic.count, "failures": periodic.failures}) if command == "stop" else "ok"
            print(answer, flush=True)
    finally:
        periodic.stop()
        client.close()
        home.cleanup()


@dataclass
class Condition:
    """One phase: what runs beside the queries, and how to switch it on and off."""

    label: str
    interferer: Periodic | PublisherProcess | None = None
    auto_refresh: bool = False
    seconds: float = 0.0
    latencies: list[np.ndarray] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    swap_ms: list[float] = field(default_factory=list)
    gc_pauses: list[tuple[int, float]] = field(default_factory=list)
    disposals: list[tuple[bool, float]] = field(default_factory=list)
    stolen_s: float = 0.0


# -- where it runs --------------------------------------------------------------------------


def cpu_list(text: str) -> set[int]:
    return {int(c) for c in text.split(",") if c.strip()}


def stolen_s() -> float:
    """Seconds of "steal" (/proc/stat: time a VM's CPU waited for the host) summed over
    the CPUs this process may run on; 0 where the kernel does not say. On this 2-vCPU VM
    it rose from 0 to ~10% of CPU 0 whenever a build kept CPU 1 busy: a slowdown of the
    queries that no work of theirs or the refresh's explains."""
    try:
        mine = {f"cpu{c}" for c in os.sched_getaffinity(0)}
        with open("/proc/stat") as fh:
            return sum(int(f[8]) for f in map(str.split, fh) if f[0] in mine and len(f) > 8) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0.0


_blas_limit: list[Any] = []


def pin_this_process(cpus: set[int]) -> None:
    """Every thread of this process onto ``cpus``; threads started later inherit it. And
    numpy's BLAS held to that many threads, as a process started on those CPUs would
    have it: OpenBLAS's threads were made at import, one per CPU, and two of them
    spinning on one CPU turned the 10k exact scan's ~1 ms into p99s of ~2 s."""
    from threadpoolctl import threadpool_limits

    for thread in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(thread), cpus)
    _blas_limit.append(threadpool_limits(limits=len(cpus), user_api="blas"))


# -- one mode ------------------------------------------------------------------------------


def measure_mode(mode: str, data: Path, args: argparse.Namespace, work: Path,
                 queries: list[tuple[str, QueryOptions]], stored_file: Path) -> list[PhaseResult]:
    """Every condition gets ``--duration`` s of queries in ``--rounds`` slices, taken in turn
    (A B C A B C ...), so drifting background load hits every condition alike."""
    name = index_name(args.docs)
    server = None
    if mode == "http":
        server = LocalServer(data, cpus=args.server_cpus).start()
        kwargs: dict[str, Any] = {"url": server.url}
    else:
        kwargs = {}
    home = data.parent if mode == "embedded" else work / "http-home"
    client = SyncMossClient(PROJECT, PROJECT_KEY, cache_path=home, **kwargs)
    writer = SyncMossClient(PROJECT, PROJECT_KEY, cache_path=home, **kwargs)
    swaps: list[float] = []
    client.on_swap(lambda event: swaps.append(event.duration_ms))
    disposals = DisposeProbe()

    def publishing(tag: str) -> Periodic | PublisherProcess:
        if mode == "http":
            return PublisherProcess(kwargs["url"], args, tag)
        return Periodic(publisher(writer, name, args.batch, tag), args.period)

    conditions = [
        Condition("no refresh"),
        Condition(f"swaps (publish every {args.period:g}s)", publishing("swap"), auto_refresh=True),
    ]
    if args.diagnose and mode == "embedded":
        copy_target = work / "copy-interferer.sqlite"

        def copy_fsync(_: int) -> None:
            shutil.copyfile(stored_file, copy_target)
            fsync_file(copy_target)

        conditions += [
            Condition("builds only, no swap", publishing("build")),
            Condition("IndexReader(file) only", Periodic(lambda _: open_ready(stored_file).close(), args.period)),
            Condition("sha256(file) only", Periodic(lambda _: sha256_file(stored_file), args.period)),
            Condition("copy + fsync(file) only", Periodic(copy_fsync, args.period)),
        ]
    if args.diagnose and mode == "http":
        conditions += [
            # The server shares this machine's cores: its builds load the client's
            # queries without any refresh. A real service runs elsewhere.
            Condition("server builds only, no swap", publishing("build")),
            Condition("HTTP download only, no swap", Periodic(downloader(kwargs["url"], name, work), args.period)),
        ]

    def wait_converged(timeout_s: float = 10.0) -> None:
        """Until the loaded version is the newest published one (outside the timed slices)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and client.get_loaded_version(name) < writer.get_index(name).version:
            time.sleep(0.05)

    try:
        client.load_index(name)
        run_queries(client, name, queries, args.threads, min(2.0, args.duration))  # warm-up, untimed
        slice_s = args.duration / args.rounds
        for round_no in range(args.rounds):
            for cond in conditions:
                if cond.auto_refresh:
                    client.load_index(name, auto_refresh=True, polling_interval_in_seconds=args.poll)
                swaps.clear()
                disposals.take()
                gc.collect()  # each slice starts with no garbage left by the previous one
                if cond.interferer:
                    cond.interferer.start()
                stolen_before = stolen_s()
                with GcPauses() as pauses:
                    seconds, lat, errors, kinds = run_queries(client, name, queries, args.threads, slice_s)
                cond.stolen_s += stolen_s() - stolen_before
                if cond.interferer:
                    cond.interferer.stop()
                if cond.auto_refresh:
                    wait_converged()
                    client.load_index(name, auto_refresh=False)  # also installs anything still pending
                    wait_converged()
                cond.seconds += seconds
                cond.latencies.append(lat)
                cond.errors += errors
                for kind, count in kinds.items():
                    cond.error_kinds[kind] = cond.error_kinds.get(kind, 0) + count
                cond.swap_ms.extend(swaps)
                cond.gc_pauses.extend(pauses.pauses)
                cond.disposals.extend(disposals.samples)
                disposals.take()
                print(f"   {mode:8s} round {round_no + 1}/{args.rounds} {cond.label:32s} {len(lat) / seconds:7.0f} q/s  "
                      f"p99 {np.percentile(lat, 99):8.2f} ms  errors {errors}  swaps {len(swaps)}", flush=True)
    finally:
        for cond in conditions:
            if cond.interferer:
                cond.interferer.stop()
            if isinstance(cond.interferer, PublisherProcess):
                cond.interferer.close()
        disposals.remove()
        writer.close()
        client.close()
        close_embedded_services()
        if server is not None:
            server.stop()

    results = []
    for cond in conditions:
        if cond.interferer and cond.interferer.failures:
            print(f"   {cond.label}: {len(cond.interferer.failures)} interferer failures, e.g. {cond.interferer.failures[0]}")
        gen2 = [ms for gen, ms in cond.gc_pauses if gen == 2]
        longest_gc = max((ms for _, ms in cond.gc_pauses), default=0.0)
        in_queries = [ms for on_query, ms in cond.disposals if on_query]
        results.append(PhaseResult(
            mode, cond.label, cond.seconds, np.concatenate(cond.latencies), cond.errors, cond.error_kinds,
            swaps=len(cond.swap_ms), swap_ms=cond.swap_ms,
            published=cond.interferer.count if cond.interferer else 0,
            gc=f"{len(cond.gc_pauses)} ({len(gen2)} gen2), max {longest_gc:.1f}, sum {sum(ms for _, ms in cond.gc_pauses):.0f}",
            disposals=(f"{len(in_queries)}/{len(cond.disposals)}, max {max(ms for _, ms in cond.disposals):.1f}"
                       if cond.disposals else "-"),
            stolen=cond.stolen_s / (cond.seconds * len(os.sched_getaffinity(0))),
        ))
    return results


def downloader(url: str, name: str, work: Path) -> Callable[[int], None]:
    """Downloads the newest version over HTTP into a scratch file, as a refresh would
    (its own event loop and httpx client, in the interferer thread)."""
    from mosslite.transport.http import HTTPTransport

    async def fetch() -> None:
        transport = HTTPTransport(url, PROJECT, PROJECT_KEY)
        try:
            manifest = await transport.manifest(name)
            await transport.download(name, manifest.version, work / "download-interferer.part")
        finally:
            await transport.aclose()

    return lambda _: asyncio.run(fetch())


# -- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of queries per phase (all rounds)")
    parser.add_argument("--rounds", type=int, default=5, help="slices per phase, interleaved with the other phases")
    parser.add_argument("--period", type=float, default=0.3, help="seconds between publications")
    parser.add_argument("--batch", type=int, default=3, help="documents per add_docs")
    parser.add_argument("--poll", type=float, default=0.2, help="polling_interval_in_seconds with auto_refresh")
    parser.add_argument("--modes", default="embedded,http", help="comma-separated: embedded, http")
    parser.add_argument("--no-diagnose", dest="diagnose", action="store_false", help="skip the interferer phases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="4 s per phase in 2 rounds")
    parser.add_argument("--server-cpus", type=cpu_list, help="http: the CPUs the server runs on, e.g. 1")
    parser.add_argument("--client-cpus", type=cpu_list, help="the CPUs this process (queries, refreshes) runs on, e.g. 0")
    parser.add_argument("--publisher", metavar="URL", help=argparse.SUPPRESS)  # PublisherProcess's child
    parser.add_argument("--tag", default="swap", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        serve_publisher(args.publisher, args)
        return
    if args.quick:
        args.duration, args.rounds = 4.0, 2
    if args.client_cpus:
        pin_this_process(args.client_cpus)
    modes = [m for m in args.modes.split(",") if m]

    print("mosslite hot swap benchmark")
    print(machine_summary())
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.threads} query threads, "
          f"{args.duration:g} s per phase in {args.rounds} interleaved rounds, publish {args.batch} docs every {args.period:g} s, poll {args.poll:g} s")
    if args.server_cpus or args.client_cpus:
        print(f"pinned: server on CPUs {sorted(args.server_cpus or [])}, this process on CPUs {sorted(args.client_cpus or [])} "
              "(as if the service ran on another machine: its builds leave the queries' CPU alone)")
    root = ensure_fixture([args.docs], args.seed)
    queries = make_queries(2000, args.seed + 1)

    results: list[PhaseResult] = []
    with tempfile.TemporaryDirectory(prefix="mosslite-bench-hotswap-") as tmp:
        work = Path(tmp)
        stored_file = work / "stored.sqlite"
        for mode in modes:
            data = copy_service_data(root, work / mode / "service", [index_name(args.docs)])
            if not stored_file.exists():
                stored_file.write_bytes(next((data / "storage").rglob("*.sqlite")).read_bytes())
            print(f"measuring {mode} ...", flush=True)
            results.extend(measure_mode(mode, data, args, work, queries, stored_file))

    rows = []
    for r in results:
        base = next(b for b in results if b.mode == r.mode and b.phase == "no refresh")
        ratio = r.pct(99) / base.pct(99)
        is_swaps = r.phase.startswith("swaps")
        target = f"<={RATIO_TARGET:g}x: {verdict(ratio <= RATIO_TARGET)}" if is_swaps else ""
        swap_cell = f"{r.swaps} ({fmt_ms(float(np.median(r.swap_ms)), 0)} ms)" if r.swap_ms else str(r.swaps)
        errors = f"{r.errors}: {verdict(r.errors == 0)}"
        rows.append([r.mode, r.phase, f"{r.qps:.0f}", fmt_ms(r.pct(50), 2), fmt_ms(r.pct(99), 2),
                     fmt_ms(float(r.latencies_ms.max()), 1), errors, str(r.published) if r.published else "",
                     swap_cell, f"{ratio:.2f}x", target, f"{100 * r.stolen:.1f}%", r.gc, r.disposals])
    print_table(
        f"hot swap: {args.threads} threads of SyncMossClient.query on a {args.docs:,}-doc index "
        f"(ms; ratio = p99 / p99 of the same mode's no-refresh phase)",
        ["mode", "phase", "q/s", "p50", "p99", "max", "errors", "runs", "swaps (p50 swap)", "p99 ratio", "target",
         "host steal", "gc runs (ms)", "old reader disposed in a query thread (ms)"],
        rows,
    )
    kinds = {k: v for r in results for k, v in r.error_kinds.items()}
    if kinds:
        print(f"   error kinds: {kinds}")


if __name__ == "__main__":
    main()
