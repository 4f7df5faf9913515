"""Durable file replacement, written once and used by every writer.

Temp file beside the target, write, fsync, close, rename, fsync the directory:
after a crash the target is either the old file or the new one, never a torn
mix (cf. Litestream's WriteLTXFile). Checksums are verified before the rename.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_MARKER = ".tmp-"
CHUNK_BYTES = 1 << 20


def temp_path_for(target: Path) -> Path:
    """A unique temp name in the target's directory (same filesystem, so rename is atomic)."""
    return target.with_name(f"{target.name}{TEMP_MARKER}{secrets.token_hex(6)}")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def install(temp: Path, target: Path) -> None:
    """Make a fully written temp file the target, durably and atomically."""
    fsync_file(temp)
    os.replace(temp, target)
    fsync_dir(target.parent)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path to fill; on success it replaces ``target``, on error it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(target)
    try:
        yield temp
        install(temp, target)
    finally:
        if temp.exists():
            temp.unlink()


def atomic_write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as temp:
        temp.write_bytes(data)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def remove_stale_temps(directory: Path) -> list[Path]:
    """Delete temp files a crashed writer left behind; returns what was removed."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        if TEMP_MARKER in entry.name and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
