"""A loopback HTTP proxy in front of the real SeaweedFS, to provoke the failures an
object store has: answers of 5xx, stalls, and slow downloads. Nothing is mocked:
every request it does not fail is forwarded to SeaweedFS as it came (the Host
header too, so SigV4 signatures, presigned URLs' among them, still check out).

    with FaultProxy(seaweedfs.endpoint) as proxy:
        proxy.fail = lambda request: 503 if request.number < 2 else None
        storage = S3Storage(BUCKET, prefix, endpoint=proxy.url, ...)
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

PIECE_BYTES = 64 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass(frozen=True)
class Seen:
    """A request as the proxy saw it; ``number`` counts from 0 in arrival order."""

    number: int
    method: str
    path: str  # with its query
    #: Its headers, names in lower case.
    headers: tuple[tuple[str, str], ...] = ()


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        #: -> a status to answer instead of forwarding, "stall" to answer nothing for
        #: ``stall_s``, or None to forward.
        self.fail: Callable[[Seen], int | str | None] = lambda seen: None
        #: -> bytes per second to send the answer's body at, or None for full speed.
        self.throttle: Callable[[Seen], float | None] = lambda seen: None
        self.stall_s = 5.0
        self.seen: list[Seen] = []
        self.failed: list[Seen] = []
        #: (request, status, body bytes sent) of every answer.
        self.answered: list[tuple[Seen, int, int]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _note(self, method: str, path: str, headers: tuple[tuple[str, str], ...] = ()) -> Seen:
        with self._lock:
            seen = Seen(len(self.seen), method, path, headers)
            self.seen.append(seen)
            return seen

    def _answered(self, seen: Seen, status: int, size: int) -> None:
        with self._lock:
            self.answered.append((seen, status, size))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def _any(self) -> None:
                seen = proxy._note(self.command, self.path, tuple((k.lower(), v) for k, v in self.headers.items()))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy.fail(seen)
                if fault is not None:
                    with proxy._lock:
                        proxy.failed.append(seen)
                    if fault == "stall":
                        time.sleep(proxy.stall_s)
                        self.close_connection = True
                        return
                    self.send_response(int(fault))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    proxy._answered(seen, int(fault), 0)
                    return
                upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    self.send_response(answer.status, answer.reason)
                    length = answer.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
                    for key, value in answer.getheaders():
                        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                            self.send_header(key, value)
                    self.send_header("Content-Length", length or "0")
                    self.end_headers()
                    proxy._answered(seen, answer.status, 0 if self.command == "HEAD" else len(data))
                    if self.command == "HEAD":
                        return
                    rate = proxy.throttle(seen)
                    for start in range(0, len(data), PIECE_BYTES if rate else max(len(data), 1)):
                        piece = data[start : start + (PIECE_BYTES if rate else len(data))]
                        if rate:
                            time.sleep(len(piece) / rate)
                        self.wfile.write(piece)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                finally:
                    upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        return Handler
