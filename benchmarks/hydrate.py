"""load_index time (download + verify + open + hydrate) and refresh time, embedded and over HTTP.

Run:  .venv/bin/python benchmarks/hydrate.py [--sizes 1000,10000,100000] [--reps 5] [--quick]

What is measured
----------------
Indexes of 1k, 10k and 100k documents (model ``custom``, random 384-d unit
vectors, texts of 40-80 words drawn Zipf-like from ~100 common English words
followed by 20k pseudo-words), built once through the embedded service and
cached as a service data folder under ``~/.cache/mosslite-bench/``; each run
works on a temp copy of that folder.

- cold load: ``SyncMossClient.load_index(name, cache_path=<fresh empty dir>)``,
  wall clock around the call. Embedded: the client runs the service in this
  process and "download" is a file copy from its storage. HTTP: a real
  ``mosslite serve`` subprocess on 127.0.0.1 and ``SyncMossClient(url=...)``.
  Each load goes to a new, empty client cache folder, then ``unload_index``.
- refresh: after ``add_docs`` of 10 documents (a new version) and its job's
  completion, ``load_index(name)`` again on the loaded index: manifest ->
  fetch -> verify -> open + hydrate -> swap. Over HTTP the fetch is a page patch
  from the version the client holds (only the pages that changed, applied to
  a copy of it); "refresh, whole file" is the same refresh with patches refused,
  so the whole new version is downloaded (interleaved with the patched one).
  "MB fetched" is ``SwapEvent.downloaded_bytes``.
- "http, slow link": the same over a link of ``--link-mbps`` (default 100
  Mbit/s), paced by the server plugin ``tests/plugins/mosslite_test_models.py``
  (loaded by the server process only), up to 10k documents:
  what a patch is worth off loopback, where bytes cost time.
- every load starts after ``os.sync()``: dirty pages left behind by the fixture
  copy made this VM throttle the load's own writes to disk speed.
- the split comes from wrappers installed for the run (no library change):
  ``transport.manifest``, ``transport.download``, ``transport.download_patch``, and in
  ``mosslite.cache.fetch`` / ``mosslite.cache.verify`` / ``mosslite.sync.index_sync``
  the functions ``sha256_file`` (verify: re-read and hash, when the transport
  did not hash while writing), ``apply_patch`` (base + pages -> new file, hashed as written),
  ``install`` (fsync + rename + fsync dir)
  and ``IndexReader`` (open + hydrate). "other" = total minus those (thread
  hops, cache-folder locks, removing older versions, the swap itself).
- baseline, same process: ``IndexReader(path)`` on the service's own copy of
  the same version (file in the OS page cache): what a load costs with no
  transfer and no verification. "x open" = load p50 / that p50.
- shipping a small change: over HTTP, the median size of the page patch a
  refresh fetched after ``add_docs`` of 10 documents, against the file.
- reader anatomy: what ``IndexReader`` reads at open, step by step on the same
  file (meta, vec0's chunk table, the vectors, the document lengths), then the
  8-bit search of a large index (its stored codes, onnxruntime's sessions),
  which the reader makes ready on its own thread: ``IndexReader(path)`` alone,
  and until ``wait_ready()``.

Targets (informational; exit status 0 either way): load and refresh of the
10k-document index <= 150 ms; the patch after adding 10 documents to it <= 1%
of the file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Percentiles, cache_dir, fmt_ms, machine_summary, print_table, verdict  # noqa: E402

import mosslite.cache.fetch as fetch_module  # noqa: E402
import mosslite.cache.verify as verify_module  # noqa: E402
import mosslite.sync.index_sync as index_sync_module  # noqa: E402
from mosslite import FORMAT_VERSION, DocumentInfo, SyncMossClient  # noqa: E402
from mosslite._db import connect  # noqa: E402
from mosslite.client.embedded import close_embedded_services  # noqa: E402
from mosslite.index import vec0  # noqa: E402
from mosslite.index.format import read_meta  # noqa: E402
from mosslite.index.postings import read_lengths  # noqa: E402
from mosslite.index.reader import IndexReader  # noqa: E402
from mosslite.index.vectors.choice import vector_search  # noqa: E402
from mosslite.index.vectors.stored_codes import read_codebook, read_codes  # noqa: E402
from mosslite.service import Service  # noqa: E402
from mosslite.service.catalog import Catalog  # noqa: E402
from mosslite.types import SwapEvent  # noqa: E402

PLUGINS = Path(__file__).resolve().parent.parent / "tests" / "plugins"
GENERATOR_VERSION = 2
VOCAB_SIZE = 20_000
DIM = 384
PROJECT = "bench"
PROJECT_KEY = "bench-key"
TARGET_MS_10K = 150.0
#: Issue #7: the patch after adding 10 documents to a 10k-document index.
PATCH_SHARE_10K = 0.01
LINK_MODE = "http, slow link"
LINK_MAX_DOCS = 10_000
KINDS = ("cold load", "refresh", "refresh, whole file")
ADD_COUNT = 10
CHUNK = 20_000  # documents per job while building a fixture (one JSON request each)

WORDS = """
the of and to a in is that for it as was with be by on not this are or from at which but have an they you
were there been one all we their has would when if so no out what up who them some more can time into only
refund shipping delivery battery warranty return customer account payment invoice product device screen
charger cable software update password login email message subscription discount coupon package tracking
address store pickup size colour fabric kitchen garden travel ticket booking hotel flight seat luggage claim
repair manual setup install network router printer camera speaker headphones keyboard laptop phone tablet
""".split()


# -- corpus and fixtures ---------------------------------------------------------------------


_VOCAB: list[str] = []


def vocabulary() -> list[str]:
    """WORDS (common English, head first) then pronounceable pseudo-words up to VOCAB_SIZE,
    so FTS5 sees realistic document frequencies: a few words in every document, most rare."""
    if not _VOCAB:
        rng = np.random.default_rng(12345)
        head = list(dict.fromkeys(WORDS))
        seen = set(head)
        onsets = "b c d f g h j k l m n p r s t v w z br ch cl dr fl gr pl pr sh st th tr".split()
        vowels = "a e i o u ai ea ee io oo ou".split()
        codas = ["", "", "n", "r", "s", "l", "m", "nd", "st", "x"]
        tail = []
        while len(head) + len(tail) < VOCAB_SIZE:
            word = "".join(
                onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))] + codas[rng.integers(len(codas))]
                for _ in range(int(rng.integers(1, 4)))
            )
            if word not in seen:
                seen.add(word)
                tail.append(word)
        _VOCAB.extend(head + tail)
    return _VOCAB


def zipf_weights(size: int) -> np.ndarray:
    weights = 1.0 / (np.arange(1, size + 1) + 2.7)  # Zipf-Mandelbrot, s = 1
    return weights / weights.sum()


def make_docs(n: int, seed: int, prefix: str) -> list[DocumentInfo]:
    """``n`` documents: 40-80 Zipf-distributed words, a small metadata field, a random unit vector."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.round(vectors, 5)  # short JSON in the job request; normalised again by the builder
    vocab = vocabulary()
    lengths = rng.integers(40, 81, size=n)
    words = rng.choice(len(vocab), size=int(lengths.sum()), p=zipf_weights(len(vocab)))
    docs, at = [], 0
    for i, length in enumerate(lengths):
        text = " ".join(vocab[w] for w in words[at : at + length])
        at += length
        docs.append(DocumentInfo(id=f"{prefix}{i:06d}", text=text, metadata={"k": str(i % 7)}, embedding=vectors[i].tolist()))
    return docs


