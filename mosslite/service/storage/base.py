"""The storage contract: what every backend of ``Storage`` promises, per method.

Keys are ``/``-separated paths such as ``proj/faq/0000000003.sqlite`` made from
validated names only. Published objects are immutable: the service never writes
a key twice with different content.
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

CHUNK_BYTES = 1 << 20


class Storage(ABC):
    """Contract, per method below. Every method is safe to call from many threads."""

    scheme: str

    @property
    def url(self) -> str:
        """Where the objects are, as ``open_storage`` takes it (``mosslite serve`` prints it)."""
        return f"{self.scheme}://"

    @abstractmethod
    def put(self, key: str, source: Path, *, move: bool = False) -> None:
        """Store the file at ``source`` under ``key``, atomically: readers see the old
        object or the whole new one. ``move`` lets a backend consume the source file."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, *, cache_control: str | None = None) -> None:
        """Store small objects (manifests) atomically. ``cache_control``: the header an
        object store sends with the object (and a CDN in front of it obeys); a folder
        has none to keep."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The whole object. Missing key: FileNotFoundError."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes. Missing key: FileNotFoundError."""

    @abstractmethod
    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` up to ``end`` (exclusive; None = to the end) in chunks, for
        streaming and HTTP Range. Missing key: FileNotFoundError (raised on first next())."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error (idempotent)."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (a folder-like prefix ending in ``/``), sorted."""

    def local_path(self, key: str) -> Path | None:
        """A filesystem path of the object if the backend has one (lets an in-process
        client copy without streaming), else None."""
        return None

    def signed_url(self, key: str, expires_in_s: int) -> str | None:
        """A URL that lets whoever holds it GET the object (ranges too) for ``expires_in_s``
        seconds, and no other object, if the backend can make one (S3: presigned), else
        None. Computed locally (an HMAC): no request to the store."""
        return None

    def copy(self, source_key: str, key: str) -> None:
        """Store a copy of the object ``source_key`` under ``key``, atomically as ``put``.
        Missing source: FileNotFoundError. This default goes through a temp file; a
        backend that copies in place (a hard link, S3's CopyObject) does so instead."""
        with tempfile.TemporaryDirectory(prefix="mosslite-copy-") as folder:
            temp = Path(folder) / "object"
            self.download_to(source_key, temp)
            self.put(key, temp, move=True)

    def download_to(self, key: str, dest: Path) -> None:
        with open(dest, "wb") as out:
            for chunk in self.iter_range(key):
                out.write(chunk)
