"""Downloads over bulk socket reads on a worker thread (mosslite/transport/download_sockets.py and download.py),
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
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpcore
import httpx
import pytest

from mosslite.transport.download import range_size, range_start
from mosslite.transport.download_sockets import INTERRUPTS, READ_BYTES, BulkReadBackend, BulkReadStream
from mosslite.transport.http import HTTPTransport
from mosslite.errors import ClosedError, TimeoutError_, UnavailableError

from ..client.conftest import free_port

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


def test_reads_ask_the_socket_for_a_megabyte() -> None:
    asked: list[int] = []

    class Recording(httpcore.NetworkStream):  # a real socket stream; only the sizes asked are noted
        def __init__(self, inner: httpcore.NetworkStream) -> None:
            self.inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            asked.append(max_bytes)
            return self.inner.read(max_bytes, timeout)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = threading.Thread(target=lambda: listener.accept()[0].sendall(b"x" * 1000), daemon=True)
        sender.start()
        inner = httpcore.SyncBackend().connect_tcp("127.0.0.1", listener.getsockname()[1], timeout=10)
        stream = BulkReadStream(Recording(inner))
        assert stream.read(64 * 1024, timeout=10)  # what httpcore asks for
        inner.close()
    assert asked == [READ_BYTES]


def test_an_interrupt_shuts_only_a_socket_its_thread_is_blocked_on() -> None:
    """A pooled connection passes from one download thread to the next: interrupting
    the first after its I/O ended must not break the second's read on the same socket."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        stream = BulkReadBackend().connect_tcp("127.0.0.1", listener.getsockname()[1], timeout=10)
        peer, _ = listener.accept()
        first_done, first_leave = threading.Event(), threading.Event()
        idents: dict[str, int] = {}
        outcome: dict[str, object] = {}

        def first() -> None:  # wrote its request, is done with the socket, not yet forgotten
            idents["first"] = INTERRUPTS.begin()
            stream.write(b"request", timeout=10)
            first_done.set()
            first_leave.wait(10)
            INTERRUPTS.forget(idents["first"])

        def second() -> None:
            idents["second"] = INTERRUPTS.begin()
            try:
                outcome["read"] = stream.read(64 * 1024, timeout=10)
                outcome["again"] = stream.read(64 * 1024, timeout=600)
            except httpcore.ReadError as exc:
                outcome["error"] = exc
            finally:
                INTERRUPTS.forget(idents["second"])

        one = threading.Thread(target=first)
        one.start()
        assert first_done.wait(10)
        two = threading.Thread(target=second)
        two.start()
        while "second" not in idents:
            time.sleep(0.01)
        time.sleep(0.1)  # the second thread is blocked in its read
        INTERRUPTS.interrupt(idents["first"])  # stale: the socket is the second thread's now
        peer.sendall(b"answer")
        first_leave.set()
        one.join(10)
        while "read" not in outcome and "error" not in outcome:
            time.sleep(0.01)
        assert outcome.get("read") == b"answer"
        time.sleep(0.1)  # (most likely) blocked in its second read
        INTERRUPTS.interrupt(idents["second"])  # now it is the one using the socket
        two.join(30)
        assert not two.is_alive()
        # Woken from the blocked read (the socket was shut), or refused at the read.
        assert outcome.get("again") == b"" or isinstance(outcome.get("error"), httpcore.ReadError)
        stream.close()
        peer.close()


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


