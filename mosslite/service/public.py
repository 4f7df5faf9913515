"""Public read mode (issue #10): an index whose newest versions, and a manifest naming
them, anyone can read from the object store or a CDN in front of it, so devices
poll and download without the service, and without a key.

The operator makes one prefix of the storage readable without credentials,
``_public/`` (layout.py), and tells the service the URL under which storage keys
are readable (``mosslite serve --public-url``: a CDN in front of the bucket, or the
bucket's own URL; storage key K is at ``<public-url>/K``). ``Service.set_public``
then makes an index public. Its public objects:

    _public/<project>/<index>/manifest.json             the public manifest
    _public/<project>/<index>/0000000003.sqlite         copies of the version files kept
    _public/<project>/<index>/0000000003.sqlite.pages   and of their page maps
    _public/<project>/<index>/0000000003.sqlite.from-2.patch   and page patches (build.py)

The public manifest, at ``<public-url>/_public/<project>/<index>/manifest.json``, is a
JSON object (format 1; ``wire.public_manifest_json`` writes it and
``wire.parse_public_manifest`` reads it)::

    {"format": 1, "index_name": "faq", "version": 3, "sha256": "<64 hex>",
     "size_bytes": 827392, "doc_count": 400, "model_id": "moss-minilm", "dimension": 384,
     "created_at": "2026-05-01T12:00:00.000Z",
     "version_file": "0000000003.sqlite", "page_map": "0000000003.sqlite.pages",
     "patch_from": 2, "patch_file": "0000000003.sqlite.from-2.patch"}

``version_file``, ``page_map`` and ``patch_file`` are relative to the manifest's own
URL (with httpx: ``httpx.URL(manifest_url).join(body["version_file"])``);
``patch_from`` and ``patch_file`` are there only when the service stored a page
patch from the version before (when one is worth it). A device polls the manifest
with ``If-None-Match`` and the ETag of its last answer (304: nothing new), downloads
the version file (Range resumes it; check its sha256 before use), and patches: a
device holding version ``patch_from`` GETs ``patch_file`` (one request), any other
with the page map and ranged GETs of the pages that changed (index/page_patch.py);
either way it checks the patched file's sha256 before use. The
manifest is stored with ``Cache-Control: no-cache``, so a CDN asks the bucket again
(conditionally) before it answers with it, or with a max-age the service was
given (``manifest_cache_control``).

Invariants:
- The manifest is written last, in one PUT, after the copies of the files it
  names: it never names a file not readable yet. Copies are made in place (a hard
  link, S3's CopyObject) and kept as storage keeps the originals (``keep_versions``),
  so a device still downloading the version before finds it.
- Private wins. ``set_public(False)`` records it in the catalog first, then deletes
  the manifest, then every copy; a mirror after a publish reads the flag under the
  same lock, so a publish racing a withdrawal (or a deletion) leaves nothing public.
- Writes of one index's public objects hold a lock of their own across processes
  (an flock under ``<locks>/_public/``, locks.py), not the build's: the manifest
  never goes back to an older version, and marking an index public never waits
  for a build.
- A mirror that failed (the store out of reach after a publish, a crash between
  publishing and mirroring) is made again by the next publish, or at the next
  start (``catch_up``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConflictError, IndexNotFoundError, InvalidArgumentError, MossliteError
from ..types import IndexInfo
from ..validation import validate_name
from ..wire import parse_public_manifest, public_manifest_json
from .catalog import Catalog, VersionRecord
from .layout import PUBLIC_ROOT, manifest_key, pages_key, patch_key, public_key, stored_versions
from .locks import index_lock, remove_index_lock
from .patch_store import page_map
from .storage import Storage

log = logging.getLogger("mosslite.service")

def manifest_cache_control(max_age_s: int) -> str:
    """The manifest's Cache-Control: ``no-cache`` (a CDN asks the bucket again, with
    a conditional GET, before each answer), or a max-age for which a CDN answers by
    itself. That age is how much later devices may see a new version; it is what
    keeps a million devices' polls off the bucket (docs/scaling.md)."""
    return f"public, max-age={max_age_s}" if max_age_s else "no-cache"


