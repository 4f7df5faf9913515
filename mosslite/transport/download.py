"""Version files and page patches over HTTP, written into a file: ranges, resume, stop.

``Downloads`` belongs to one ``HTTPTransport``. Invariants:
- A download resumes from ``offset`` with a Range request; a server that cannot
  serve that range (the partial file is not a prefix of the version) gets a
  request for the whole file. Whatever arrives goes to the file, also when the
  stream breaks, so the next resume starts after it.
- Bodies are read raw (``RAW_BYTES``) and hashed as they are written: the caller
  gets the sha256 of the whole file without reading it again.
- Without an injected transport, a download runs on a thread of its own with bulk
  socket reads (download_sockets.py). Once a cancelled download returns, or
  ``aclose`` has stopped it, its thread writes nothing more to the file (``Stop``).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx

from .._fs import sha256_of
from ..errors import ClosedError, IndexNotFoundError, NotFoundError
from .base import ByteProgress
from .download_sockets import INTERRUPTS
from .http_errors import mapping_httpx_errors, raise_unexpected

T = TypeVar("T")

#: How long ``aclose`` waits for stopped downloads to let go of their sockets (a
#: proxied one cannot be interrupted and may take until its next chunk).
CLOSE_WAIT_S = 5.0
#: Bytes of the body handed to the writing thread at a time (see ``write``).
WRITE_BATCH_BYTES = 1 << 20
#: Downloads ask for the bytes as stored, so the body can be read raw: httpx's
#: decoding layer cost ~40 ms of ~150 for a 48 MB file on loopback. (A proxy that
#: compresses anyway is decoded as usual.)
RAW_BYTES = {"Accept-Encoding": "identity"}


class Downloads:
    """The downloads of one transport: ``client`` for requests, ``bulk`` (None when a
    transport was injected) for bulk socket reads on a thread of their own."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        bulk: httpx.Client | None,
        check_open: Callable[[], None],
        *,
        refused: Callable[[httpx.Response], None] = raise_unexpected,
    ) -> None:
        self._client = client
        self._bulk = bulk
        self._check_open = check_open
        #: Raises the error of an answer that is neither a body nor a resume.
        self._refused = refused
        self._downloading: dict[Stop, asyncio.Future[Any]] = {}

    async def aclose(self) -> None:
        """Stop the downloads still running (they raise ClosedError), then close."""
        for stop in self._downloading:
            stop.abort()
        if self._downloading:  # interrupted threads end at once; let them leave their sockets first
            await asyncio.wait(list(self._downloading.values()), timeout=CLOSE_WAIT_S)
        if self._bulk is not None:
            self._bulk.close()

    async def version(
        self, path: str, dest: Path, *, offset: int = 0, progress: ByteProgress | None = None
    ) -> str | None:
        """The version file at ``path`` into ``dest`` from ``offset`` (Transport.download)."""
        headers = {**RAW_BYTES, "Range": f"bytes={offset}-"} if offset > 0 else RAW_BYTES
        start = partial(download_start, offset=offset)
        got = await self._fetch(path, dest, headers=headers, start=start, progress=progress)
        if got is Answer.REFETCH:
            # A range the server cannot serve from our offset (the partial file is not a
            # prefix of this version): fetch the whole file again.
            return await self.version(path, dest, offset=0, progress=progress)
        if got is Answer.NOTHING_LEFT:
            if progress:  # the file is already whole
                progress(offset)
            return None
        return got

    async def patch(self, path: str, params: dict[str, str] | None, dest: Path) -> bool:
        """The page patch at ``path`` into ``dest``; False when there is none (Transport.download_patch)."""
        try:
            await self._fetch(path, dest, headers=RAW_BYTES, params=params, start=patch_start)
        except IndexNotFoundError:
            raise
        except NotFoundError:  # no patch from that version (PatchUnavailableError), or a server without patches
            return False
        return True

    async def _fetch(
        self,
        path: str,
        dest: Path,
        *,
        headers: dict[str, str],
        params: dict[str, str] | None = None,
        start: Callable[[httpx.Response], int | Answer],
        progress: ByteProgress | None = None,
    ) -> str | Answer:
        """GET ``path`` and write its body into ``dest`` from the offset ``start`` picks
        for the response; returns the sha256 of all of ``dest`` (or ``start``'s answer
        when there is no body to write). Over the bulk client on a worker thread; on
        the event loop when an (async) transport was injected."""
        if self._bulk is None:
            self._check_open()
            with mapping_httpx_errors():
                async with self._client.stream("GET", path, headers=headers, params=params) as response:
                    at = start(response)
                    if at is Answer.ERROR:
                        await response.aread()
                        self._refused(response)
                    if isinstance(at, Answer):
                        return at
                    return await write(response, dest, at, progress)
        self._check_open()
        stop = Stop()
        fetching = on_own_thread(self._fetch_blocking, path, dest, headers, params, start, progress, stop)
        self._downloading[stop] = fetching
        try:
            return await asyncio.shield(fetching)
        except asyncio.CancelledError:
            # Once abort returns the thread writes nothing more: the caller may let go of ``dest``.
            stop.abort()
            fetching.add_done_callback(retrieve)  # its ClosedError is nobody's to see
            raise
        finally:
            self._downloading.pop(stop, None)

    def _fetch_blocking(
        self,
        path: str,
        dest: Path,
        headers: dict[str, str],
        params: dict[str, str] | None,
        start: Callable[[httpx.Response], int | Answer],
        progress: ByteProgress | None,
        stop: Stop,
    ) -> str | Answer:
        assert self._bulk is not None
        stop.begin()
        try:
            stop.check()
            with mapping_httpx_errors(), self._bulk.stream("GET", path, headers=headers, params=params) as response:
                at = start(response)
                if at is Answer.ERROR:
                    response.read()
                    self._refused(response)
                if isinstance(at, Answer):
                    return at
                return write_blocking(response, dest, at, progress, stop)
        except ClosedError:
            raise
        except Exception as exc:
            # Interrupted (a shut socket reads as a network error), or the client closed
            # under us (httpx: RuntimeError "... the client has been closed").
            if stop.stopped or (isinstance(exc, RuntimeError) and self._bulk.is_closed):
                raise ClosedError("the download was stopped (cancelled, or the transport closed)") from exc
            raise
        finally:
            stop.end()


