"""The client side of ``mosslite serve``: the Transport contract over HTTP with httpx.

Invariants:
- Callers see only ``mosslite.errors``: httpx's connection errors and timeouts
  become UnavailableError (TimeoutError_ for timeouts), and an error body
  ``{"error": {...}}`` is rebuilt as the same typed error the service raised.
  Both happen at one boundary, ``_request`` / ``_stream`` / ``_fetch_blocking``
  under ``_mapping_httpx_errors``, chained with ``from``.
- Version files and patches download on a thread of their own with bulk socket
  reads (bulk_reads.py). Once a cancelled download returns, or ``aclose`` has
  stopped it, its thread writes nothing more to the file (see ``_Stop``).
- Names go into URL paths only after ``validate_name``, so a name cannot walk
  to another route (``..``, ``/``), and both transports refuse it alike.
- Nothing is retried here: a lost response to a mutation would otherwise
  submit its job twice. Downloads resume when the caller passes ``offset``.

Example::

    transport = HTTPTransport("http://127.0.0.1:8700", "my-project", "mk_...")
    info = await transport.get_index("faq")
    await transport.aclose()
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from .. import __version__, errors
from .._fs import sha256_of
from ..errors import (
    ClosedError,
    IndexNotFoundError,
    InvalidArgumentError,
    MossliteError,
    NotFoundError,
    TimeoutError_,
    UnauthorizedError,
    UnavailableError,
)
from ..filters import compile_filter
from ..types import (
    MAX_REQUEST_BYTES,
    DocsPage,
    DocumentInfo,
    IndexInfo,
    Job,
    Manifest,
    MutationOptions,
    MutationResult,
    Version,
    iter_docs,
)
from ..validation import validate_name
from ..wire import docs_from_json, from_dict, to_dict
from .bulk_reads import INTERRUPTS, download_transport
from .transports import ByteProgress, Transport
from ..types import PushIndexResult

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
#: Room left in a request for everything but the documents (field names, brackets).
BODY_MARGIN_BYTES = 4096
JSON_CONTENT = {"Content-Type": "application/json"}

#: How long ``aclose`` waits for stopped downloads to let go of their sockets (a
#: proxied one cannot be interrupted and may take until its next chunk).
CLOSE_WAIT_S = 5.0
#: Bytes of the body handed to the writing thread at a time (see ``_write``).
WRITE_BATCH_BYTES = 1 << 20
#: Downloads ask for the bytes as stored, so the body can be read raw: httpx's
#: decoding layer cost ~40 ms of ~150 for a 48 MB file on loopback. (A proxy that
#: compresses anyway is decoded as usual.)
RAW_BYTES = {"Accept-Encoding": "identity"}


class HTTPTransport(Transport):
    """One ``httpx.AsyncClient`` talking to ``url`` (e.g. ``http://127.0.0.1:8700``) for one project.

    ``transport`` replaces httpx's network transport, e.g. with
    ``httpx.ASGITransport(app=create_app(service))`` to test in-process.
    """

    def __init__(
        self,
        url: str,
        project_id: str,
        project_key: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.project_id = validate_name(project_id, what="project")
        self.url = _service_url(url)
        #: The server's request limit: larger batches of documents go as uploads.
        self.max_request_bytes = max_request_bytes
        settings: dict[str, Any] = {
            "base_url": f"{self.url}/v1/projects/{_segment(project_id)}",
            "headers": {"Authorization": f"Bearer {project_key}", "User-Agent": f"mosslite/{__version__}"},
            "timeout": timeout_s,
        }
        self._client = httpx.AsyncClient(**settings, transport=transport)
        # Version files and patches go through a blocking client with bulk socket reads
        # on a worker thread (bulk_reads.py says why); an injected transport is async,
        # so then they stream on the event loop like everything else.
        self._bulk = None if transport is not None else httpx.Client(**settings, transport=download_transport())
        self._downloading: dict[_Stop, asyncio.Future[Any]] = {}

    async def aclose(self) -> None:
        """Close; downloads still running are stopped first (they raise ClosedError)."""
        await self._client.aclose()
        for stop in self._downloading:
            stop.abort()
        if self._downloading:  # interrupted threads end at once; let them leave their sockets first
            await asyncio.wait(list(self._downloading.values()), timeout=CLOSE_WAIT_S)
        if self._bulk is not None:
            self._bulk.close()

    # -- mutations ---------------------------------------------------------------

    async def create_index(self, name: str, docs: Iterable[DocumentInfo], model_id: str | None) -> MutationResult:
        single = ("/indexes", {"name": validate_name(name), "model_id": model_id})
        upload = {"index": name, "kind": "create_index", "model_id": model_id}
        return await self._send_docs(docs, single, upload)

    async def add_docs(self, name: str, docs: Iterable[DocumentInfo], options: MutationOptions) -> MutationResult:
        options_json = {"upsert": options.upsert}
        single = (f"{_index_path(name)}/docs", {"options": options_json})
        return await self._send_docs(docs, single, {"index": name, "kind": "add_docs", "options": options_json})

    async def _send_docs(
        self, docs: Iterable[DocumentInfo], single: tuple[str, dict[str, Any]], upload: dict[str, Any]
    ) -> MutationResult:
        """Send a batch in one request when it fits ``max_request_bytes``, else as an
        upload of several (open, add each part, commit: one job). The documents are
        read and encoded part by part on a worker thread, so a generator of any size
        streams through, and a refused part ends the upload on the server too."""
        parts = _json_parts(iter_docs(docs), self.max_request_bytes - BODY_MARGIN_BYTES)
        first = await asyncio.to_thread(next, parts, [])
        second = await asyncio.to_thread(next, parts, None)
        if second is None:
            path, fields = single
            body = await self._request("POST", path, raw=_json_body(fields, first))
            return from_dict(MutationResult, body)
        opened = await self._request("POST", "/uploads", upload)
        path = f"/uploads/{_segment(opened['upload_id'])}"
        try:
            part: list[bytes] | None = first
            while part is not None:
                await self._request("POST", f"{path}/docs", raw=_json_body({}, part))
                part, second = second, None
                if part is None:
                    part = await asyncio.to_thread(next, parts, None)
            return from_dict(MutationResult, await self._request("POST", f"{path}/commit"))
        except BaseException:
            with contextlib.suppress(MossliteError):  # (already gone when the server refused a part)
                await asyncio.shield(self._request("DELETE", path))
            raise

    async def delete_docs(self, name: str, ids: Sequence[str]) -> MutationResult:
        body = {"ids": _id_list(ids)}
        return from_dict(MutationResult, await self._request("POST", f"{_index_path(name)}/docs/delete", body))

    async def delete_index(self, name: str) -> None:
        await self._request("DELETE", _index_path(name))

    # -- reads -------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job:
        return from_dict(Job, await self._request("GET", f"/jobs/{_segment(job_id)}"))

    async def get_index(self, name: str) -> IndexInfo:
        return from_dict(IndexInfo, await self._request("GET", _index_path(name)))

    async def list_indexes(self) -> list[IndexInfo]:
        body = await self._request("GET", "/indexes")
        return [from_dict(IndexInfo, item) for item in body["indexes"]]

    async def get_docs_page(
        self,
        name: str,
        ids: Sequence[str] | None,
        filter: dict[str, Any] | None,
        include_embedding: bool = True,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> DocsPage:
        # Checked as the service checks it, before it is encoded: a filter JSON cannot
        # carry (an int of 5,000 digits) raised ValueError here, not InvalidFilterError.
        compile_filter(filter)
        body = {
            "ids": None if ids is None else _id_list(ids),
            "filter": filter,
            "include_embedding": include_embedding,
            "limit": limit,
            "cursor": cursor,
        }
        answer = await self._request("POST", f"{_index_path(name)}/docs/get", body)
        return DocsPage(docs=docs_from_json(answer["docs"]), next_cursor=answer.get("next_cursor"))

    async def manifest(self, name: str) -> Manifest:
        return from_dict(Manifest, await self._request("GET", f"{_index_path(name)}/manifest"))

    async def download(
        self, name: str, version: int, dest: Path, *, offset: int = 0, progress: ByteProgress | None = None
    ) -> str | None:
        path = f"{_index_path(name)}/versions/{int(Version(version))}"
        headers = {**RAW_BYTES, "Range": f"bytes={offset}-"} if offset > 0 else RAW_BYTES
        start = partial(_download_start, offset=offset)
        got = await self._fetch(path, dest, headers=headers, start=start, progress=progress)
        if got is _Answer.REFETCH:
            # A range the server cannot serve from our offset (the partial file is not a
            # prefix of this version): fetch the whole file again.
            return await self.download(name, version, dest, offset=0, progress=progress)
        if got is _Answer.NOTHING_LEFT:
            if progress:  # the file is already whole
                progress(offset)
            return None
        return got

    async def download_patch(self, name: str, version: int, base_version: int, dest: Path) -> bool:
        path = f"{_index_path(name)}/versions/{int(Version(version))}/patch"
        params = {"from": str(int(Version(base_version)))}
        try:
            await self._fetch(path, dest, headers=RAW_BYTES, params=params, start=_patch_start)
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
        start: Callable[[httpx.Response], int | _Answer],
        progress: ByteProgress | None = None,
    ) -> str | _Answer:
        """GET ``path`` and write its body into ``dest`` from the offset ``start`` picks
        for the response; returns the sha256 of all of ``dest`` (or ``start``'s answer
        when there is no body to write). Over the bulk client on a worker thread; on
        the event loop when an (async) transport was injected."""
        if self._bulk is None:
            async with self._stream("GET", path, headers=headers, params=params) as response:
                at = start(response)
                if at is _Answer.ERROR:
                    await response.aread()
                    _raise_unexpected(response)
                if isinstance(at, _Answer):
                    return at
                return await _write(response, dest, at, progress)
        self._check_open()
        stop = _Stop()
        fetching = _on_own_thread(self._fetch_blocking, path, dest, headers, params, start, progress, stop)
        self._downloading[stop] = fetching
        try:
            return await asyncio.shield(fetching)
        except asyncio.CancelledError:
            # Once abort returns the thread writes nothing more: the caller may let go of ``dest``.
            stop.abort()
            fetching.add_done_callback(_retrieve)  # its ClosedError is nobody's to see
            raise
        finally:
            self._downloading.pop(stop, None)

    def _fetch_blocking(
        self,
        path: str,
        dest: Path,
        headers: dict[str, str],
        params: dict[str, str] | None,
        start: Callable[[httpx.Response], int | _Answer],
        progress: ByteProgress | None,
        stop: _Stop,
    ) -> str | _Answer:
        assert self._bulk is not None
        stop.begin()
        try:
            stop.check()
            with _mapping_httpx_errors(), self._bulk.stream("GET", path, headers=headers, params=params) as response:
                at = start(response)
                if at is _Answer.ERROR:
                    response.read()
                    _raise_unexpected(response)
                if isinstance(at, _Answer):
                    return at
                return _write_blocking(response, dest, at, progress, stop)
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

    # -- session pushes (issue #5) ---------------------------------------------------

    async def push(
        self, name: str, diff_id: str, changeset: bytes, model_id: str | None, dimension: int | None
    ) -> PushIndexResult:
        body = {
            "diff_id": diff_id,
            "changeset": base64.b64encode(bytes(changeset)).decode("ascii"),
            "model_id": model_id,
            "dimension": dimension,
        }
        return from_dict(PushIndexResult, await self._request("POST", f"{_index_path(name)}/push", body))

    async def get_push(self, name: str, diff_id: str) -> PushIndexResult:
        path = f"{_index_path(name)}/pushes/{_segment(diff_id)}"
        return from_dict(PushIndexResult, await self._request("GET", path))

    # -- the one boundary to httpx -------------------------------------------------

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, raw: bytes | None = None
    ) -> Any:
        """The decoded JSON answer (None for 204); error answers raise typed errors.
        ``raw``: a JSON body already encoded."""
        self._check_open()
        with _mapping_httpx_errors():
            if raw is not None:
                response = await self._client.request(method, path, content=raw, headers=JSON_CONTENT)
            else:
                response = await self._client.request(method, path, json=body)
        _raise_for_status(response)
        if response.status_code == 204 or not response.content:
            return None
        return _json(response)

    @asynccontextmanager
    async def _stream(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        self._check_open()
        with _mapping_httpx_errors():
            async with self._client.stream(method, path, headers=headers, params=params) as response:
                yield response

    def _check_open(self) -> None:
        if self._client.is_closed:
            raise ClosedError("this HTTPTransport was closed", hint="create a new client")


@contextmanager
def _mapping_httpx_errors() -> Iterator[None]:
    """httpx's exceptions as ours, chained (cf. httpx ``map_httpcore_exceptions``)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TimeoutError_(f"the service did not answer in time: {exc!r}", url=_url_of(exc)) from exc
    except httpx.TransportError as exc:
        raise UnavailableError(f"cannot reach the service: {exc!r}", url=_url_of(exc)) from exc
    except httpx.StreamError as exc:
        raise UnavailableError(f"the download stream broke: {exc!r}") from exc
    except httpx.DecodingError as exc:  # a compressed body (from a proxy) that does not decode
        raise UnavailableError(f"the answer could not be decoded: {exc!r}") from exc


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_success or response.status_code == 304:
        return
    try:
        body = response.json()
        error = errors.from_dict(body["error"])
    except (ValueError, KeyError, TypeError):  # not our error body (a proxy's page, say)
        error = _error_for_status(response)
    raise error


def _raise_unexpected(response: httpx.Response) -> None:
    """For a download's answer that is neither its body nor a resume: the typed error
    its status says, or UnavailableError for a status no download expects."""
    _raise_for_status(response)
    raise UnavailableError(f"unexpected answer {response.status_code} to GET {response.request.url}")


def _error_for_status(response: httpx.Response) -> MossliteError:
    what = f"{response.request.method} {response.request.url} answered {response.status_code}"
    if response.status_code == 401:
        return UnauthorizedError(what)
    if response.status_code == 404:
        return NotFoundError(what)
    if response.status_code >= 500:
        return UnavailableError(what)
    return MossliteError(what)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise UnavailableError(f"the service answered with malformed JSON: {exc}") from exc


def _url_of(exc: httpx.RequestError) -> str:
    try:
        return str(exc.request.url)
    except RuntimeError:  # raised without a request attached
        return ""


# -- paths, bodies and downloads --------------------------------------------------


def _service_url(url: object) -> str:
    """``url`` without a trailing slash, if it is an http(s) URL with a host. Caught
    here: "localhost:8700" parses as scheme "localhost", and failed only at the first
    request, as "service unreachable, retry later"."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else None
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidArgumentError(
            f"url must be an http:// or https:// URL with a host, got {url!r}", hint="e.g. http://127.0.0.1:8700"
        )
    return str(url).rstrip("/")


def _segment(value: str) -> str:
    """One URL path segment, escaped so it stays one ("/" escaped; "." and ".." too,
    which URL normalisation would otherwise resolve)."""
    segment = quote(value, safe="")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


def _index_path(name: str) -> str:
    return f"/indexes/{_segment(validate_name(name))}"


def _json_parts(docs: Iterator[DocumentInfo], limit: int) -> Iterator[list[bytes]]:
    """The documents as JSON, in lists whose encodings add up to at most ``limit`` bytes
    (a document over the limit on its own goes alone, and the server refuses it)."""
    part: list[bytes] = []
    size = 0
    for doc in docs:
        encoded = json.dumps(to_dict(doc)).encode("utf-8")
        if part and size + len(encoded) + 1 > limit:
            yield part
            part, size = [], 0
        part.append(encoded)
        size += len(encoded) + 1
    if part:
        yield part


def _json_body(fields: dict[str, Any], docs: list[bytes]) -> bytes:
    """``fields`` plus ``"docs": [...]`` from the documents' encodings, as one JSON object."""
    head = json.dumps(fields)[:-1].encode("utf-8")  # '{...' without its closing brace
    return head + (b", " if fields else b"") + b'"docs": [' + b", ".join(docs) + b"]}"


def _id_list(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str):
        raise errors.InvalidArgumentError("ids must be a list of strings, not one string")
    return list(ids)


def _range_start(response: httpx.Response) -> int | None:
    """The first byte of a ``Content-Range: bytes a-b/size`` answer."""
    unit, _, spec = response.headers.get("content-range", "").partition(" ")
    first = spec.partition("-")[0]
    return _byte_count(first) if unit == "bytes" else None


def _range_size(response: httpx.Response) -> int | None:
    """The size in a ``Content-Range: bytes */size`` (416) answer."""
    size = response.headers.get("content-range", "").rpartition("/")[2]
    return _byte_count(size)


def _byte_count(text: str) -> int | None:
    """A byte count a server sent, or None: ASCII digits only ('²'.isdigit(), and int()
    refuses it), and no more than an int64 holds (int() refuses 5,000 digits)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


class _Answer(Enum):
    """What a download's response holds when it is not a body to write."""

    NOTHING_LEFT = "the file is already whole"
    REFETCH = "the server cannot resume from our offset"
    ERROR = "an error status"


def _download_start(response: httpx.Response, *, offset: int) -> int | _Answer:
    """Where a version's body goes in the file: 0 for the whole file (also when the
    server ignored our range), ``offset`` for the rest of it."""
    status = response.status_code
    if status == 200:
        return 0
    if offset > 0 and status == 206 and _range_start(response) == offset:
        return offset
    if offset > 0 and status == 416 and _range_size(response) == offset:
        return _Answer.NOTHING_LEFT
    if offset > 0 and status in (206, 416):
        return _Answer.REFETCH
    return _Answer.ERROR


def _patch_start(response: httpx.Response) -> int | _Answer:
    return 0 if response.status_code == 200 else _Answer.ERROR


class _Stop:
    """Stops a download running on a thread of its own, from the event loop.

    The thread opens ``dest`` and writes each chunk holding ``lock``, after
    ``check``; ``abort`` sets the flag under the same lock. So once ``abort``
    returns, nothing more is written, and the caller may let go of the file (and
    of its lock on it) without waiting for the thread. ``abort`` also interrupts
    the thread's socket (bulk_reads.INTERRUPTS), so a read waiting on the network
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


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _on_own_thread(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
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


def _decoded(response: httpx.Response) -> bool:
    return response.headers.get("content-encoding", "identity").lower() != "identity"


def _write_blocking(
    response: httpx.Response, dest: Path, offset: int, progress: ByteProgress | None, stop: _Stop
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
        for chunk in response.iter_bytes() if _decoded(response) else response.iter_raw():
            with stop.lock:
                stop.check()
                out.write(chunk)  # all received until a stop goes to the file: a resume starts after it
                out.flush()  # now, not from the buffer when the file closes after a stop
            digest.update(chunk)
            written += len(chunk)
            if progress:
                progress(written)
    return digest.hexdigest()


async def _write(response: httpx.Response, dest: Path, offset: int, progress: ByteProgress | None) -> str:
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
            async for chunk in response.aiter_bytes() if _decoded(response) else response.aiter_raw():
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