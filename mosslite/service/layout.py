"""Where an index's objects are in storage: one folder-like prefix per index,
``<project>/<index>/``, holding its version files (``0000000003.sqlite``), their
page maps (``0000000003.sqlite.pages``, patch_store.py), the page patch from the
version before each (``0000000003.sqlite.from-2.patch``, stored at publish for
clients that fetch by link) and ``manifest.json``.

A public index (public read mode, public.py) has copies of its newest files and a
manifest of its own under ``_public/<project>/<index>/``: the one prefix an
operator makes readable without credentials. No project name starts with ``_``
(validation.py), so no private key is ever under it.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import TYPE_CHECKING

from ..errors import InvalidArgumentError
from ..types import Version

if TYPE_CHECKING:
    from .storage import Storage

MANIFEST_KEY = "manifest.json"
PAGES_SUFFIX = ".pages"
PATCH_SUFFIX = ".patch"
PUBLIC_ROOT = "_public"


class Stored(Enum):
    """What a stored object of a version is."""

    FILE = "version file"
    PAGES = "page map"
    PATCH = "page patch from the version before"


def version_key(project_id: str, index_name: str, version: int) -> str:
    return f"{project_id}/{index_name}/{Version(version).filename()}"


def manifest_key(project_id: str, index_name: str) -> str:
    return f"{project_id}/{index_name}/{MANIFEST_KEY}"


def pages_key(storage_key: str) -> str:
    """The page map stored beside the version file ``storage_key``."""
    return storage_key + PAGES_SUFFIX


def patch_key(storage_key: str, base: int) -> str:
    """The page patch from version ``base`` to the version file ``storage_key``, beside it."""
    return f"{storage_key}.from-{int(base)}{PATCH_SUFFIX}"


def previous_patch_key(storage_key: str) -> str | None:
    """The patch stored beside ``storage_key`` (from the version before; None for version 1)."""
    version = Version.parse_filename(storage_key.rsplit("/", 1)[-1])
    return patch_key(storage_key, version - 1) if version > 1 else None


def public_key(key: str) -> str:
    """Where the public copy of ``key`` (a version file, its page map, the manifest) goes."""
    return f"{PUBLIC_ROOT}/{key}"


def stored_versions(
    storage: Storage, project_id: str, index_name: str, *, public: bool = False
) -> Iterator[tuple[str, Version, Stored]]:
    """(key, version, what it is) of the version files, page maps and page patches in
    storage (``public``: of their public copies)."""
    prefix = f"{project_id}/{index_name}/"
    for key in storage.list(public_key(prefix) if public else prefix):
        name = key.rsplit("/", 1)[-1]
        file_name, kind = name, Stored.FILE
        if name.endswith(PAGES_SUFFIX):
            file_name, kind = name.removesuffix(PAGES_SUFFIX), Stored.PAGES
        elif name.endswith(PATCH_SUFFIX):
            file_name, kind = name.partition(".from-")[0], Stored.PATCH
        try:
            yield key, Version.parse_filename(file_name), kind
        except InvalidArgumentError:  # manifest.json
            continue