def range_start(response: httpx.Response) -> int | None:
    """The first byte of a ``Content-Range: bytes a-b/size`` answer."""
    unit, _, spec = response.headers.get("content-range", "").partition(" ")
    first = spec.partition("-")[0]
    return byte_count(first) if unit == "bytes" else None


def range_size(response: httpx.Response) -> int | None:
    """The size in a ``Content-Range: bytes */size`` (416) answer."""
    size = response.headers.get("content-range", "").rpartition("/")[2]
    return byte_count(size)


def byte_count(text: str) -> int | None:
    """A byte count a server sent, or None: ASCII digits only ('²'.isdigit(), and int()
    refuses it), and no more than an int64 holds (int() refuses 5,000 digits)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


class Answer(Enum):
    """What a download's response holds when it is not a body to write."""

    NOTHING_LEFT = "the file is already whole"
    REFETCH = "the server cannot resume from our offset"
    ERROR = "an error status"


def download_start(response: httpx.Response, *, offset: int) -> int | Answer:
    """Where a version's body goes in the file: 0 for the whole file (also when the
    server ignored our range), ``offset`` for the rest of it."""
    status = response.status_code
    if status == 200:
        return 0
    if offset > 0 and status == 206 and range_start(response) == offset:
        return offset
    if offset > 0 and status == 416 and range_size(response) == offset:
        return Answer.NOTHING_LEFT
    if offset > 0 and status in (206, 416):
        return Answer.REFETCH
    return Answer.ERROR


def patch_start(response: httpx.Response) -> int | Answer:
    return 0 if response.status_code == 200 else Answer.ERROR


