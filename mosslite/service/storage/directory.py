"""Version files as plain files under one folder: ``<root>/<key>``.

Objects are immutable once stored (a manifest is replaced by a new file, never
rewritten), and stored without write bits: the embedded client hard-links
version files into its cache, so an edit there would otherwise change the
service's own copy.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..._fs import atomic_path, atomic_write_bytes, install, make_read_only, remove_empty_folders, temp_path_for
from .base import CHUNK_BYTES, Storage


class DirectoryStorage(Storage):
    scheme = "file"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return self.root.resolve().as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        # Keys are built from validated names; this guards the boundary anyway.
        if self.root.resolve() not in path.parents:
            raise ValueError(f"storage key {key!r} escapes the storage root")
        return path

    def put(self, key: str, source: Path, *, move: bool = False) -> None:
        try:
            self._put(key, source, move=move)
        except FileNotFoundError:  # its folder was removed by a delete just now: once more
            self._put(key, source, move=move)

    def _put(self, key: str, source: Path, *, move: bool) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if move:
            temp = temp_path_for(target)
            os.replace(source, temp)  # same filesystem: the service stages under its data dir
            make_read_only(temp)
            install(temp, target)
            return
        with atomic_path(target, read_only=True) as temp:
            shutil.copyfile(source, temp)

    def put_bytes(self, key: str, data: bytes, *, cache_control: str | None = None) -> None:
        try:
            atomic_write_bytes(self._path(key), data, read_only=True)
        except FileNotFoundError:  # (as in put)
            atomic_write_bytes(self._path(key), data, read_only=True)

    def copy(self, source_key: str, key: str) -> None:
        """A hard link: no bytes copied (objects are immutable and read-only)."""
        try:
            self._link(source_key, key)
        except FileNotFoundError:
            if not self._path(source_key).is_file():
                raise
            self._link(source_key, key)  # (the target's folder was removed just now, as in put)

    def _link(self, source_key: str, key: str) -> None:
        source, target = self._path(source_key), self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_path_for(target)
        os.link(source, temp)
        install(temp, target)

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        with open(self._path(key), "rb") as fh:
            fh.seek(start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                chunk = fh.read(CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def delete(self, key: str) -> None:
        """Also removes the folders the key leaves empty: an object store has none."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        remove_empty_folders(path.parent, self.root)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        root = self.root.resolve()
        return sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file() and ".tmp-" not in p.name)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None