def index_name(n: int) -> str:
    return f"custom-{n}"


def fixture_root(seed: int) -> Path:
    return cache_dir() / f"hydrate-custom-g{GENERATOR_VERSION}-f{FORMAT_VERSION}-s{seed}"


def ensure_fixture(sizes: list[int], seed: int) -> Path:
    """One cached service data folder holding index ``custom-<n>`` for every size."""
    root = fixture_root(seed)
    for n in sizes:
        marker = root / f"ready-{n}"
        if marker.exists():
            continue
        print(f"building fixture index {index_name(n)} ({n:,} docs) in {root} (cached for later runs) ...", flush=True)
        started = time.perf_counter()
        client = SyncMossClient(PROJECT, PROJECT_KEY, cache_path=root)
        try:
            try:
                client.delete_index(index_name(n))
            except Exception:
                pass
            for start in range(0, n, CHUNK):
                docs = make_docs(min(CHUNK, n - start), seed + start, f"doc-{start // CHUNK}-")
                if start == 0:
                    job = client.create_index(index_name(n), docs, model_id="custom")
                else:
                    job = client.add_docs(index_name(n), docs)
                client.wait_for_job(job.job_id, poll_interval_seconds=0.1, timeout_seconds=3600)
        finally:
            client.close()
            close_embedded_services()
        prune_old_versions(root / "service")
        marker.write_text(f"built in {time.perf_counter() - started:.0f} s\n")
    return root


