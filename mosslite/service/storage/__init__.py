"""Where version files live, behind one small interface (``base.Storage``, its contract).

Backends, one per module: ``directory`` (the default), ``s3`` (an S3-compatible
object store) and ``memory`` (tests). ``open_storage`` chooses one explicitly by
URL scheme (no import-time registration), as Litestream's replica clients do.
"""

from __future__ import annotations

from pathlib import Path

from .base import CHUNK_BYTES, Storage
from .directory import DirectoryStorage
from .memory import MemoryStorage
from .s3 import S3Storage, s3_location


def open_storage(url: str, *, endpoint: str | None = None, region: str | None = None) -> Storage:
    """``file:///path`` or a bare path -> DirectoryStorage; ``s3://bucket/prefix`` ->
    S3Storage (``endpoint`` and ``region``, else the AWS environment variables);
    ``memory://`` -> MemoryStorage."""
    backends: dict[str, type[Storage]] = {"file": DirectoryStorage, "s3": S3Storage, "memory": MemoryStorage}
    scheme, sep, rest = url.partition("://")
    if not sep:
        return DirectoryStorage(Path(url))
    if scheme not in backends:
        raise ValueError(f"unknown storage scheme {scheme!r}; use one of {sorted(backends)}")
    if scheme == "s3":
        bucket, prefix = s3_location(url)
        return S3Storage(bucket, prefix, endpoint=endpoint, region=region)
    return DirectoryStorage(Path(rest)) if scheme == "file" else MemoryStorage()


__all__ = ["CHUNK_BYTES", "DirectoryStorage", "MemoryStorage", "S3Storage", "Storage", "open_storage"]
