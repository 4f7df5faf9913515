"""What makes a file in the cache trusted: checked once on the way in, by identity after.

Invariants (issue #4):
- A file gets a version's final name only after its size and sha256 matched the
  manifest and it was fsynced (``finish_download``, through ``_fs.install``), and
  then loses its write bits: whatever sits under a final name is complete and
  stays so. A mismatch discards the file; nothing torn is ever installed.
- A file already in the cache is trusted by its size and meta, not hashed again
  (~0.4 s at 100k documents): ``file_is_version``. One that no longer opens is
  not the version (``meta_of`` gives None) and is fetched again.
- A file is the manifest's version only if its number and build time match
  (``is_version``): an index deleted and made again under its name numbers its
  versions from 1 again, and the old index's files must not pass for the new one's.
"""

from __future__ import annotations

from pathlib import Path

from .._db import connect, translating_sqlite_errors
from .._fs import install, make_read_only, sha256_file
from ..errors import ChecksumMismatchError, IntegrityError
from ..index.format import IndexMeta, read_meta
from ..types import Manifest


def finish_download(part: Path, target: Path, manifest: Manifest, sha256: str | None = None) -> None:
    """Verify then install: sha256 and size must match, or the partial file is discarded.
    ``sha256`` is the digest the transport computed while writing ``part``, if it did;
    otherwise the file is read again to hash it."""
    size = part.stat().st_size
    digest = sha256 or sha256_file(part)
    if size != manifest.size_bytes or digest != manifest.sha256:
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"download of {manifest.index_name} v{manifest.version} is corrupt: "
            f"sha256 {digest[:12]}.. size {size}, expected {manifest.sha256[:12]}.. size {manifest.size_bytes}",
            index=manifest.index_name,
            version=manifest.version,
            hint="the previous version keeps serving; the download is retried",
        )
    install(part, target)
    # After the rename: a crash before it leaves the .part writable, to be resumed.
    make_read_only(target)


def is_version(meta: IndexMeta, manifest: Manifest) -> bool:
    """Whether an index file is the manifest's version. The number alone does not say:
    an index deleted and made again under its name counts from 1 again, so a file
    with the same number may be the old index's. The build time (ms) tells them apart."""
    return meta.version == manifest.version and meta.created_at == manifest.created_at


def file_is_version(path: Path, manifest: Manifest) -> bool:
    """A cached file is the manifest's version: its size, number and build time match."""
    if path.stat().st_size != manifest.size_bytes:
        return False
    meta = meta_of(path)
    return meta is not None and is_version(meta, manifest)


def meta_of(path: Path) -> IndexMeta | None:
    """A cached file's meta; None if it is damaged (fetch it again) or gone."""
    try:
        with translating_sqlite_errors(path):
            conn = connect(path, immutable=True)
        try:
            return read_meta(conn, path)
        finally:
            conn.close()
    except IntegrityError:  # CorruptIndexError included
        return None