def prune_old_versions(data: Path) -> None:
    """Only the newest version file of each index is ever read from a fixture."""
    for folder in {p.parent for p in (data / "storage").rglob("*.sqlite")}:
        versions = sorted(p for p in folder.iterdir() if p.suffix == ".sqlite")
        for old in versions[:-1]:
            old.unlink()


def copy_service_data(root: Path, dest: Path, names: list[str]) -> Path:
    """A private copy of the fixture's service folder holding only ``names``' files."""
    src = root / "service"
    keep = {f"{PROJECT}/{name}" for name in names}

    def ignore(folder: str, entries: list[str]) -> list[str]:
        rel = Path(folder).relative_to(src).as_posix()
        if rel == "storage/" + PROJECT:
            return [e for e in entries if f"{PROJECT}/{e}" not in keep]
        return [e for e in entries if e == "cache"]

    shutil.copytree(src, dest, ignore=ignore)
    return dest


# -- a real `mosslite serve` on loopback ---------------------------------------------------------


def slug(mode: str) -> str:
    return mode.replace(", ", "-").replace(" ", "-")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """``python -m mosslite serve`` on 127.0.0.1 (as tests/client/conftest.py starts it)."""

    def __init__(self, data: Path, link_bps: float = 0.0, cpus: set[int] | None = None) -> None:
        self.data = data
        self.link_bps = link_bps  # 0: loopback as it is; else a link of that many bytes/s
        self.cpus = cpus  # the CPUs the server runs on (all its threads), else any
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def new_key(self, project: str) -> str:
        catalog = Catalog(self.data / "catalog.sqlite")
        try:
            return catalog.add_key(project)
        finally:
            catalog.close()

    def start(self) -> LocalServer:
        cmd = [sys.executable, "-m", "mosslite", "serve", "--data", str(self.data), "--host", "127.0.0.1",
               "--port", str(self.port), "--plugin", "mosslite_test_models", "--no-access-log"]
        # The test suite's server plugin paces version downloads and patches: a slow link.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]),
               "MOSSLITE_TEST_THROTTLE_BPS": str(self.link_bps), "MOSSLITE_TEST_THROTTLE_PREFIX": ""}
        pin = (lambda: os.sched_setaffinity(0, self.cpus)) if self.cpus else None
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._log, env=env, preexec_fn=pin)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.seek(0)
                raise RuntimeError(f"mosslite serve exited: {self._log.read().decode(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosslite serve did not start listening")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


# -- instrumentation -------------------------------------------------------------------------


SPLITS = ["manifest", "download", "patch", "apply patch", "sha256", "fsync+rename", "open+hydrate"]


class LoadProbe:
    """Times the steps of a refresh by wrapping the functions it calls (one load at a time)."""

    def __init__(self, transport: Any) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._restore: list[Callable[[], None]] = []
        self._wrap_async(transport, "manifest", "manifest")
        self._wrap_async(transport, "download", "download")
        self._wrap_async(transport, "download_patch", "patch")
        self._wrap_sync(fetch_module, "apply_patch", "apply patch")
        self._wrap_sync(verify_module, "sha256_file", "sha256")
        self._wrap_sync(verify_module, "install", "fsync+rename")
        self._wrap_sync(index_sync_module, "IndexReader", "open+hydrate")

    def _add(self, key: str, seconds: float) -> None:
        with self._lock:
            self.current[key] += seconds

    def _wrap_sync(self, owner: Any, attr: str, key: str) -> None:
        original = getattr(owner, attr)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._add(key, time.perf_counter() - started)

        setattr(owner, attr, wrapper)
        self._restore.append(lambda: setattr(owner, attr, original))

    def _wrap_async(self, owner: Any, attr: str, key: str) -> None:
        original = getattr(owner, attr)

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self._add(key, time.perf_counter() - started)

        setattr(owner, attr, wrapper)
        self._restore.append(lambda: owner.__dict__.pop(attr, None))

    def take(self) -> dict[str, float]:
        with self._lock:
            out = dict(self.current)
            self.current.clear()
        return out

    def remove(self) -> None:
        for undo in reversed(self._restore):
            undo()


