"""Where an index's objects are in storage: one folder-like prefix per index,
``<project>/<index>/``, holding its version files (``0000000003.sqlite``), their
page maps (``0000000003.sqlite.pages``, patch_store.py) and ``manifest.json``.
"""

from __future__ import annotations

from ..types import Version

MANIFEST_KEY = "manifest.json"
PAGES_SUFFIX = ".pages"


def version_key(project_id: str, index_name: str, version: int) -> str:
    return f"{project_id}/{index_name}/{Version(version).filename()}"


def manifest_key(project_id: str, index_name: str) -> str:
    return f"{project_id}/{index_name}/{MANIFEST_KEY}"


def pages_key(storage_key: str) -> str:
    """The page map stored beside the version file ``storage_key``."""
    return storage_key + PAGES_SUFFIX