async def until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """A hang guard around work that is already due, not a timing assertion."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def no_download_threads() -> bool:
    return not any(t.name == "mosslite-download" for t in threading.enumerate())


class FirstMegabyteThenTheRest:
    """Answers with the first megabyte of the body, then the rest once ``go`` is set."""

    def __init__(self) -> None:
        self.go = threading.Event()

    def __call__(self, conn: socket.socket, request: bytes) -> None:
        conn.sendall(headers("200 OK", len(BODY)) + BODY[:READ_BYTES])
        self.go.wait(60)
        conn.sendall(BODY[READ_BYTES:])  # fails if the client has shut its socket


async def cancel_after_the_first_megabyte(
    client: HTTPTransport, answer: FirstMegabyteThenTheRest, dest: Path
) -> list[int]:
    """Cancel the download once the first megabyte is written, then let the rest come;
    returns what the progress callback saw."""
    written: list[int] = []
    task = asyncio.create_task(client.download("faq", 1, dest, progress=written.append))
    await until(lambda: bool(written) and written[-1] >= READ_BYTES)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    answer.go.set()
    return written


def use_proxy(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", url)


async def test_a_cancelled_download_writes_nothing_more_and_frees_its_socket(tmp_path: Path) -> None:
    answer = FirstMegabyteThenTheRest()
    server = RawServer(answer)
    # A read timeout of 10 minutes: only shutting the socket can end the thread's read early.
    client = transport(server, timeout_s=600)
    dest = tmp_path / "v.part"
    written = await cancel_after_the_first_megabyte(client, answer, dest)
    assert server.closed_by_client.wait(30)  # the rest was refused: the socket was shut
    await until(no_download_threads)
    assert written[-1] == READ_BYTES and dest.stat().st_size == READ_BYTES  # nothing written after the cancel
    await client.aclose()
    server.close()


async def test_a_cancelled_download_that_cannot_be_interrupted_still_writes_nothing_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through a proxy the download uses httpx's own transport, whose socket cannot be
    # interrupted: the rest of the body arrives after the cancel, and must not be written.
    answer = FirstMegabyteThenTheRest()
    proxy = RawServer(answer)
    use_proxy(monkeypatch, proxy.url)
    client = HTTPTransport(f"http://127.0.0.1:{free_port()}", "p", "k", timeout_s=600)
    dest = tmp_path / "v.part"
    written = await cancel_after_the_first_megabyte(client, answer, dest)
    await until(no_download_threads)  # it received more, found the stop, and ended
    assert written[-1] == READ_BYTES and dest.stat().st_size == READ_BYTES
    await client.aclose()
    proxy.close()


async def test_bytes_written_before_a_cancel_are_in_the_file_when_it_returns(tmp_path: Path) -> None:
    # A small chunk would sit in the file object's buffer and reach the file when
    # the stopped thread closes it: after its caller let go of the file.
    def a_little_then_stall(conn: socket.socket, request: bytes) -> None:
        conn.sendall(headers("200 OK", len(BODY)) + BODY[:100])
        conn.settimeout(60)
        if conn.recv(1) == b"":
            raise ConnectionResetError

    server = RawServer(a_little_then_stall)
    client = transport(server, timeout_s=600)
    dest = tmp_path / "v.part"
    written: list[int] = []
    task = asyncio.create_task(client.download("faq", 1, dest, progress=written.append))
    await until(lambda: bool(written))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert dest.stat().st_size == 100  # at once, not later
    await until(no_download_threads)
    assert dest.stat().st_size == 100
    await client.aclose()
    server.close()


@pytest.mark.parametrize("raw_server", [silent], indirect=True)
async def test_a_download_cancelled_before_its_answer_frees_its_socket_and_never_touches_the_file(
    raw_server: RawServer, tmp_path: Path
) -> None:
    client = transport(raw_server, timeout_s=600)
    dest = tmp_path / "v.part"
    task = asyncio.create_task(client.download("faq", 1, dest))
    await asyncio.sleep(0.2)  # the request is out; no answer will come
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert raw_server.closed_by_client.wait(30)  # the silent server saw the client go
    await until(no_download_threads)
    assert not dest.exists()
    await client.aclose()


@pytest.mark.parametrize("raw_server", [stall], indirect=True)
async def test_aclose_stops_a_running_download(raw_server: RawServer, tmp_path: Path) -> None:
    client = transport(raw_server, timeout_s=600)
    written: list[int] = []
    task = asyncio.create_task(client.download("faq", 1, tmp_path / "v.part", progress=written.append))
    await until(lambda: bool(written))
    await client.aclose()
    with pytest.raises(ClosedError):
        await task
    assert raw_server.closed_by_client.wait(30)


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
    use_proxy(monkeypatch, raw_server.url)
    target = f"http://127.0.0.1:{free_port()}"  # nothing listens there: only the proxy can answer
    client = HTTPTransport(target, "p", "k")
    dest = tmp_path / "v.part"
    assert await client.download("faq", 1, dest) == SHA256
    assert PROXIED == [f"GET {target}/v1/projects/p/indexes/faq/versions/1 HTTP/1.1"]
    await client.aclose()


@pytest.mark.parametrize("value", ["\u00b2", "9" * 5000, "-1", "1 ", ""])
def test_a_content_range_the_client_cannot_read_is_no_number_not_a_crash(value: str) -> None:
    # '²'.isdigit() is true and int() refuses it; so does int() for 5,000 digits (issue #8).
    latin1 = value.encode("latin-1", "replace")
    assert range_size(httpx.Response(416, headers={"Content-Range": b"bytes */" + latin1})) is None
    assert range_start(httpx.Response(206, headers={"Content-Range": b"bytes " + latin1 + b"-5/9"})) is None
