"""Objects in a dict: the test double that defines the contract with no disk."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from .base import CHUNK_BYTES, Storage


class MemoryStorage(Storage):
    scheme = "memory"

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, source: Path, *, move: bool = False) -> None:
        data = Path(source).read_bytes()
        self.put_bytes(key, data)
        if move:
            Path(source).unlink()

    def put_bytes(self, key: str, data: bytes, *, cache_control: str | None = None) -> None:
        with self._lock:
            self._objects[key] = bytes(data)

    def read_bytes(self, key: str) -> bytes:
        with self._lock:
            if key not in self._objects:
                raise FileNotFoundError(key)
            return self._objects[key]

    def size(self, key: str) -> int:
        return len(self.read_bytes(key))

    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        data = self.read_bytes(key)[start:end]
        for offset in range(0, len(data), CHUNK_BYTES):
            yield data[offset : offset + CHUNK_BYTES]

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(prefix))
