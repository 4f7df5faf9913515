"""Exact cosine top-k that mostly reads half the bytes: the int8 search on rotated rows.

Why: the int8 product (int8.Int8Prefilter) reads one byte per dimension of
every row and is bound by memory bandwidth (38 MB at 100k x 384: 1.1-2.1 ms on
2 cores, by the hour). Embeddings are not spread evenly over their dimensions:
rotated onto the principal directions of the rows, MiniLM's scifact vectors
hold 94% of their energy in the first 192 of 384 (measured). A rotation keeps
every dot product, so the rows are stored rotated, in int8, in two blocks of
columns: the D = d/2 leading ("head") coordinates, read for every query, and
the rest ("tail"), read only when the head cannot decide.

The screen. For a query ``q`` and a row ``x``, rotated and split:

    q . x = q_h . x_h + q_t . x_t  <=  q_h . x_h + |q_t| * |x_t|    (Cauchy-Schwarz)

and ``q_h . x_h`` is bounded from the head's int8 product as in int8.py. A
row can be in the top k only if this bound reaches ``tau``, the k-th best exact
cosine among the few dozen rows the head scores highest (rescored first: the
tail term is as large for the best rows as for any other, so the head's own
lower bounds could not give a useful ``tau``). Few rows pass, and those are
rescored in float32: for scifact's 300 test queries (MiniLM), the head decided
all 300 over its 5,183 documents, leaving a median 58 rows (p90 252); over 52k
(the corpus ten times, jittered) it decided 279, leaving a median 81 (p90 581).
For the benchmark's 100k vectors, ~500 (the query's cluster).

When many rows pass (vectors spread evenly over all directions, or a query far
from every row) the tail is read too: head + tail is the whole rotated int8
product, bounded and rescored exactly as Int8Prefilter does. Either way the
answer is the float32 answer. The tail's onnxruntime session (its packed copy:
half of the codes' memory) is made once a query first needs it, on a thread of
its own; until it is ready such queries take the float32 scan.

Rounding in float32 (rotating rows and query, their norms) is covered by
ROTATION_SLACK, above its worst case for the dimensions used here. The codes
themselves (rotation, steps, the rows in 8 bits and their bounds) come from
codes.py: stored in the index file by the builder (stored_codes.py), or computed
in memory.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import numpy as np

from .codes import ROTATION_SLACK, Codes
from .exact import ExactScan
from .int8 import FLOAT_SLACK, leaders, quantised_query, rows_in_reach
from .integer_product import integer_product_session

log = logging.getLogger("mosslite.index")

#: Past this many rows left by the head, reading the tail costs less than
#: rescoring them (~0.7 us per row gathered in float32, after other work).
MAX_RESCORED = 2048
#: Rows whose head product alone lets them near tau; past this many, the exact
#: per-row bounds are not worth working out.
NEAR_LIMIT = 8 * MAX_RESCORED
#: A query with more of its norm squared outside the head than this has a tail
#: bound too wide to prune (a random vector: ~1/2); the whole product is read at once.
MAX_TAIL_SHARE = 0.4


class PrincipalScreen(ExactScan):
    """Int8 over the rotated matrix: the head for every query, the tail when needed."""

    def __init__(self, matrix: np.ndarray, codes: Codes, *, tails: bool = False) -> None:
        """``codes``: the rows' codes (codes.py), stored in the index file or computed in
        memory; a value past 127 steps was clipped and its row's bound widened to match,
        so steps from a sample of the rows do. ``tails``: make the tail's session now
        (the version this one replaces needed it), not once a query needs it."""
        super().__init__(matrix)
        codebook = codes.codebook
        self.rotation, self.scales, self.head = codebook.rotation, codebook.steps, codebook.head
        self.head_l1, self.l1, self.tail_norms = codes.head_l1, codes.l1, codes.tail_norms
        rows = len(codes)
        self.tail_norm_max = float(self.tail_norms.max()) if rows else 0.0
        self.row_norm_max = codes.norm_max
        self.head_l1_max = float(self.head_l1.max()) if rows else 0.0
        self.l1_max = float(self.l1.max()) if rows else 0.0
        # Two row blocks of one d x n array: each is C-contiguous, as onnxruntime needs.
        self._codes = codes
        self._head, self._tail = codes.codes[: self.head], codes.codes[self.head :]
        self._head_session = integer_product_session(self._head)
        # The tail's product is made once a query needs it (see _start_tail), unless asked now.
        self._tail_session: Any = integer_product_session(self._tail) if tails else None
        self._tail_lock = threading.Lock()
        self._tail_started = tails
        self._tail_ready = threading.Event()
        made = [(self._head_session, self._head)]
        if tails:
            self._tail_ready.set()
            made.append((self._tail_session, self._tail))
        self.codes_released = self._release(made)

    def _release(self, made: list[tuple[Any, np.ndarray]]) -> bool:
        """Give back the memory of codes read from a file (38 MB at 100k x 384) once
        onnxruntime holds packed copies of its own: its sessions must keep the arrays
        (they were handed over as external initializers), but its integer kernel reads
        only the packed copies. That is checked, not assumed: probe products of the
        sessions ``made`` (each over its block of the codes' rows) before and after; if
        they differ, onnxruntime still reads ours, and the codes are read back."""

        probed = [
            (session, (np.arange(3 * len(block), dtype=np.int64).reshape(3, -1) * 37 % 256).astype(np.uint8))
            for session, block in made
        ]

        def products() -> list[np.ndarray]:
            return [session.run(None, {"q": row[None, :]})[0] for session, probes in probed for row in probes]

        before = products()  # (also whatever packing onnxruntime leaves to its first run)
        if not self._codes.release():
            return False
        if all(np.array_equal(a, b) for a, b in zip(before, products())):
            return True
        self._codes.restore()
        return False

    def _tail_product(self, a: np.ndarray) -> np.ndarray | None:
        """The tail's int8 product (the quantised query's tail ``a``), or None while its
        session is being made (see _start_tail)."""
        session = self._tail_session
        if session is None:
            self._start_tail()
            return None
        return session.run(None, {"q": a})[0][0]

    def _start_tail(self) -> None:
        """Make the tail's session on a thread of its own, once. It waits for the first
        query the head cannot decide: many indexes' queries never are (scifact's 300 over
        its 5k documents), and onnxruntime's packed copy of the tail is half of the codes'
        memory (19 MB at 100k x 384). Codes given back are read from the file again for it
        (~0.1 s at 100k), then given back again; queries scan float32 meanwhile."""
        with self._tail_lock:
            if self._tail_started:
                return
            self._tail_started = True
        # Not a daemon: see IndexReader._start_preparing (onnxruntime at interpreter exit).
        threading.Thread(target=self._make_tail, name="mosslite-tail", daemon=False).start()

    def _make_tail(self) -> None:
        try:
            if self.codes_released:
                self._codes.restore()
            session = integer_product_session(self._tail)
            if self.codes_released:
                self.codes_released = self._release([(session, self._tail)])
            self._tail_session = session
        except Exception as exc:  # (a file deleted since, say): such queries keep the float32 scan
            log.warning("the 8-bit search of the rows' tails could not be made: %s", exc)
        finally:
            self._tail_ready.set()

    @property
    def reads_tails(self) -> bool:
        return self._tail_session is not None

    @classmethod
    def build(cls, matrix: np.ndarray) -> PrincipalScreen:
        """A screen over codes computed in memory, fitted on a sample of the rows."""
        return cls(matrix, Codes.of_matrix(matrix))

    def top(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        allowed = None if mask is None else np.flatnonzero(mask)
        count = len(self.matrix) if allowed is None else len(allowed)
        k = min(k, count)
        if k <= 0:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float32)
        rotated = (self.rotation @ q).astype(np.float64)
        a, t, shares = quantised_query(rotated, self.scales)
        if a is None:
            return super().top(q, k, mask)
        head = self.head
        y = self._head_session.run(None, {"q": a[:, :head]})[0][0]
        if allowed is not None:
            y = y[allowed]
        tail_squared = float(rotated[head:] @ rotated[head:])
        q_norm = math.sqrt(float(rotated[:head] @ rotated[:head]) + tail_squared)
        # Units of t/2 (int8.py): 2y - L1 - c <= 2 q.x / t <= 2y + L1 + c, each
        # bound widened by ``slack`` for rounding.
        slack = 2.0 * (FLOAT_SLACK + ROTATION_SLACK * q_norm * self.row_norm_max) / t
        if tail_squared <= MAX_TAIL_SHARE * q_norm * q_norm:
            rows = self._screened(q, y, allowed, k, t, float(shares[:head].sum()) + slack, tail_squared, q_norm)
            if rows is not None:
                return self.rescored(q, rows if allowed is None else allowed[rows], k)
        # The head cannot decide: the whole rotated product, bounded as Int8Prefilter's.
        tail = self._tail_product(a[:, head:])
        if tail is None:
            return super().top(q, k, mask)
        y = y + (tail if allowed is None else tail[allowed])
        l1 = self.l1 if allowed is None else self.l1[allowed]
        rows = rows_in_reach(y, l1, self.l1_max, float(shares.sum()) + slack, k)
        return self.rescored(q, rows if allowed is None else allowed[rows], k)

    def _screened(
        self,
        q: np.ndarray,
        y: np.ndarray,
        allowed: np.ndarray | None,
        k: int,
        t: float,
        c_head: float,
        tail_squared: float,
        q_norm: float,
    ) -> np.ndarray | None:
        """Positions in ``y`` (the head's product) that may be in the top k, or None if
        more than MAX_RESCORED may be."""
        # tau: the k-th best exact cosine among the rows the head scores highest.
        first = leaders(y, min(len(y), 2 * k + 16))
        exact = self.matrix[first if allowed is None else allowed[first]] @ q
        tau = float(np.partition(exact, len(exact) - k)[len(exact) - k])
        # A row may reach tau only if 2y + L1_head + c_head + beta * |x_t| >= 2 tau / t.
        beta = 2.0 * (math.sqrt(tail_squared) + ROTATION_SLACK * q_norm) / t
        need = 2.0 * tau / t - c_head
        head_l1, tail_norms = self.head_l1, self.tail_norms
        if allowed is not None:
            head_l1, tail_norms = head_l1[allowed], tail_norms[allowed]
        maybe = y >= (need - self.head_l1_max - beta * self.tail_norm_max) / 2.0
        if np.count_nonzero(maybe) > NEAR_LIMIT:
            return None
        near = np.flatnonzero(maybe)
        rows = near[2 * y[near] + head_l1[near] + beta * tail_norms[near] >= need]
        return rows if len(rows) <= MAX_RESCORED else None

