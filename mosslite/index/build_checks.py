"""The rules a build is checked against before it does any work (issue #8).

``check_build`` runs first in ``build_version`` and ``build_from_batch``: the
target is a new file (nothing at it: no version, no device node, not the base),
the version is at least 1, the embedder is an Embedder, and the base, if any,
is an index file of the same name, an older version and the same model. Each
broken rule is a typed error, and no file is touched. ``check_base`` is run
again on the copy being built, which is what a build builds on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._db import connect, translating_sqlite_errors
from .._fs import check_path
from ..embeddings import Embedder
from ..errors import ConflictError, CorruptIndexError, IndexNotFoundError, InvalidArgumentError
from ..types import Version
from ..validation import validate_name
from .format import IndexMeta, read_meta


def check_build(
    target: Any, *, embedder: Any, index_name: Any, version: Any, base: Any
) -> tuple[Path, Version, Path | None]:
    """(target, version, base) after every rule of a build is checked, before any work.

    Invariants (issue #8): a build never replaces an existing file (``target`` must
    not exist: a version file, a device node, a folder) and never reads and writes
    the same file (base != target); ``index_name`` passes validate_name; ``version``
    is at least 1; ``embedder`` is an Embedder; ``base`` is an index file of the same
    name, an older version and the same model. Each broken rule is a typed error."""
    target = check_path(target, "target")
    if not isinstance(embedder, Embedder):
        raise InvalidArgumentError(
            f"embedder must be an Embedder, got {type(embedder).__name__}", hint="pass embedder=get_embedder(model_id)"
        )
    validate_name(index_name)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArgumentError(f"version must be an integer of at least 1, got {version!r}", index=index_name)
    version = Version(version)
    if base is not None:
        base = check_path(base, "base")
    refuse_existing(target, base)
    if base is not None:
        _check_base_file(base, embedder, index_name, version)
    return target, version, base


def refuse_existing(target: Path, base: Path | None) -> None:
    """A build writes a new file: it is an error if anything is at ``target`` (issue #8),
    or if the nearest existing folder above it is not a folder."""
    if os.path.lexists(target):
        if base is not None and _same_file(target, base):
            raise InvalidArgumentError(
                f"target {target} is the base file: a version is built into a new file beside its base",
                path=str(target),
                hint="pass a target path where no file exists yet",
            )
        raise ConflictError(
            f"{target} already exists; a build never replaces a file",
            path=str(target),
            hint="pass a target path where no file exists yet (remove the old file first if it is garbage)",
        )
    parent = target.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InvalidArgumentError(f"{target}: {parent} is not a folder", path=str(target))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # (b missing: then it is not a)
        return False


def _check_base_file(base: Path, embedder: Embedder, index_name: str, version: Version) -> None:
    """``base`` is an index file (checked as IndexReader checks one) whose meta fits the build."""
    if not base.exists():
        raise IndexNotFoundError(f"no index file at {base}", path=str(base), index=index_name)
    if not base.is_file():  # (a folder, or a FIFO that would block the open)
        raise CorruptIndexError(f"{base} is not a file", path=str(base))
    with translating_sqlite_errors(base):
        conn = connect(base, readonly=True)
        try:
            check_base(read_meta(conn, base), base, embedder, index_name, version)
        finally:
            conn.close()


def check_base(meta: IndexMeta, base: Path, embedder: Embedder, index_name: str, version: Version) -> None:
    """A base is an older version of the same index, made with the same model (issue #8)."""
    if meta.index_name != index_name:
        raise InvalidArgumentError(
            f"base {base} is a version of index {meta.index_name!r}, not {index_name!r}", index=index_name, path=str(base)
        )
    if meta.version >= version:
        raise InvalidArgumentError(
            f"base {base} is version {int(meta.version)} of {index_name!r}: version {int(version)} must be newer",
            index=index_name,
            path=str(base),
            hint=f"build version {int(meta.version) + 1} or later on it",
        )
    if meta.model_id != embedder.model_id or meta.dimension != embedder.dimension:
        raise InvalidArgumentError(
            f"index {index_name!r} uses model {meta.model_id!r} ({meta.dimension} dims), "
            f"not {embedder.model_id!r} ({embedder.dimension} dims)",
            index=index_name,
        )


__all__ = ["check_base", "check_build", "refuse_existing"]
