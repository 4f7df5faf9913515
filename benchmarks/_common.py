"""Shared helpers for the benchmark scripts: cache directory, timing, percentiles
and fixed-width tables (plain string formatting, no dependencies beyond numpy).

Conventions used by every script:

- Latencies are wall-clock milliseconds measured with ``time.perf_counter`` around
  one call, in this process, single-threaded, after a few untimed warm-up calls.
- ``p50/p95/p99`` are numpy's default (linear-interpolation) percentiles of the
  per-call samples.
- A target cell says PASS or MISS. It is informational: scripts exit 0 either way.
"""

from __future__ import annotations

import gc
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

#: Built index files and cached embeddings live here, never inside the repository.
CACHE_DIR = Path(os.environ.get("MOSSLITE_BENCH_CACHE", Path.home() / ".cache" / "mosslite-bench"))


#: Common English words in rough frequency order (function words first), without repeats:
#: the head of the synthetic corpora's Zipf vocabulary, and the words of query texts.
_ENGLISH = """
the of and to a in is that for it as was with be by on not he this are or his from at which but have an
they you were her she there been one all we their has would when if so no out what up who them some more can
time into only do other then its about could also than two any may these first like new our over after most
very made people years did where just many should between such well year work because each through back even
much while before state world make own still use way same used under long great life little three last here
part might being day how both those high never between however small right good take know general public
place house again since system group number without government during world school without city old come
water form found money point large give hand find home area line family fact order different development
important power end thing best business case night social health information often country report several
given service children next local women side less following market second national street possible member
early show light human policy change example support head level million company thus law change interest
question office light study within around national real land must care problem along already program paper
research market nature body least history death going close field rate table open child hold turn power
price control effect period book language music cost value model future process street party private role
""".split()
ENGLISH = list(dict.fromkeys(_ENGLISH))


def cache_dir() -> Path:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    return CACHE_DIR


# -- timing ------------------------------------------------------------------


@dataclass(frozen=True)
class Percentiles:
    """Summary of per-call latencies in milliseconds."""

    n: int
    p50: float
    p95: float
    p99: float
    mean: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Percentiles:
        arr = np.asarray(samples_ms, dtype=np.float64)
        if arr.size == 0:
            return cls(0, float("nan"), float("nan"), float("nan"), float("nan"))
        p50, p95, p99 = np.percentile(arr, [50, 95, 99])
        return cls(int(arr.size), float(p50), float(p95), float(p99), float(arr.mean()))


def time_each(fn: Callable[[T], Any], inputs: Sequence[T], *, warmup: int = 10) -> list[float]:
    """Milliseconds of ``fn(x)`` for each ``x`` of ``inputs``.

    The first ``warmup`` inputs are also called once beforehand, untimed, so the
    first timed calls do not pay for lazy imports, page-cache misses or pool set-up.
    A garbage collection runs before the series so one series' garbage is not
    collected in the next one's timings.
    """
    for x in inputs[:warmup]:
        fn(x)
    gc.collect()
    out: list[float] = []
    clock = time.perf_counter
    for x in inputs:
        started = clock()
        fn(x)
        out.append((clock() - started) * 1000.0)
    return out


def time_interleaved(
    calls: dict[str, tuple[Callable[[Any], Any], Sequence[Any]]], *, warmup: int = 10, block: int = 1
) -> dict[str, list[float]]:
    """Milliseconds per call for several series measured round-robin.

    ``calls`` maps a name to ``(fn, inputs)``; all input lists have the same
    length. Call i of every series runs before call i + 1 of any, so a burst of
    load from other processes, CPU frequency changes or a page-cache eviction
    hits every series alike and ratios between them stay meaningful on a
    shared machine. (Series measured one after another would each see
    different conditions.) ``block``: calls i to i + block - 1 of a series run
    back to back before the next series' turn, for series that each keep
    different data in the CPU cache, as a loop of one kind of call would.
    """
    lengths = {len(inputs) for _, inputs in calls.values()}
    if len(lengths) != 1:
        raise ValueError(f"series have different lengths: {lengths}")
    (count,) = lengths
    for fn, inputs in calls.values():
        for x in inputs[:warmup]:
            fn(x)
    gc.collect()
    out: dict[str, list[float]] = {name: [] for name in calls}
    clock = time.perf_counter
    for first in range(0, count, block):
        for name, (fn, inputs) in calls.items():
            times = out[name]
            for x in inputs[first : first + block]:
                started = clock()
                fn(x)
                times.append((clock() - started) * 1000.0)
    return out


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __enter__(self) -> Stopwatch:
        self._started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._started


