"""Where an index's objects are in storage: one folder-like prefix per index,
``<project>/<index>/``, holding its version files (``0000000003.sqlite``), their
page maps (``0000000003.sqlite.pages``, patch_store.py) and ``manifest.json``.

A public index (public read mode, public.py) has copies of its newest files and a
manifest of its own under ``_public/<project>/<index>/``: the one prefix an
operator makes readable without credentials. No project name starts with ``_``
(validation.py), so no private key is ever under it.
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
PUBLIC_ROOT = "_public"


def version_key(project_id: str, index_name: str, version: int) -> str:
    return f"{project_id}/{index_name}/{Version(version).filename()}"


def manifest_key(project_id: str, index_name: str) -> str:
    return f"{project_id}/{index_name}/{MANIFEST_KEY}"


def pages_key(storage_key: str) -> str:
    """The page map stored beside the version file ``storage_key``."""
    return storage_key + PAGES_SUFFIX


def public_key(key: str) -> str:
    """Where the public copy of ``key`` (a version file, its page map, the manifest) goes."""
    return f"{PUBLIC_ROOT}/{key}"


def stored_versions(
    storage: Storage, project_id: str, index_name: str, *, public: bool = False
) -> Iterator[tuple[str, Version, bool]]:
    """(key, version, is it a page map) of the version files and page maps in storage
    (``public``: of their public copies)."""
    prefix = f"{project_id}/{index_name}/"
    for key in storage.list(public_key(prefix) if public else prefix):
        name = key.rsplit("/", 1)[-1]
        try:
            yield key, Version.parse_filename(name.removesuffix(PAGES_SUFFIX)), name.endswith(PAGES_SUFFIX)
        except InvalidArgumentError:  # manifest.json
            continue