# -- measurements ---------------------------------------------------------------------------


class Series:
    """Samples of one kind of load: totals and their split, in ms."""

    def __init__(self) -> None:
        self.total: list[float] = []
        self.parts: dict[str, list[float]] = defaultdict(list)
        self.swap_ms: list[float] = []
        self.fetched_mb: list[float] = []

    def add(self, total_s: float, parts: dict[str, float]) -> None:
        self.total.append(total_s * 1000.0)
        for key in SPLITS:
            self.parts[key].append(parts.get(key, 0.0) * 1000.0)
        self.parts["other"].append(total_s * 1000.0 - sum(parts.get(k, 0.0) for k in SPLITS) * 1000.0)


def bare_open_ms(path: Path, reps: int) -> list[float]:
    IndexReader(path).close()  # warm the page cache
    out = []
    for _ in range(reps):
        started = time.perf_counter()
        reader = IndexReader(path)
        out.append((time.perf_counter() - started) * 1000.0)
        reader.close()
    return out


def measure_mode(mode: str, data: Path, sizes: list[int], args: argparse.Namespace, work: Path) -> dict[tuple[int, str], Series]:
    """Cold loads and refreshes of each size through one client (embedded or HTTP)."""
    work = work / slug(mode)
    server = None
    results: dict[tuple[int, str], Series] = {}
    if mode.startswith("http"):
        link_bps = args.link_mbps * 1e6 / 8 if mode == LINK_MODE else 0.0
        server = LocalServer(data, link_bps).start()
        client = SyncMossClient(PROJECT, PROJECT_KEY, url=server.url, cache_path=work / f"{mode}-home")
    else:
        client = SyncMossClient(PROJECT, PROJECT_KEY, cache_path=data.parent)
        assert client.async_client.transport.service.data_dir.resolve() == data.resolve()
    transport = client.async_client.transport
    probe = LoadProbe(transport)
    swaps: list[SwapEvent] = []
    client.on_swap(swaps.append)
    # Over HTTP a refresh fetches a page patch; the same refresh with patches refused
    # (the whole file, as a client without a cached version gets it) is the baseline.
    kinds = ["refresh", "refresh, whole file"] if mode.startswith("http") else ["refresh"]
    patching = transport.download_patch

    async def no_patch(*args: Any, **kwargs: Any) -> bool:
        return False

    try:
        for n in sizes:
            if mode == LINK_MODE and n > LINK_MAX_DOCS:
                continue  # minutes per load on a slow link
            name = index_name(n)
            reps = args.reps if n < 100_000 else max(2, args.reps // 2)
            cold = results[(n, "cold load")] = Series()
            # One untimed load first: imports, thread pools, the server's first request.
            client.load_index(name, cache_path=work / f"{mode}-warm-{n}")
            client.unload_index(name)
            probe.take()
            for r in range(reps):
                cache = work / f"{mode}-cold-{n}-{r}"
                # Dirty pages left by the fixture copy or by earlier loads made this VM
                # throttle new writes to disk speed (a 48 MB write: 17 ms after a sync,
                # 145 ms with 600 MB pending); a device that refreshes every few minutes
                # has long written those back, so each load starts after a sync.
                os.sync()
                started = time.perf_counter()
                client.load_index(name, cache_path=cache)
                total = time.perf_counter() - started
                cold.add(total, probe.take())
                client.unload_index(name)
                shutil.rmtree(cache, ignore_errors=True)
            cache = work / f"{mode}-refresh-{n}"
            client.load_index(name, cache_path=cache)
            for r in range(reps):
                for kind in kinds:  # interleaved, so both see the same machine
                    series = results.setdefault((n, kind), Series())
                    transport.download_patch = no_patch if kind == "refresh, whole file" else patching
                    docs = make_docs(ADD_COUNT, 10_000 + r, f"{mode}-add-{r}-{len(kind)}-")
                    client.wait_for_job(client.add_docs(name, docs).job_id, poll_interval_seconds=0.02, timeout_seconds=600)
                    before = client.get_loaded_version(name)
                    os.sync()
                    probe.take()
                    swaps.clear()
                    started = time.perf_counter()
                    client.load_index(name)
                    total = time.perf_counter() - started
                    series.add(total, probe.take())
                    assert client.get_loaded_version(name) == before + 1, "refresh did not install the new version"
                    series.swap_ms.extend(event.duration_ms for event in swaps)
                    series.fetched_mb.extend(event.downloaded_bytes / 1e6 for event in swaps)
            transport.download_patch = patching
            client.unload_index(name)
            shutil.rmtree(cache, ignore_errors=True)
    finally:
        probe.remove()
        client.close()
        close_embedded_services()
        if server is not None:
            server.stop()
    return results


def reader_anatomy(path: Path, reps: int) -> list[tuple[str, float]]:
    """IndexReader's steps one by one (median ms over ``reps``): what opening reads
    (format 3), then the 8-bit search the reader makes ready on its own thread."""
    samples: dict[str, list[float]] = defaultdict(list)
    clock = time.perf_counter
    for _ in range(reps):
        t0 = clock()
        conn = connect(path, immutable=True)  # as the reader's connections
        meta = read_meta(conn, path)
        t1 = clock()
        layout = vec0.read_layout(conn)
        t2 = clock()
        helper = connect(path, immutable=True) if vec0.reads_in_two(4 * len(layout) * meta.dimension) else None
        matrix = vec0.read_matrix(conn, layout, meta.dimension, helper=helper)
        t3 = clock()
        read_lengths(conn)
        t4 = clock()
        codebook = read_codebook(conn)
        codes = read_codes(conn, codebook, layout) if codebook is not None else None
        t5 = clock()
        vector_search(matrix, codes=codes)
        t6 = clock()
        conn.close()
        if helper is not None:
            helper.close()
        del matrix, codes
        t7 = clock()
        reader = IndexReader(path)
        t8 = clock()
        reader.wait_ready()
        t9 = clock()
        reader.close()
        samples["connect + read_meta"].append(t1 - t0)
        samples["vec0 chunk table (which slots hold which rowids)"].append(t2 - t1)
        samples["vectors: blob reads into the matrix (two threads from 16 MB)"].append(t3 - t2)
        samples["document lengths (docs_lengths blocks)"].append(t4 - t3)
        samples["8-bit codes: blob reads into place (large indexes)"].append(t5 - t4)
        samples["8-bit search: onnxruntime sessions (large indexes)"].append(t6 - t5)
        samples["= IndexReader(path): serving, exact"].append(t8 - t7)
        samples["= ... + wait_ready(): the 8-bit search ready"].append(t9 - t7)
    return [(name, float(np.median(values)) * 1000.0) for name, values in samples.items()]


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated document counts")
    parser.add_argument("--reps", type=int, default=7, help="loads per size and kind (halved at 100k)")
    parser.add_argument("--modes", default="embedded,http,link", help="comma-separated: embedded, http, link")
    parser.add_argument("--link-mbps", type=float, default=100.0, help="the link of mode 'link' (up to 10k docs)")
    parser.add_argument("--tmp", default=None, help="folder for the service copy and client caches (/dev/shm: no disk)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="sizes 1000,10000 and 3 reps")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.reps = "1000,10000", 3
    sizes = [int(s) for s in args.sizes.split(",") if s]
    modes = [LINK_MODE if m == "link" else m for m in args.modes.split(",") if m]

    print("mosslite load_index / refresh benchmark")
    print(machine_summary())
    print(f"files under {args.tmp or tempfile.gettempdir()}; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    root = ensure_fixture(sizes, args.seed)

    with tempfile.TemporaryDirectory(prefix="mosslite-bench-hydrate-", dir=args.tmp) as tmp:
        work = Path(tmp)
        names = [index_name(n) for n in sizes]
        files: dict[int, Path] = {}
        sizes_mb: dict[int, float] = {}
        results: dict[str, dict[tuple[int, str], Series]] = {}
        for mode in modes:
            data = copy_service_data(root, work / slug(mode) / "service", names)
            if not files:
                service = Service(data, start_jobs=False)
                for n in sizes:
                    record = service.catalog.latest_version(PROJECT, index_name(n))
                    files[n] = work / f"baseline-{n}.sqlite"
                    shutil.copyfile(service.local_copy(record), files[n])
                    sizes_mb[n] = files[n].stat().st_size / 1e6
                service.close()
            print(f"measuring {mode} ...", flush=True)
            results[mode] = measure_mode(mode, data, sizes, args, work)

        baseline = {n: Percentiles.of(bare_open_ms(files[n], max(5, args.reps))) for n in sizes}
        rows = []
        for n in sizes:
            rows.append([f"{n:,}", "IndexReader(path) alone (baseline)", "-", fmt_ms(baseline[n].p50, 1),
                         fmt_ms(baseline[n].p95, 1), fmt_ms(baseline[n].p99, 1), "1.00x", "", "", f"{sizes_mb[n]:.1f}"])
            for mode in modes:
                for kind in KINDS:
                    if (n, kind) not in results[mode]:
                        continue
                    series = results[mode][(n, kind)]
                    s = Percentiles.of(series.total)
                    at_10k = n == 10_000
                    target = f"<={TARGET_MS_10K:g}ms: {verdict(s.p50 <= TARGET_MS_10K)}" if at_10k and mode != LINK_MODE else ""
                    other = results.get("embedded", {}).get((n, kind)) if mode != "embedded" else None
                    vs_embedded = f"{s.p50 / Percentiles.of(other.total).p50:.2f}x" if other else ""
                    rows.append([f"{n:,}", f"{mode} {kind}", str(s.n), fmt_ms(s.p50, 1), fmt_ms(s.p95, 1),
                                 fmt_ms(s.p99, 1), f"{s.p50 / baseline[n].p50:.2f}x", vs_embedded, target, ""])
        print_table(
            "load_index wall time (ms); x open = p50 / IndexReader(path) p50; target applies to p50",
            ["docs", "what", "n", "p50", "p95", "p99", "x open", "vs embedded", "target", "file MB"],
            rows,
        )

        split_rows = []
        for n in sizes:
            for mode in modes:
                for kind in KINDS:
                    if (n, kind) not in results[mode]:
                        continue
                    series = results[mode][(n, kind)]
                    cells = [fmt_ms(float(np.median(series.parts[k])), 1) for k in [*SPLITS, "other"]]
                    swap = fmt_ms(float(np.median(series.swap_ms)), 1) if series.swap_ms else "-"
                    fetched = f"{float(np.median(series.fetched_mb)):.2f}" if series.fetched_mb else "-"
                    split_rows.append(
                        [f"{n:,}", f"{mode} {kind}", fmt_ms(float(np.median(series.total)), 1), *cells, swap, fetched]
                    )
        print_table(
            "where the time goes (median ms per step; patch = fetching a page patch, apply patch = copy + patch + sha256)",
            ["docs", "what", "total", *SPLITS, "other", "SwapEvent ms", "MB fetched"],
            split_rows,
        )

        patch_rows = []
        for n in sizes:
            for mode in modes:
                series = results[mode].get((n, "refresh"))
                if mode == "embedded" or series is None or not series.fetched_mb:
                    continue
                share = float(np.median(series.fetched_mb)) / sizes_mb[n]
                target = f"<= {PATCH_SHARE_10K:.0%}: {verdict(share <= PATCH_SHARE_10K)}" if n == 10_000 else ""
                patch_rows.append([f"{n:,}", mode, f"{sizes_mb[n]:.1f}", f"{float(np.median(series.fetched_mb)):.3f}",
                                   f"{share:.2%}", target])
        print_table(
            f"shipping a small change: the page patch after add_docs of {ADD_COUNT} documents (median of the refreshes)",
            ["docs", "mode", "file MB", "patch MB", "of the file", "target"],
            patch_rows,
        )

        anatomy_rows = []
        for n in sizes:
            for name, value in reader_anatomy(files[n], 3 if n >= 100_000 else 5):
                anatomy_rows.append([f"{n:,}", name, fmt_ms(value, 1)])
        print_table("IndexReader anatomy (median ms, page cache warm)", ["docs", "step", "ms"], anatomy_rows)


if __name__ == "__main__":
    main()
