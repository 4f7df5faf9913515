"""An httpx transport for version downloads: blocking sockets read up to 1 MiB at a time.

Why: httpcore's HTTP/1.1 connection asks its network stream for 64 KiB per read,
and every read climbs back through h11, httpcore and httpx in Python. Receiving
a 48 MB version on loopback (2 cores, server included) took ~85 ms on the event
loop and ~72 ms on a thread, against ~33 ms for curl. On a thread whose reads may
return up to 1 MiB it took ~33 ms; writing, hashing and flushing included, the
download step of ``benchmarks/hydrate.py`` went from ~143 to ~79 ms.
(Async reads cannot grow the same way: asyncio hands a protocol at most 256 KiB.)

How: httpcore takes a custom network backend (its documented extension point),
and h11 accepts however many bytes a read returns. ``BulkReadBackend`` wraps
httpcore's own ``SyncBackend`` and only widens reads; connecting, TLS and
timeouts are httpcore's. ``BulkReadTransport`` is the few lines of
``httpx.HTTPTransport.handle_request`` over a pool with that backend.

A download runs on a thread of its own. ``INTERRUPTS`` lets another thread stop
it at once (cancellation, ``aclose``): the streams note which thread is inside a
read or write on them, and ``interrupt`` shuts that thread's socket, which wakes
a blocked read (closing the descriptor would not).

httpx applies environment proxies (``HTTP_PROXY`` ...) only to clients without
an explicit transport, so where one is set ``download_transport`` gives none:
proxied downloads then go exactly as every other request does, at httpx's
usual read size.
"""

from __future__ import annotations

import socket
import ssl
import threading
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

#: Bytes a download asks the socket for at a time (httpcore's default: 64 KiB).
READ_BYTES = 1 << 20


def download_transport() -> httpx.BaseTransport | None:
    """The transport for a download client: bulk reads, or httpx's default (None)
    when the environment names a proxy."""
    proxied = any(scheme != "no" for scheme in urllib.request.getproxies())
    return None if proxied else BulkReadTransport()


class Interrupts:
    """Which socket each download thread is blocked on, so another thread can shut it.

    A thread registers with ``begin`` and leaves with ``forget``; ``interrupt``
    acts only between the two, so a thread id reused by a later thread (Python
    reuses them) is never hit by a stale interrupt. A socket is known only while
    its thread is inside a read or write on it: then its request is in progress,
    so the connection cannot be back in the pool serving another download. An
    interrupt at any other moment is remembered, and the thread's next read or
    write raises instead."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_io: dict[int, httpcore.NetworkStream | None] = {}
        self._interrupted: set[int] = set()

    def begin(self) -> int:
        ident = threading.get_ident()
        with self._lock:
            self._in_io[ident] = None
        return ident

    def forget(self, ident: int) -> None:
        with self._lock:
            self._in_io.pop(ident, None)
            self._interrupted.discard(ident)

    def interrupt(self, ident: int) -> None:
        with self._lock:  # held while shutting: the thread cannot leave its I/O call meanwhile
            if ident not in self._in_io:
                return
            self._interrupted.add(ident)
            stream = self._in_io[ident]
            if stream is not None:
                _shut(stream)

    @contextmanager
    def io(self, stream: httpcore.NetworkStream) -> Iterator[None]:
        """Around one read or write of ``stream`` on the current thread."""
        ident = threading.get_ident()
        with self._lock:
            if ident in self._interrupted:
                raise httpcore.ReadError("the download was interrupted")
            registered = ident in self._in_io
            if registered:
                self._in_io[ident] = stream
        try:
            yield
        finally:
            if registered:
                with self._lock:
                    if ident in self._in_io:
                        self._in_io[ident] = None


INTERRUPTS = Interrupts()


def _shut(stream: httpcore.NetworkStream) -> None:
    sock = stream.get_extra_info("socket")
    if isinstance(sock, socket.socket):
        try:
            # socket.socket's own shutdown, also for an SSLSocket: its override would
            # tear down the TLS object under the reading thread.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:  # already closed
            pass


class BulkReadStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with INTERRUPTS.io(self):
            return self._inner.read(max(max_bytes, READ_BYTES), timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with INTERRUPTS.io(self):
            self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return BulkReadStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class BulkReadBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return BulkReadStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return BulkReadStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class BulkReadTransport(httpx.BaseTransport):
    """``httpx.HTTPTransport`` with default settings, over ``BulkReadBackend``."""

    def __init__(self) -> None:
        limits = httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=BulkReadBackend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        with _as_httpx_errors():
            self._pool.close()


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        if hasattr(self._stream, "close"):
            with _as_httpx_errors():
                self._stream.close()


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    """httpcore's exceptions as httpx's of the same name (the two libraries keep
    one hierarchy of names, cf. httpx's ``map_httpcore_exceptions``)."""
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise getattr(httpx, type(exc).__name__, httpx.TimeoutException)(str(exc)) from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, httpcore.ProxyError) as exc:
        raise getattr(httpx, type(exc).__name__, httpx.TransportError)(str(exc)) from exc