class PublicArea:
    """The public objects of every public index, and whether an index is public.
    ``base_url``: where storage keys are readable without credentials (None: nowhere
    said, so no index can be made public)."""

    def __init__(
        self,
        catalog: Catalog,
        storage: Storage,
        lock_dir: Path,
        *,
        keep_versions: int,
        base_url: str | None,
        manifest_max_age_s: int = 0,
    ) -> None:
        self.catalog = catalog
        self.storage = storage
        self.lock_dir = lock_dir / PUBLIC_ROOT
        self.keep_versions = keep_versions
        self.base_url = public_base_url(base_url)
        self.manifest_cache_control = manifest_cache_control(manifest_max_age_s)

    # -- what devices are told ---------------------------------------------------------

    def manifest_url(self, project_id: str, name: str) -> str | None:
        """The public manifest's URL if the index is public and the URL is known."""
        if self.base_url is None or not self._is_public(project_id, name):
            return None
        return self._url(project_id, name)

    def describe(self, project_id: str, info: IndexInfo) -> IndexInfo:
        """``info`` with its public manifest's URL, if it is public."""
        if not info.public or self.base_url is None:
            return info
        return replace(info, public_manifest=self._url(project_id, info.name))

    def _url(self, project_id: str, name: str) -> str:
        return f"{self.base_url}/{public_key(manifest_key(project_id, name))}"

    def _is_public(self, project_id: str, name: str) -> bool:
        try:
            return self.catalog.get_index(project_id, name).public
        except IndexNotFoundError:
            return False

    # -- changes ---------------------------------------------------------------------

    def set_public(self, project_id: str, name: str, public: object) -> IndexInfo:
        """Make the index public (its newest version is copied and its manifest written
        before this returns) or private (its manifest and copies deleted)."""
        validate_name(name)
        if not isinstance(public, bool):
            raise InvalidArgumentError(f"public must be true or false, got {type(public).__name__}", index=name)
        if public and self.base_url is None:
            raise ConflictError(
                f"index {name!r} cannot be public: this service has no public URL",
                index=name,
                hint="start it with mosslite serve --public-url URL (where the bucket's _public/ prefix is "
                "readable without credentials); README: 'Public read mode'",
            )
        info = self.catalog.set_public(project_id, name, public)
        if public:
            self.mirror(project_id, name)
        else:
            self.withdraw(project_id, name)
        return self.describe(project_id, info)

    def mirror(self, project_id: str, name: str) -> None:
        """Bring a public index's public objects to its newest version (after each
        publish); nothing for a private index or one with no version yet."""
        with index_lock(self.lock_dir, (project_id, name)):
            if not self._is_public(project_id, name):
                return
            record = self.catalog.latest_version(project_id, name)
            if record is None or self._names(project_id, name, record):
                return
            key = record.storage_key
            page_map(self.storage, record)  # (stored beside its file since #4; made if missing)
            self.storage.copy(key, public_key(key))
            self.storage.copy(pages_key(key), public_key(pages_key(key)))
            file_name = key.rsplit("/", 1)[-1]
            body = public_manifest_json(
                record.manifest, file_name, pages_key(file_name), self._copy_patch(key, record.manifest.version - 1)
            )
            manifest = public_key(manifest_key(project_id, name))
            self.storage.put_bytes(manifest, body, cache_control=self.manifest_cache_control)
            for old, version, _ in stored_versions(self.storage, project_id, name, public=True):
                if version <= record.manifest.version - self.keep_versions:
                    self.storage.delete(old)

    def _copy_patch(self, key: str, base: int) -> tuple[int, str] | None:
        """Copy the page patch stored beside ``key`` (from version ``base``), if there
        is one: (base, its file name) for the manifest."""
        if base < 1:
            return None
        patch = patch_key(key, base)
        try:
            self.storage.copy(patch, public_key(patch))
        except FileNotFoundError:  # none was worth storing (or published before patches were stored)
            return None
        return base, patch.rsplit("/", 1)[-1]

    def _names(self, project_id: str, name: str, record: VersionRecord) -> bool:
        """Whether the public manifest names ``record`` already."""
        try:
            held, *_ = parse_public_manifest(self.storage.read_bytes(public_key(manifest_key(project_id, name))))
        except (FileNotFoundError, InvalidArgumentError):
            return False
        return held == record.manifest

    def withdraw(self, project_id: str, name: str) -> None:
        """Delete the public manifest, then every public copy of the index."""
        with index_lock(self.lock_dir, (project_id, name)):
            self.storage.delete(public_key(manifest_key(project_id, name)))
            for key in self.storage.list(public_key(f"{project_id}/{name}/")):
                self.storage.delete(key)

    def remove_index(self, project_id: str, name: str) -> None:
        """A deleted index: nothing of it stays public, and its lock file goes."""
        self.withdraw(project_id, name)
        remove_index_lock(self.lock_dir, (project_id, name))

    def catch_up(self) -> None:
        """At start: mirror every public index whose manifest is behind (a crash
        between a publish and its mirror, a store that failed then)."""
        for project_id, name in self.catalog.public_indexes():
            try:
                self.mirror(project_id, name)
            except (MossliteError, OSError) as exc:
                log.warning("%s/%s: its public copy is behind and could not be made: %s", project_id, name, exc)


def public_base_url(url: object) -> str | None:
    """``url`` without a trailing slash, if it is an http(s) URL with a host (None stays None)."""
    if url is None:
        return None
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise InvalidArgumentError(
            f"the public URL must be an http:// or https:// URL with a host, and no query, got {url!r}",
            hint="the URL under which storage keys are readable without credentials, e.g. "
            "https://cdn.example.com/mosslite",
        )
    return url.rstrip("/")
