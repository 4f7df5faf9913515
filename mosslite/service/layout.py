"""Where an index's objects are in storage: one folder-like prefix per index,
``<project>/<index>/``, holding its version files (``0000000003.sqlite``), their
page maps (``0000000003.sqlite.pages``, patch_store.py) and ``manifest.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import InvalidArgumentError
from ..types import Version

if TYPE_CHECKING:
    from .storage import Storage

MANIFEST_KEY = "manifest.json"
PAGES_SUFFIX = ".pages"


def version_key(project_id: str, index_name: str, version: int) -> str:
    return f"{project_id}/{index_name}/{Version(version).filename()}"


def manifest_key(project_id: str, index_name: str) -> str:
    return f"{project_id}/{index_name}/{MANIFEST_KEY}"


def pages_key(storage_key: str) -> str:
    """The page map stored beside the version file ``storage_key``."""
    return storage_key + PAGES_SUFFIX


def stored_versions(storage: Storage, project_id: str, index_name: str) -> Iterator[tuple[str, Version, bool]]:
    """(key, version, is it a page map) of the version files and page maps in storage."""
    for key in storage.list(f"{project_id}/{index_name}/"):
        name = key.rsplit("/", 1)[-1]
        try:
            yield key, Version.parse_filename(name.removesuffix(PAGES_SUFFIX)), name.endswith(PAGES_SUFFIX)
        except InvalidArgumentError:  # manifest.json
            continue
