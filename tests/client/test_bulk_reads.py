"""Downloads over bulk socket reads on a worker thread (mosslite/client/bulk_reads.py),
against raw HTTP/1.1 answers from a socket server on 127.0.0.1: bodies cut short,
stalls, refused connections and cancellation, which a well-behaved server cannot show.
Whole downloads, resumes and error bodies from a real ``mosslite serve`` are in
tests/sync and tests/service/test_http.py."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mosslite.client.bulk_reads import READ_BYTES, BulkReadBackend
from mosslite.client.http_transport import HTTPTransport
from mosslite.errors import TimeoutError_, UnavailableError

from .conftest import free_port

pytestmark = pytest.mark.anyio

BODY = os.urandom(3 * READ_BYTES + 12345)
SHA256 = hashlib.sha256(BODY).hexdigest()

Answer = Callable[[socket.socket, bytes], None]


class RawServer:
    """Accepts connections one after another and hands each request to ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.closed_by_client = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                try:
                    self.answer(conn, request)
                except OSError:
                    self.closed_by_client.set()

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def raw_server(request: pytest.FixtureRequest) -> Iterator[RawServer]:
    server = RawServer(request.param)
    yield server
    server.close()


def headers(status: str, length: int, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {length}\r\n{extra}\r\n".encode()


def cut_after_half(conn: socket.socket, request: bytes) -> None:
    """The whole file is announced; half of it arrives; then the connection drops.
    A request with ``Range: bytes=N-`` gets the rest, as a resume would."""
    for line in request.decode().split("\r\n"):
        if line.lower().startswith("range: bytes="):
            start = int(line.split("=")[1].rstrip("-"))
            rest = BODY[start:]
            content_range = f"Content-Range: bytes {start}-{len(BODY) - 1}/{len(BODY)}\r\n"
            conn.sendall(headers("206 Partial Content", len(rest), content_range))
            conn.sendall(rest)
            return
    conn.sendall(headers("200 OK", len(BODY)) + BODY[: len(BODY) // 2])


def stall(conn: socket.socket, request: bytes) -> None:
    """Headers and a first megabyte, then nothing until the client gives up."""
    conn.sendall(headers("200 OK", len(BODY)) + BODY[:READ_BYTES])
    conn.settimeout(60)
    if conn.recv(1) == b"":  # the client closed (or shut) its end
        raise ConnectionResetError


def silent(conn: socket.socket, request: bytes) -> None:
    """Reads the request and never answers."""
    conn.settimeout(60)
    if conn.recv(1) == b"":
        raise ConnectionResetError


def transport(server: RawServer, timeout_s: float = 30.0) -> HTTPTransport:
    return HTTPTransport(server.url, "p", "k", timeout_s=timeout_s)


def test_a_read_may_return_more_than_httpcore_asks_for() -> None:
    data = os.urandom(READ_BYTES)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = threading.Thread(target=lambda: listener.accept()[0].sendall(data), daemon=True)
        sender.start()
        stream = BulkReadBackend().connect_tcp("127.0.0.1", listener.getsockname()[1], timeout=10)
        sender.join(10)
        assert not sender.is_alive()  # all of it sits in the kernel's buffers before the first read
        sizes = []
        while sum(sizes) < len(data):
            sizes.append(len(stream.read(64 * 1024, timeout=10)))
        stream.close()
    assert max(sizes) > 64 * 1024  # httpcore asks for 64 KiB; the socket gave what it had


@pytest.mark.parametrize("raw_server", [cut_after_half], indirect=True)
async def test_a_cut_body_keeps_every_byte_received_and_resumes(raw_server: RawServer, tmp_path: Path) -> None:
    client = transport(raw_server)
    dest = tmp_path / "v.sqlite.part"
    with pytest.raises(UnavailableError):
        await client.download("faq", 1, dest)
    assert dest.read_bytes() == BODY[: len(BODY) // 2]
    seen: list[int] = []
    sha256 = await client.download("faq", 1, dest, offset=dest.stat().st_size, progress=seen.append)
    assert sha256 == SHA256 and dest.read_bytes() == BODY
    assert seen[-1] == len(BODY)
    await client.aclose()


@pytest.mark.parametrize("raw_server", [stall], indirect=True)
async def test_a_stalled_download_times_out(raw_server: RawServer, tmp_path: Path) -> None:
    client = transport(raw_server, timeout_s=0.3)
    with pytest.raises(TimeoutError_):
        await client.download("faq", 1, tmp_path / "v.part")
    await client.aclose()


@pytest.mark.parametrize("raw_server", [stall], indirect=True)
async def test_cancelling_a_download_stops_its_thread_at_once(raw_server: RawServer, tmp_path: Path) -> None:
    # A read timeout of 10 minutes: only shutting the socket can end the thread's read early.
    client = transport(raw_server, timeout_s=600)
    dest = tmp_path / "v.part"
    task = asyncio.create_task(client.download("faq", 1, dest))
    while not (dest.exists() and dest.stat().st_size >= READ_BYTES):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 60)  # a hang guard: returns once the thread has let go of the file
    assert raw_server.closed_by_client.wait(10)
    assert dest.stat().st_size == READ_BYTES  # and nothing wrote to it after
    await client.aclose()


@pytest.mark.parametrize("raw_server", [silent], indirect=True)
async def test_a_download_cancelled_before_its_answer_never_touches_the_file(
    raw_server: RawServer, tmp_path: Path
) -> None:
    client = transport(raw_server, timeout_s=600)
    dest = tmp_path / "v.part"
    task = asyncio.create_task(client.download("faq", 1, dest))
    await asyncio.sleep(0.2)  # the request is out; no answer will come
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 60)  # returns without waiting for the thread's read
    assert not dest.exists()
    await client.aclose()


@pytest.mark.parametrize("raw_server", [stall], indirect=True)
async def test_stalled_downloads_leave_the_loops_worker_threads_free(raw_server: RawServer, tmp_path: Path) -> None:
    # More stalled downloads than the default executor has threads (min(32, cpus + 4)).
    client = transport(raw_server, timeout_s=600)
    downloads = [asyncio.create_task(client.download("faq", 1, tmp_path / f"{i}.part")) for i in range(40)]
    await asyncio.sleep(0.2)
    assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 30) == "free"
    for task in downloads:
        task.cancel()
    await asyncio.gather(*downloads, return_exceptions=True)
    await client.aclose()


async def test_nothing_listening_is_unavailable(tmp_path: Path) -> None:
    client = HTTPTransport(f"http://127.0.0.1:{free_port()}", "p", "k")
    with pytest.raises(UnavailableError, match="cannot reach the service"):
        await client.download("faq", 1, tmp_path / "v.part")
    await client.aclose()


PROXIED: list[str] = []


def as_proxy(conn: socket.socket, request: bytes) -> None:
    """A forward proxy that answers itself: records the request line, sends the body."""
    PROXIED.append(request.split(b"\r\n")[0].decode())
    conn.sendall(headers("200 OK", len(BODY)) + BODY)


@pytest.mark.parametrize("raw_server", [as_proxy], indirect=True)
async def test_downloads_go_through_the_environment_proxy(
    raw_server: RawServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", raw_server.url)
    target = f"http://127.0.0.1:{free_port()}"  # nothing listens there: only the proxy can answer
    client = HTTPTransport(target, "p", "k")
    dest = tmp_path / "v.part"
    assert await client.download("faq", 1, dest) == SHA256
    assert PROXIED == [f"GET {target}/v1/projects/p/indexes/faq/versions/1 HTTP/1.1"]
    await client.aclose()
