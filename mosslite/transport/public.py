"""Public read mode on the client (issue #10): a public index's manifest polled straight
from the object store or the CDN in front of it, not from the service.

The service's manifest answer names a public index's manifest URL
(``"public_manifest"``; service/public.py has the manifest's format).
``PublicManifests`` remembers it per index and ``read`` polls it with
``If-None-Match`` and the ETag of its last answer: a poll with nothing new is a
304 from the store, and the service hears nothing of it. The files it names
are then fetched by their public URLs as a manifest's download links are
(direct.py): Range resume, sha256 checked before install, the stored page patch
(``patch_file``) from version ``patch_from``, else page patches from the page map
and ranged reads.

Invariants:
- No key goes to a public URL: the requests are Direct's, with no Authorization
  header.
- A poll that fails for any reason (unreachable, 403 or 404 once the index went
  private or was deleted, 5xx, a body that is not this index's public manifest)
  raises PublicManifestFailed and forgets the URL: the caller asks the service,
  whose answer names the URL again for as long as the index stays public.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ..errors import InvalidArgumentError, UnavailableError
from ..types import Manifest
from ..wire import parse_public_manifest
from .direct import Direct
from .http_errors import mapping_httpx_errors


class PublicManifestFailed(UnavailableError):
    """A public manifest could not be read: ask the service."""


@dataclass
class Polled:
    """A public manifest's URL, and its last answer: ETag, manifest, the files' URLs
    (the version file, its page map, and the stored patch's base and URL, if any)."""

    url: str
    etag: str | None = None
    answer: tuple[Manifest, str, str, tuple[int, str] | None] | None = None


class PublicManifests:
    def __init__(self, direct: Direct) -> None:
        self._direct = direct
        self._polled: dict[str, Polled] = {}

    def url(self, name: str) -> str | None:
        polled = self._polled.get(name)
        return None if polled is None else polled.url

    def follow(self, name: str, url: str | None) -> None:
        """Poll ``url`` for ``name`` from now on (None: stop), as the service's last
        manifest answer said."""
        if url is None:
            self._polled.pop(name, None)
        elif self.url(name) != url:
            self._polled[name] = Polled(url)

    async def read(self, name: str) -> Manifest:
        """The newest version as the public manifest names it, its files' URLs held for
        the download (Direct). Any failure: PublicManifestFailed, the URL forgotten."""
        polled = self._polled[name]
        try:
            answer = await self._poll(name, polled)
        except (UnavailableError, InvalidArgumentError) as exc:
            self._polled.pop(name, None)
            raise PublicManifestFailed(f"the public manifest of {name!r} failed: {exc}") from exc
        manifest, version_url, pages_url, patch = answer
        self._direct.remember_public(name, manifest, version_url, pages_url, patch)
        return manifest

    async def _poll(self, name: str, polled: Polled) -> tuple[Manifest, str, str, tuple[int, str] | None]:
        headers = {"If-None-Match": polled.etag} if polled.answer is not None and polled.etag else {}
        with mapping_httpx_errors():
            response = await self._direct.client().get(polled.url, headers=headers)
        if response.status_code == 304 and polled.answer is not None:
            return polled.answer
        if response.status_code != 200:
            raise UnavailableError(f"{polled.url} answered {response.status_code}")
        manifest, version_file, page_map, patch = parse_public_manifest(response.content)
        if manifest.index_name != name:
            raise InvalidArgumentError(f"it names index {manifest.index_name!r}")
        base = httpx.URL(polled.url)
        patch_link = None if patch is None else (patch[0], str(base.join(patch[1])))
        polled.answer = (manifest, str(base.join(version_file)), str(base.join(page_map)), patch_link)
        polled.etag = response.headers.get("etag")
        return polled.answer
