"""Published versions as the service serves them: manifests, version records, the
bytes of version files, a cache of open readers and local copies, docs pages.

Invariants (issues #3, #4, #8):
- Everything here reads what the catalog published; nothing here writes a version.
  A version file is immutable, so a reader or local copy of it stays right for as
  long as the file exists.
- At most ``READER_CACHE`` readers are open, keyed by (storage key, sha256): an
  index deleted and created again reuses storage keys for other contents, so the
  sha256 keeps an old reader (or copy) from answering for the new file.
- A local copy (for a storage with no local paths) is written whole or not at all
  (``atomic_path``), and removed with its version file (``forget_local_copies``).
- A docs cursor is pinned to the version its first page read (paging.py); once that
  version is pruned, the next page is a ConflictError saying to start again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .._fs import atomic_path, remove_empty_folders
from ..errors import ConflictError, IndexNotFoundError
from ..filters import compile_filter
from ..index.reader import IndexReader
from ..types import DocsPage, DocumentInfo, IndexInfo, Manifest, Version, VersionInfo
from ..validation import check_ids, validate_name
from .catalog import Catalog, VersionRecord
from .layout import Stored, manifest_key, stored_versions
from .paging import Cursor, page_limit, parse_cursor, request_digest
from .patch_store import VersionPatch, version_patch
from .storage import Storage

READER_CACHE = 8


class Versions:
    """The published versions of every index, read through the catalog and storage.
    ``staging_dir`` holds the local copies of a storage with no local paths."""

    def __init__(self, catalog: Catalog, storage: Storage, staging_dir: Path) -> None:
        self.catalog = catalog
        self.storage = storage
        self.staging_dir = staging_dir
        self._readers: OrderedDict[tuple[str, str], IndexReader] = OrderedDict()  # by (storage key, sha256)
        self._readers_lock = threading.Lock()

    def close(self) -> None:
        with self._readers_lock:
            for reader in self._readers.values():
                reader.close()
            self._readers.clear()

    # -- manifests and records --------------------------------------------------

    def manifest(self, project_id: str, name: str) -> Manifest:
        """The newest published version. An index with none yet is not found."""
        return self.latest(project_id, name).manifest

    def latest(self, project_id: str, name: str) -> VersionRecord:
        """The newest published version's record. An index with none yet is not found."""
        validate_name(name)
        record = self.catalog.latest_version(project_id, name)
        if record is None:
            self.catalog.get_index(project_id, name)  # raises if the index does not exist
            raise IndexNotFoundError(f"index {name!r} has no published version yet", index=name, hint="wait for its job")
        return record

    def version_record(self, project_id: str, name: str, version: int) -> VersionRecord:
        validate_name(name)
        record = self.catalog.get_version(project_id, name, Version(version))
        if record is None:
            raise IndexNotFoundError(f"index {name!r} has no version {version}", index=name, version=version)
        return record

    def list_versions(self, project_id: str, name: str) -> list[VersionInfo]:
        """Every published version of ``name``, newest first, and whether storage still
        keeps its file (retention.py prunes old ones; their catalog rows stay)."""
        validate_name(name)
        self.catalog.get_index(project_id, name)  # raises if the index does not exist
        records = self.catalog.list_versions(project_id, name)
        kept = {key for key, _, kind in stored_versions(self.storage, project_id, name) if kind is Stored.FILE}
        return [
            VersionInfo(
                index_name=r.manifest.index_name,
                version=r.manifest.version,
                size_bytes=r.manifest.size_bytes,
                doc_count=r.manifest.doc_count,
                model_id=r.manifest.model_id,
                dimension=r.manifest.dimension,
                sha256=r.manifest.sha256,
                created_at=r.manifest.created_at,
                kept=r.storage_key in kept,
            )
            for r in records
        ]

    def version_patch(self, project_id: str, name: str, version: int, base_version: int) -> VersionPatch:
        """The pages of ``version`` that differ from ``base_version`` (which the caller holds);
        stream them with ``patch_bytes``. No patch worth sending: PatchUnavailableError."""
        target = self.version_record(project_id, name, version)
        base = self.catalog.get_version(project_id, name, Version(base_version))
        return version_patch(self.storage, target, base)

    # -- the bytes of a version file --------------------------------------------------

    def patch_bytes(self, patch: VersionPatch) -> Iterator[bytes]:
        return patch.chunks(self.storage)

    def version_path(self, record: VersionRecord) -> Path | None:
        return self.storage.local_path(record.storage_key)

    def version_size(self, record: VersionRecord) -> int:
        return self.storage.size(record.storage_key)

    def version_bytes(self, record: VersionRecord, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self.storage.iter_range(record.storage_key, start, end)

    def watch_dir(self, project_id: str, name: str) -> Path | None:
        root = getattr(self.storage, "root", None)
        return Path(root) / manifest_key(project_id, name).rsplit("/", 1)[0] if root is not None else None

    # -- documents --------------------------------------------------------------------

    def get_docs_page(
        self,
        project_id: str,
        name: str,
        ids: Sequence[str] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        include_embedding: bool = True,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> DocsPage:
        """``Service.get_docs_page``; the cursor's rules are in paging.py."""
        validate_name(name)
        info = self.catalog.get_index(project_id, name)
        if ids is not None:
            ids = check_ids(ids)
        compile_filter(filter)  # a bad filter is refused before it is hashed into a cursor
        size = page_limit(limit)
        digest = request_digest(ids, filter, include_embedding)
        if cursor is None:
            start = Cursor(info.version, 0, digest)
        else:
            start = parse_cursor(cursor, digest)
        if start.version == 0:
            return DocsPage(docs=[])
        try:
            reader = self.reader(project_id, name, start.version)
        except (IndexNotFoundError, FileNotFoundError) as exc:  # never published, or pruned
            raise ConflictError(
                f"version {start.version} of index {name!r}, which this cursor pages through, is gone",
                index=name,
                hint="newer versions replaced it: start the listing again, without a cursor",
            ) from exc
        docs, after = reader.page_docs(ids, filter, include_embedding=include_embedding, after=start.after, limit=size)
        return DocsPage(docs=docs, next_cursor=None if after is None else Cursor(start.version, after, digest).encode())

    def get_docs(
        self, project_id: str, info: IndexInfo, *, ids: Any, filter: Any, include_embedding: bool
    ) -> list[DocumentInfo]:
        if ids is not None:
            ids = check_ids(ids)
        if info.version == 0:
            return []
        reader = self.reader(project_id, info.name, info.version)
        return reader.get_docs(ids=ids, filter=filter, include_embedding=include_embedding)

    # -- readers and local copies -------------------------------------------------------

    def reader(self, project_id: str, name: str, version: int) -> IndexReader:
        record = self.version_record(project_id, name, version)
        key = (record.storage_key, record.manifest.sha256)
        with self._readers_lock:
            reader = self._readers.get(key)
            if reader is not None:
                self._readers.move_to_end(key)
                return reader
        reader = IndexReader(self.local_copy(record), search=False)  # documents and filters only
        with self._readers_lock:
            if key in self._readers:  # another thread opened it meanwhile
                reader.close()
                return self._readers[key]
            self._readers[key] = reader
            while len(self._readers) > READER_CACHE:
                self._readers.popitem(last=False)[1].close()
        return reader

    def local_copy(self, record: VersionRecord) -> Path:
        path = self.storage.local_path(record.storage_key)
        if path is not None:
            return path
        folder, name = self._local_copy_place(record.storage_key)
        path = folder / f"{name}.{record.manifest.sha256}"
        if not path.exists():
            with atomic_path(path, read_only=True) as temp:  # never half a file, whatever crashes or races
                self.storage.download_to(record.storage_key, temp)
        return path

    def _local_copy_place(self, storage_key: str) -> tuple[Path, str]:
        """(folder, name) of ``local_copy``'s files for a storage with no local paths.
        Each file's name ends with its sha256: an index deleted and created again
        reuses storage keys for other contents, and a copy of the old version 1 once
        became the base of the new index's version 2."""
        folder, _, name = storage_key.rpartition("/")
        return self.staging_dir / "cache" / folder, name

    def forget_local_copies(self, storage_key: str) -> None:
        """Remove the local copies and cached readers of a deleted version file."""
        with self._readers_lock:
            for key in [k for k in self._readers if k[0] == storage_key]:
                self._readers.pop(key).close()
        folder, name = self._local_copy_place(storage_key)
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name == name or path.name.startswith(f"{name}."):  # (unsuffixed: before sha256 names)
                    path.unlink(missing_ok=True)
            remove_empty_folders(folder, self.staging_dir)