# -- verdicts and formatting ---------------------------------------------------


def verdict(ok: bool | None) -> str:
    """PASS/MISS for a checked target, "" when there is no target."""
    if ok is None:
        return ""
    return "PASS" if ok else "MISS"


def fmt_ms(value: float | None, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def fmt_num(value: float | None, fmt: str = ".4f") -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return format(value, fmt)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, align: str | None = None) -> str:
    """A fixed-width text table. ``align`` has one letter per column: ``l`` or ``r``
    (default: first column left, the others right)."""
    body = [["" if c is None else str(c) for c in row] for row in rows]
    cols = len(headers)
    align = align or ("l" + "r" * (cols - 1))
    widths = [len(h) for h in headers]
    for row in body:
        if len(row) != cols:
            raise ValueError(f"row has {len(row)} cells, table has {cols} columns: {row}")
        widths = [max(w, len(c)) for w, c in zip(widths, row)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in body)])


def print_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], *, align: str | None = None) -> None:
    print()
    print(title)
    print(format_table(headers, rows, align=align))


def load_average() -> str:
    """The 1/5/15-minute load averages: other processes share these CPUs, and
    latency percentiles measured on a busy machine are not the library's."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average unavailable"
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def wait_for_quiet(max_load: float, timeout_s: float) -> None:
    """Wait (up to ``timeout_s``) until the 1-minute load average is below ``max_load``."""
    if timeout_s <= 0:
        return
    deadline = time.monotonic() + timeout_s
    checks = 0
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        if checks % 10 == 0:  # every 5 minutes
            print(f"waiting for a quieter machine: {load_average()}", flush=True)
        checks += 1
        time.sleep(min(30.0, max(1.0, deadline - time.monotonic())))


def machine_summary() -> str:
    """One line saying what the numbers were measured on."""
    import apsw  # the library's own SQLite binding

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for text in fh:
                if text.startswith("model name"):
                    cpu = text.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
        f"numpy {np.__version__}, SQLite {apsw.sqlite_lib_version()}"
    )


def distinct_texts(rng: np.random.Generator, vocabulary: Sequence[str], count: int, words: int) -> list[str]:
    """``count`` distinct texts of ``words`` +- 2 words from ``vocabulary``, earlier words
    more often (weight 1/sqrt(rank)): distinct, so an embedder's query cache stays cold."""
    weights = 1.0 / np.sqrt(np.arange(1, len(vocabulary) + 1))
    weights /= weights.sum()
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        n = words + int(rng.integers(-2, 3))
        text = " ".join(vocabulary[i] for i in rng.choice(len(vocabulary), size=n, p=weights))
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def pseudo_words(rng: np.random.Generator, count: int, exclude: set[str]) -> list[str]:
    """Pronounceable, distinct nonsense words of 1-4 syllables."""
    onsets = "b c d f g h j k l m n p r s t v w z br ch cl dr fl gr pl pr sh st th tr".split()
    vowels = "a e i o u ai ea ee io oo ou".split()
    codas = ["", "", "", "n", "r", "s", "l", "m", "nd", "st", "x"]
    out: list[str] = []
    seen = set(exclude)
    while len(out) < count:
        syllables = int(rng.integers(1, 5))
        word = "".join(
            onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))] + codas[rng.integers(len(codas))]
            for _ in range(syllables)
        )
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out
