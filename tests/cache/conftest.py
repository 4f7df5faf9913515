"""Cache tests run on real version files of a real embedded service, reached through
``CopyingTransport``: the in-process transport, but with downloads that copy bytes (as
over HTTP, so a cut one leaves a ``.part`` to resume) and page patches as the HTTP app
serves them. Every call is counted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from mosslite import DocumentInfo
from mosslite.cache.layout import cached_versions
from mosslite.errors import PatchUnavailableError, UnavailableError
from mosslite.service import Service
from mosslite.transport.base import ByteProgress
from mosslite.transport.local import LocalTransport

MODEL = "hashed-ngrams-256"
PROJECT = "p"


def versions_in(index_dir: Path) -> list[int]:
    """The numbers of the versions a cache folder holds, newest first."""
    return [cached.version for cached in cached_versions(index_dir)]


def docs(start: int, count: int) -> list[DocumentInfo]:
    return [DocumentInfo(id=f"d{i}", text=f"note {i} on routers, printers and cables " * 8) for i in range(start, start + count)]


class CopyingTransport(LocalTransport):
    """``cut_after``: the next download stops after that many bytes, as a broken
    connection does. ``damage``: downloads flip one byte (a bad disk or proxy)."""

    def __init__(self, service: Service) -> None:
        super().__init__(service, PROJECT, "k")
        self.downloads: list[tuple[int, int]] = []  # (version, offset)
        self.patches: list[tuple[int, int]] = []  # (version, base version)
        self.cut_after: int | None = None
        self.damage = False

    async def download(
        self, name: str, version: int, dest: Path, *, offset: int = 0, progress: ByteProgress | None = None
    ) -> str | None:
        self.downloads.append((version, offset))
        record = await self._call("version_record", name, version)
        cut_after, self.cut_after = self.cut_after, None
        await asyncio.to_thread(self._copy, record, dest, offset, cut_after)
        return None  # not hashed while written: the cache hashes the file

    def _copy(self, record: Any, dest: Path, offset: int, cut_after: int | None) -> None:
        data = b"".join(self.service.version_bytes(record, offset))
        if self.damage:
            data = data[:5000] + bytes([data[5000] ^ 0xFF]) + data[5001:]
        with open(dest, "ab" if offset else "wb") as out:
            if cut_after is not None:
                out.write(data[:cut_after])
                raise UnavailableError("simulated: the connection broke")
            out.write(data)

    async def download_patch(
        self, name: str, version: int, base_version: int, dest: Path, *, base_path: Path | None = None
    ) -> bool:
        self.patches.append((version, base_version))
        try:
            found = await self._call("version_patch", name, version, base_version)
        except PatchUnavailableError:
            return False

        def write() -> None:
            with open(dest, "wb") as out:
                for chunk in self.service.patch_bytes(found):
                    out.write(chunk)

        await asyncio.to_thread(write)
        return True


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tmp_path / "svc")
    yield svc
    svc.close()


def publish(service: Service, start: int, count: int) -> None:
    """Version 1 of index "faq" with ``docs(start, count)``, or the next version adding them."""
    try:
        service.version_record(PROJECT, "faq", 1)
    except Exception:
        service.create_index(PROJECT, "faq", docs(start, count), MODEL)
    else:
        service.add_docs(PROJECT, "faq", docs(start, count), None)
    assert service.wait_idle(60)


def stored(service: Service, version: int) -> Path:
    """The service's own file of a version."""
    path = service.version_path(service.version_record(PROJECT, "faq", version))
    assert path is not None
    return path


def damage_docs_page(path: Path) -> None:
    """Overwrite the page holding the vectors' chunk table (read at every open), keeping
    the file's size and its meta table: as a failing disk or a stray write would leave
    a cached file. (Damage to pages read only by queries, such as docs rows or posting
    lists, surfaces as CorruptIndexError from the query.)"""
    conn = apsw.Connection(f"file:{path}?immutable=1", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'docs_vec_chunks'").fetchone()
    conn.close()
    path.chmod(0o644)
    with path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)
    path.chmod(0o444)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)
