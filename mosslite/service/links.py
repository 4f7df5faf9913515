"""Download links: the manifest's answer names presigned URLs of the version file, its
page map and the page patch from the version before, so a client fetches them
straight from the object store and the service stays off the download path (issue #10).

Invariants:
- A link opens one object (the version file, its page map, its patch) for GET, until
  it expires ``lifetime_s`` after it was made. Links are made only for the version
  the manifest names, under the project whose key the request proved, and a
  storage key begins with its project (layout.py): a link of project A never
  opens B's objects.
- Making a link is an HMAC computed here: no request to the store, no catalog
  write, so a manifest poll stays cheap. A storage that cannot sign (a folder)
  makes none, and clients download through the service as before. So the patch
  link of a version after the first is made without asking whether its patch was
  stored (build.py stores it before publishing, when one is worth it): where none
  was, the store answers 404 and the client assembles one from the page map.
- The ETag of an answer with links names the version's sha256 and the *window*
  (``lifetime_s / WINDOWS``) its links were made in. A client revalidating a
  cached answer gets a 304 only within that window, so the links it holds have at
  least ``1 - 1 / WINDOWS`` of their lifetime left, and ``Cache-Control: private,
  max-age`` lets no cache keep the answer past the window's end. The links differ
  from one answer to the next within a window, so the ETag is weak.
- A public index's answer also names its public manifest (public.py), and its
  ETag says so: an index made public or private again is a new answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidArgumentError
from ..types import DEFAULT_LINK_LIFETIME_S, DownloadLinks, Manifest
from .catalog import VersionRecord
from .layout import pages_key, patch_key
from .storage import Storage

#: Windows per lifetime: a link handed out (or revalidated) has 2/3 of its lifetime left.
WINDOWS = 3


@dataclass(frozen=True, kw_only=True)
class ManifestAnswer:
    """The newest version, its download links (None without a store that signs), the
    URL of its public manifest (None unless public), the ETag's value (unquoted) and
    how long the answer may be reused (None: revalidate)."""

    manifest: Manifest
    links: DownloadLinks | None
    etag: str
    max_age_s: int | None
    public_manifest: str | None = None


class Links:
    def __init__(self, storage: Storage, lifetime_s: int = DEFAULT_LINK_LIFETIME_S) -> None:
        if isinstance(lifetime_s, bool) or not isinstance(lifetime_s, int) or lifetime_s < WINDOWS:
            raise InvalidArgumentError(f"link_lifetime_s must be an integer >= {WINDOWS}, got {lifetime_s!r}")
        self.storage = storage
        self.lifetime_s = lifetime_s

    def answer(self, record: VersionRecord, now: float, *, public_manifest: str | None = None) -> ManifestAnswer:
        """What the manifest route answers for ``record`` at Unix time ``now``
        (``public_manifest``: the URL of a public index's manifest)."""
        version_url = self.storage.signed_url(record.storage_key, self.lifetime_s)
        pages_url = self.storage.signed_url(pages_key(record.storage_key), self.lifetime_s)
        tag = record.manifest.sha256 + (".public" if public_manifest else "")
        common = {"manifest": record.manifest, "public_manifest": public_manifest}
        if version_url is None or pages_url is None:
            return ManifestAnswer(**common, links=None, etag=tag, max_age_s=None)
        window_s = self.lifetime_s / WINDOWS
        window = int(now // window_s)
        base = record.manifest.version - 1
        patch_url = self.storage.signed_url(patch_key(record.storage_key, base), self.lifetime_s) if base else None
        links = DownloadLinks(
            version_url=version_url,
            pages_url=pages_url,
            expires_at=int(now) + self.lifetime_s,
            patch_url=patch_url,
            patch_from=base if patch_url is not None else None,
        )
        max_age_s = max(0, int((window + 1) * window_s - now))
        return ManifestAnswer(**common, links=links, etag=f"{tag}.{window}", max_age_s=max_age_s)