class Stop:
    """Stops a download running on a thread of its own, from the event loop.

    The thread opens ``dest`` and writes each chunk holding ``lock``, after
    ``check``; ``abort`` sets the flag under the same lock. So once ``abort``
    returns, nothing more is written, and the caller may let go of the file (and
    of its lock on it) without waiting for the thread. ``abort`` also interrupts
    the thread's socket (download_sockets.INTERRUPTS), so a read waiting on the network
    ends at once and frees its connection; a proxied download (httpx's own
    transport) cannot be interrupted and ends at its next chunk or read timeout.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._stopped = False
        self._thread: int | None = None

    def begin(self) -> None:
        with self.lock:
            self._thread = INTERRUPTS.begin()

    def end(self) -> None:
        with self.lock:
            if self._thread is not None:
                INTERRUPTS.forget(self._thread)
            self._thread = None

    def abort(self) -> None:
        with self.lock:  # not between a check and its write; the thread id not yet reused
            self._stopped = True
            if self._thread is not None:
                INTERRUPTS.interrupt(self._thread)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def check(self) -> None:
        """Raise ClosedError once aborted (call holding ``lock`` before touching ``dest``)."""
        if self._stopped:
            raise ClosedError("the download was stopped")


def retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def on_own_thread(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """``fn(*args)`` on a new thread, as a future of the running loop. Not the loop's
    default executor: it has a handful of threads, a few slow downloads would fill
    them, and everything else that hops to a thread (cache locks, fsyncs, opening
    the readers of other indexes) would queue behind them."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def run() -> None:
        value, error = None, None
        try:
            value = fn(*args)
        except BaseException as exc:  # handed to whoever awaits
            error = exc
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    threading.Thread(target=run, name="mosslite-download", daemon=True).start()
    return future


def decoded(response: httpx.Response) -> bool:
    return response.headers.get("content-encoding", "identity").lower() != "identity"


def write_blocking(
    response: httpx.Response, dest: Path, offset: int, progress: ByteProgress | None, stop: Stop
) -> str:
    """Stream the body into ``dest`` from ``offset``, on the calling (worker) thread;
    returns the sha256 of all of ``dest``. Writing and hashing inline measured
    faster than handing them to a third thread (2 cores, the server on one)."""
    digest = sha256_of(dest) if offset else hashlib.sha256()
    written = offset
    with stop.lock:
        stop.check()
        out = open(dest, "ab" if offset else "wb")
    with out:
        for chunk in response.iter_bytes() if decoded(response) else response.iter_raw():
            with stop.lock:
                stop.check()
                out.write(chunk)  # all received until a stop goes to the file: a resume starts after it
                out.flush()  # now, not from the buffer when the file closes after a stop
            digest.update(chunk)
            written += len(chunk)
            if progress:
                progress(written)
    return digest.hexdigest()


async def write(response: httpx.Response, dest: Path, offset: int, progress: ByteProgress | None) -> str:
    """Stream the body into ``dest`` from ``offset``; returns the sha256 of all of ``dest``.

    The event loop only receives: every ~1 MB of chunks goes to a worker thread
    that writes and hashes it (both release the GIL) while the next megabyte
    arrives. Measured for a 48 MB file on loopback (2 cores, server included):
    receiving, writing and hashing one after another on the loop took ~158 ms;
    pipelined ~105 ms, near the ~85 ms that receiving alone takes. At most one
    batch is in the worker and one filling, so a slow disk slows the download
    instead of buffering the file in memory.
    """
    digest = await asyncio.to_thread(sha256_of, dest) if offset else hashlib.sha256()

    def write_and_hash(batch: list[bytes]) -> None:
        # One write and one update per batch: each releases the GIL for its whole
        # megabyte, where 16 calls per batch would each wait to take it back.
        data = b"".join(batch)
        out.write(data)
        digest.update(data)

    written = offset
    with open(dest, "ab" if offset else "wb") as out:
        in_worker: asyncio.Future[None] | None = None
        batch: list[bytes] = []
        batched = 0
        try:
            async for chunk in response.aiter_bytes() if decoded(response) else response.aiter_raw():
                batch.append(chunk)
                batched += len(chunk)
                if batched >= WRITE_BATCH_BYTES:
                    if in_worker is not None:
                        await in_worker
                    in_worker = asyncio.ensure_future(asyncio.to_thread(write_and_hash, batch))
                    batch, batched = [], 0
                written += len(chunk)
                if progress:
                    progress(written)
        finally:
            # Also when the stream broke: every byte received goes to the file (a resume
            # starts after it), and the file is not closed under the worker.
            if in_worker is not None:
                await asyncio.shield(in_worker)
            write_and_hash(batch)
    return digest.hexdigest()
