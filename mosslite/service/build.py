"""One job, start to publish: build N+1 beside N, store it, publish it.

Runs under the index's cross-process lock (locks.py), so the version it builds on
is still the newest when it publishes; the only way publishing can fail is the
index being deleted meanwhile, and then the stored file is removed again.

Invariants (issue #3):
- The live version is never modified: version N+1 is built in a staging file,
  stored under a new key, then published (version row, index row, job completion)
  in one catalog transaction. A crash before that transaction leaves version N
  live and an unreferenced staging/storage file, which the next start removes
  (recovery.py).
- A base whose bytes are not the published ones (its sha256 differs) fails the job
  and publishes nothing. It is hashed beside the build, unless this process wrote
  or hashed that very file (same inode, size and mtime) within VERIFIED_FOR_S:
  rehashing the version a build just wrote read the page cache's copy of the
  bytes it had hashed while writing them (~0.2 s of CPU per build at 100k
  documents, issue #7). Older ones are hashed again. Not the ctime: an embedded
  client's cache hard-links every new version, which changes it, and so every
  build of a loaded index hashed its base again; writing to the file changes
  the mtime.
- A job that changes no document (a delete of ids the index does not hold)
  publishes nothing either: it completes with ``version`` = the newest version,
  which stays (issue #12). Clients see no new version, so none downloads one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..embeddings import Embedder
from .._fs import in_background, sha256_file
from ..errors import CorruptIndexError, IndexNotFoundError
from ..index.apply_batch import changes_nothing
from ..index.builder import ProgressFn, build_from_batch
from ..types import IndexInfo, JobPhase, Manifest, Version
from .catalog import Catalog, VersionRecord
from .layout import pages_key, version_key
from .locks import index_lock
from .patch_store import store_previous_patch, stored_page_map
from .storage import Storage


@dataclass(frozen=True, kw_only=True)
class BuildParts:
    """What a build uses of the service, the same for every job."""

    catalog: Catalog
    storage: Storage
    #: A local file of a published version (``Versions.local_copy``): the build's base.
    local_copy: Callable[[VersionRecord], Path]
    #: Where version N+1 is built before it is stored.
    staging_dir: Path
    #: The per-index lock files (locks.py).
    lock_dir: Path


@dataclass(frozen=True, kw_only=True)
class JobContext:
    project_id: str
    job_id: str
    index: IndexInfo
    #: The job's documents and ids (index/batch.py).
    batch: Path
    upsert: bool
    embedder: Embedder


def run_build(parts: BuildParts, ctx: JobContext, progress: ProgressFn) -> VersionRecord | None:
    """Build, store and publish the job's version; None if the job changes nothing (it
    only deletes ids the newest version does not hold): then the job is completed
    with that version's number, and no version is published."""
    name = ctx.index.name
    with index_lock(parts.lock_dir, (ctx.project_id, name)):
        latest = parts.catalog.latest_version(ctx.project_id, name)
        base = parts.local_copy(latest) if latest is not None else None
        if latest is not None and base is not None and changes_nothing(base, ctx.batch):
            parts.catalog.complete_unchanged(ctx.job_id, latest.manifest.version)
            return None
        # Hashed beside the build, on the other core: a version file changed since it
        # was published (bit rot, or an edit) must not become the next version's base.
        base_sha256 = _sha256_of_base(base) if base is not None else None
        base_map = stored_page_map(parts.storage, latest) if latest is not None else None
        version = Version(latest.manifest.version + 1 if latest is not None else 1)
        target = parts.staging_dir / f"{ctx.job_id}.sqlite"
        patch = target.with_suffix(".patch")
        stored_patch = None
        try:
            report = build_from_batch(
                target,
                embedder=ctx.embedder,
                index_name=name,
                version=version,
                batch=ctx.batch,
                base=base,
                base_map=base_map,
                upsert=ctx.upsert,
                progress=progress,
            )
            if latest is not None and base_sha256 is not None and base_sha256() != latest.manifest.sha256:
                raise CorruptIndexError(
                    f"version {latest.manifest.version} of index {name!r} is not the file that was published "
                    "(its sha256 differs); this job published nothing",
                    index=name,
                    version=latest.manifest.version,
                    hint="restore that file, or delete the index and create it again from its documents",
                )
            progress(JobPhase.UPLOADING, 0.0)
            meta = report.meta
            manifest = Manifest(
                index_name=name,
                version=int(version),
                sha256=report.sha256,
                size_bytes=report.size_bytes,
                doc_count=meta.doc_count,
                model_id=meta.model_id,
                dimension=meta.dimension,
                created_at=meta.created_at,
            )
            key = version_key(ctx.project_id, name, int(version))
            if latest is not None:
                stored_patch = store_previous_patch(
                    parts.storage, key, target, report.page_map, latest, patch, base_map=base_map
                )
            parts.storage.put(key, target, move=True)
            _remember(parts.storage.local_path(key), report.sha256)  # the next build's base
            # Computed while the file was fsynced; stored now so the first client
            # asking for a patch to this version does not wait for it (patch_store.py).
            parts.storage.put_bytes(pages_key(key), report.page_map.to_bytes())
        finally:
            target.unlink(missing_ok=True)
            patch.unlink(missing_ok=True)
        progress(JobPhase.PUBLISHING, 100.0)
        record = VersionRecord(manifest=manifest, storage_key=key)
        if not parts.catalog.publish(ctx.project_id, ctx.job_id, record, overwritten=report.overwritten):
            parts.storage.delete(key)
            parts.storage.delete(pages_key(key))
            if stored_patch is not None:
                parts.storage.delete(stored_patch)
            raise IndexNotFoundError(f"index {name!r} was deleted while the job ran", index=name)
        return record


# -- files whose sha256 this process knows ------------------------------------------

#: How long a file this process wrote or hashed counts as verified, if unchanged.
VERIFIED_FOR_S = 600.0

_verified: dict[tuple[int, ...], tuple[str, float]] = {}  # identity -> (sha256, when)
_verified_lock = threading.Lock()


def _identity(path: Path) -> tuple[int, ...]:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)  # (no ctime: see the module's docstring)


def _remember(path: Path | None, sha256: str, identity: tuple[int, ...] | None = None) -> None:
    """``path`` (as it is now, or was when ``identity`` was taken) holds ``sha256``."""
    if path is None:  # (a storage with no local files: its bases are fresh copies, hashed)
        return
    now = time.monotonic()
    with _verified_lock:
        for key in [k for k, (_, when) in _verified.items() if now - when > VERIFIED_FOR_S]:
            del _verified[key]
        _verified[identity or _identity(path)] = (sha256, now)


def _sha256_of_base(base: Path) -> Callable[[], str]:
    """The base's sha256: known, or hashed on a low-priority thread beside the build
    (then remembered, under what the file was before it was read: a file changed
    meanwhile is hashed again next time); the returned function waits for it."""
    identity = _identity(base)
    with _verified_lock:
        known = _verified.get(identity)
    if known is not None and time.monotonic() - known[1] <= VERIFIED_FOR_S:
        return lambda: known[0]
    hashing = in_background(sha256_file, base, low_priority=True)

    def hashed() -> str:
        sha256 = hashing()
        _remember(base, sha256, identity)
        return sha256

    return hashed

