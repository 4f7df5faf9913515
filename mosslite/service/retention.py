"""What storage keeps of an index: pruning old versions, and removing a deleted index.

Invariants (issues #3, #4):
- Storage stays bounded: after each publish only the newest ``keep_versions``
  version files are kept (a download already streaming keeps its open file);
  page maps, a fraction of a file, are kept longer (``DEFAULT_KEEP_PAGE_MAPS``) so
  that clients holding an older version still get patches (patch_store.py); the
  page patch stored beside a version file (from the version before) goes with it.
- A version file leaves storage together with its local copies and cached readers
  (``Versions.forget_local_copies``): nothing answers from a deleted file.
- A deleted index leaves no object behind: manifest, version files, page maps,
  page patches.
"""

from __future__ import annotations

from ..types import DEFAULT_KEEP_PAGE_MAPS, DEFAULT_KEEP_VERSIONS
from .layout import Stored, manifest_key, pages_key, previous_patch_key, stored_versions
from .storage import Storage
from .versions import Versions


class Retention:
    def __init__(self, storage: Storage, versions: Versions, *, keep_versions: int = DEFAULT_KEEP_VERSIONS) -> None:
        self.storage = storage
        self.versions = versions
        self.keep_versions = keep_versions

    def prune(self, project_id: str, index_name: str, newest: int) -> None:
        """Delete version files older than the newest ``keep_versions`` and page maps
        older than the newest DEFAULT_KEEP_PAGE_MAPS. Without this every mutation of a
        100k-document index would keep another ~440 MB forever; the maps (0.2% of a
        file) let clients holding a deleted version still fetch patches."""
        for key, version, kind in stored_versions(self.storage, project_id, index_name):
            if version <= newest - (DEFAULT_KEEP_PAGE_MAPS if kind is Stored.PAGES else self.keep_versions):
                self.storage.delete(key)
                if kind is Stored.FILE:
                    self.versions.forget_local_copies(key)

    def remove_index(self, project_id: str, name: str, storage_keys: list[str]) -> None:
        """Delete a deleted index's manifest, and its version files (``storage_keys``,
        as the catalog named them) with their page maps, page patches and local copies."""
        self.storage.delete(manifest_key(project_id, name))
        for key in storage_keys:
            self.storage.delete(key)
            self.storage.delete(pages_key(key))
            if (patch := previous_patch_key(key)) is not None:
                self.storage.delete(patch)
            self.versions.forget_local_copies(key)
