"""Page patches between published versions, for clients that hold an older one.

Invariants (issue #4):
- A patch is chosen from page maps (index/page_patch.py) and never trusted on its
  own: the client checks the patched file against the manifest's sha256.
- A page map is stored beside its version file (``<key>.pages``) when the
  version is published (build.py), or computed from the file the first time a
  patch needs it (versions published before maps existed). It carries the
  sha256 of the file it maps; a map whose sha256 is not the version's (an index
  deleted and re-created under the same name) is computed again, never used.
- A patch is offered only when it is smaller than ``PATCH_MAX_SHARE`` of the
  version file (``PageMap.worth_patching``, the rule a client assembling a patch
  from the object store follows too); otherwise PatchUnavailableError says to
  download the file.
- At publish (build.py) the patch from the version before is also stored as an
  object beside the new file (``store_previous_patch``; layout.patch_key), when
  one is worth it, so a device holding that version fetches it by one presigned
  link (links.py) in one request, without the service.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CorruptIndexError, IndexNotFoundError, PatchUnavailableError
from ..index.page_patch import PageMap, patch_chunks
from .catalog import VersionRecord
from .layout import pages_key, patch_key
from .storage import Storage

log = logging.getLogger("mosslite.service")


@dataclass(frozen=True)
class VersionPatch:
    """The pages of ``target`` that differ from a base version, ready to stream."""

    target: VersionRecord
    page_map: PageMap
    pages: np.ndarray
    size_bytes: int

    def chunks(self, storage: Storage) -> Iterator[bytes]:
        """The patch's bytes, read from ``storage`` (the file opened once where it is local)."""
        key = self.target.storage_key
        path = storage.local_path(key)
        if path is None:
            yield from patch_chunks(self.page_map, self.pages, lambda a, b: b"".join(storage.iter_range(key, a, b)))
            return
        with open(path, "rb") as fh:
            yield from patch_chunks(self.page_map, self.pages, lambda a, b: os.pread(fh.fileno(), b - a, a))


def stored_page_map(storage: Storage, record: VersionRecord) -> PageMap | None:
    """The page map stored beside a version, if there is one of its bytes."""
    try:
        stored = PageMap.from_bytes(storage.read_bytes(pages_key(record.storage_key)))
    except (FileNotFoundError, CorruptIndexError):
        return None
    return stored if stored.sha256 == record.manifest.sha256 else None


def page_map(storage: Storage, record: VersionRecord) -> PageMap | None:
    """The stored page map of a version, else one computed from its file (and stored);
    None if neither exists any more."""
    stored = stored_page_map(storage, record)
    if stored is not None:
        return stored
    key = pages_key(record.storage_key)
    try:
        computed = PageMap.of_chunks(storage.iter_range(record.storage_key))
    except FileNotFoundError:
        return None
    if computed.sha256 != record.manifest.sha256:
        log.error("%s does not hold the bytes that were published (sha256 differs)", record.storage_key)
        return None
    storage.put_bytes(key, computed.to_bytes())
    return computed


def version_patch(storage: Storage, target: VersionRecord, base: VersionRecord | None) -> VersionPatch:
    """The patch turning ``base`` into ``target``, or PatchUnavailableError."""
    name, version = target.manifest.index_name, target.manifest.version
    try:
        storage.size(target.storage_key)
    except FileNotFoundError as exc:  # deleted since: newer versions replaced it
        raise IndexNotFoundError.version_gone(name, version) from exc
    unavailable = dict(index=name, version=version, hint="download the whole version")
    if base is None or base.manifest.version >= version:
        raise PatchUnavailableError(f"index {name!r}: no patch to version {version} from that version", **unavailable)
    target_map, base_map = page_map(storage, target), page_map(storage, base)
    if target_map is None or base_map is None:
        raise PatchUnavailableError(
            f"index {name!r}: the pages of version {base.manifest.version} are no longer known", **unavailable
        )
    pages = target_map.changed_since(base_map)
    if not target_map.worth_patching(pages):
        raise PatchUnavailableError(
            f"index {name!r}: version {version} differs from {base.manifest.version} in {len(pages)} of "
            f"{target_map.page_count} pages; the whole file costs about as much",
            **unavailable,
        )
    return VersionPatch(target=target, page_map=target_map, pages=pages, size_bytes=target_map.patch_bytes(pages))


def store_previous_patch(
    storage: Storage,
    key: str,
    file: Path,
    file_map: PageMap,
    base: VersionRecord,
    staging: Path,
    *,
    base_map: PageMap | None = None,
) -> str | None:
    """Store the patch from ``base`` to the version file ``file`` (about to be stored
    under ``key``; ``file_map`` maps it) beside it, written through ``staging``; its
    key, or None when no patch is worth storing (or the base's pages are not known).
    ``base_map``: ``base``'s stored map, if the caller read it already."""
    base_map = base_map or page_map(storage, base)
    if base_map is None:
        return None
    pages = file_map.changed_since(base_map)
    if not file_map.worth_patching(pages):
        return None
    with open(file, "rb") as fh, open(staging, "wb") as out:
        for chunk in patch_chunks(file_map, pages, lambda a, b: os.pread(fh.fileno(), b - a, a)):
            out.write(chunk)
    stored = patch_key(key, base.manifest.version)
    storage.put(stored, staging, move=True)
    return stored
