"""Where version files live, behind one small interface (``base.Storage``, its contract).

Backends, one per module: ``directory`` (the default) and ``memory`` (tests).
``open_storage`` chooses one explicitly by URL scheme (no import-time
registration); an S3-compatible backend slots in beside these, as Litestream's
replica clients do.
"""

from __future__ import annotations

from pathlib import Path

from .base import CHUNK_BYTES, Storage
from .directory import DirectoryStorage
from .memory import MemoryStorage


def open_storage(url: str) -> Storage:
    """``file:///path`` or a bare path -> DirectoryStorage; ``memory://`` -> MemoryStorage."""
    backends: dict[str, type[Storage]] = {"file": DirectoryStorage, "memory": MemoryStorage}
    scheme, sep, rest = url.partition("://")
    if not sep:
        return DirectoryStorage(Path(url))
    if scheme not in backends:
        raise ValueError(f"unknown storage scheme {scheme!r}; use one of {sorted(backends)}")
    return DirectoryStorage(Path(rest)) if scheme == "file" else MemoryStorage()


__all__ = ["CHUNK_BYTES", "DirectoryStorage", "MemoryStorage", "Storage", "open_storage"]
