"""Version files and page patches straight from the object store, by the links a
manifest carries (issue #10): the service answers the manifest and nothing else.

``mosslite serve --storage s3://...`` answers a manifest with presigned URLs of
the version file, its page map and the patch from the version before
(service/links.py). With them ``Direct`` gets:

- a version file: a GET of its link, resumed with Range like any download
  (download.py) and hashed as it is written; the caller verifies it as always;
- a page patch, from the version before when this device holds it: the patch
  the service stored at publish, by its link (``patch_url``), in one request;
- a page patch from any other version (or when that object is refused): the new
  version's page map, by its link; the map of the base file this device holds,
  computed here (no bytes); then one ranged GET per run of changed pages (about
  20 requests for 10 changed documents), written in the very format the
  service's patch route sends (index/page_patch.py).

Either patch is applied and verified by the caller alike (its sha256 against the
manifest's before install).

Invariants:
- Links are kept per index from its last manifest, used for that version only,
  and not within EXPIRY_MARGIN_S of their expiry (``Held.use_until``; then the
  manifest is read again for new ones). A public index's files (public.py) are
  held alike, by public URLs that do not expire. A transport that read no
  manifest with links fetches through the service, and reads no manifest for
  links. A link the store refuses (403 once expired, 404, 5xx) raises
  LinkRefused; HTTPTransport then reads the service's manifest again, once, and
  retries with the new links, and failing that fetches through the service as
  before.
- The project key never goes to the store: these clients send no Authorization
  header; a link is its own credential, for one object.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from .. import __version__
from ..errors import CorruptIndexError, UnavailableError
from ..index.page_patch import PageMap, patch_chunks
from ..types import DownloadLinks, Manifest
from .base import ByteProgress
from .download import RAW_BYTES, Downloads
from .download_sockets import download_transport
from .http_errors import mapping_httpx_errors

log = logging.getLogger("mosslite.transport")

#: Links this close to their expiry are not used: the manifest is read again.
EXPIRY_MARGIN_S = 30


class LinkRefused(UnavailableError):
    """The object store refused a download link (expired, or the object is gone)."""


def refused(response: httpx.Response) -> None:
    raise LinkRefused(f"the object store answered {response.status_code} to a download link")


@dataclass(frozen=True)
class Held:
    """The links of one version, as its manifest named them, and until when to use them:
    EXPIRY_MARGIN_S before they expire, or a quarter of their time left if that is less
    (public URLs: for ever)."""

    version: int
    sha256: str
    version_url: str
    pages_url: str
    use_until: float
    #: The stored patch from version ``patch_from`` to this one, if the manifest named one.
    patch_url: str | None = None
    patch_from: int | None = None


class Direct:
    """The links each index's last manifest carried, and the clients that use them
    (made on first use: a transport whose service sends no links never makes them)."""

    def __init__(self, timeout_s: float, check_open: Callable[[], None]) -> None:
        self._timeout_s = timeout_s
        self._check_open = check_open
        self._held: dict[str, Held | None] = {}
        self._clients: tuple[httpx.AsyncClient, httpx.Client] | None = None
        self._downloads: Downloads | None = None

    async def aclose(self) -> None:
        if self._clients is not None and self._downloads is not None:
            await self._clients[0].aclose()
            await self._downloads.aclose()  # (stops its downloads, closes the bulk client)

    # -- the links held --------------------------------------------------------------

    def remember(self, name: str, manifest: Manifest, links: DownloadLinks | None) -> None:
        if links is None:
            self._held[name] = None
            return
        margin = min(EXPIRY_MARGIN_S, max(0.0, links.expires_at - time.time()) / 4)
        use_until = links.expires_at - margin
        self._held[name] = Held(
            manifest.version,
            manifest.sha256,
            links.version_url,
            links.pages_url,
            use_until,
            links.patch_url,
            links.patch_from,
        )

    def remember_public(
        self,
        name: str,
        manifest: Manifest,
        version_url: str,
        pages_url: str,
        patch: tuple[int, str] | None = None,
    ) -> None:
        """The public URLs of a public index's version (public.py): they never expire.
        ``patch``: the version its stored patch starts from, and its URL."""
        patch_from, patch_url = patch if patch is not None else (None, None)
        self._held[name] = Held(
            manifest.version, manifest.sha256, version_url, pages_url, math.inf, patch_url, patch_from
        )

    def forget(self, name: str) -> None:
        self._held.pop(name, None)

    def links(self, name: str, version: int) -> Held | None:
        """The links of ``version`` that may still be used, if its manifest was the last read."""
        held = self._held.get(name)
        if held is None or held.version != version or self._expiring(held):
            return None
        return held

    def expired(self, name: str, version: int) -> bool:
        """Whether the links held for ``version`` are too old to use: a manifest read
        again brings new ones. (None held, or another version's: reading it brings none.)"""
        held = self._held.get(name)
        return held is not None and held.version == version and self._expiring(held)

    @staticmethod
    def _expiring(held: Held) -> bool:
        return time.time() >= held.use_until

    # -- downloads ---------------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        """The client for small requests to the store (a page map, a public manifest)."""
        return self._clients_made()[0]

    def _clients_made(self) -> tuple[httpx.AsyncClient, httpx.Client]:
        if self._clients is None:
            settings = {"headers": {"User-Agent": f"mosslite/{__version__}"}, "timeout": self._timeout_s}
            client = httpx.AsyncClient(**settings)
            bulk = httpx.Client(**settings, transport=download_transport())
            self._clients = (client, bulk)
            self._downloads = Downloads(client, bulk, self._check_open, refused=refused)
        return self._clients

    async def version(self, held: Held, dest: Path, offset: int, progress: ByteProgress | None) -> str | None:
        """The version file into ``dest`` from ``offset`` (Transport.download)."""
        self._clients_made()
        assert self._downloads is not None
        return await self._downloads.version(held.version_url, dest, offset=offset, progress=progress)

    async def patch(self, held: Held, base: Path, base_version: int, dest: Path) -> bool:
        """A page patch from the file ``base`` (version ``base_version``) to the linked
        version into ``dest``: the stored one if it starts from ``base_version``, else
        (or if the store refuses it) one assembled from the page map; False when none
        is worth fetching (or the stored map is not this version's)."""
        client, bulk = self._clients_made()
        if held.patch_url is not None and held.patch_from == base_version:
            assert self._downloads is not None
            try:
                return await self._downloads.patch(held.patch_url, None, dest)
            except LinkRefused as exc:  # deleted, or expired: the page map's link says which
                log.info("the stored patch v%d -> v%d: %s; reading its pages", base_version, held.version, exc)
        self._check_open()
        with mapping_httpx_errors():
            answer = await client.get(held.pages_url, headers=RAW_BYTES)
        if answer.status_code != 200:
            refused(answer)
        try:
            target = PageMap.from_bytes(answer.content)
        except CorruptIndexError:
            return False
        if target.sha256 != held.sha256:
            return False
        pages = target.changed_since(await asyncio.to_thread(PageMap.of_file, base))
        if not target.worth_patching(pages):
            return False
        await asyncio.to_thread(_write_patch, bulk, held.version_url, target, pages, dest)
        return True


def _write_patch(bulk: httpx.Client, url: str, target: PageMap, pages: np.ndarray, dest: Path) -> None:
    """``pages`` of the version at ``url``, read with one ranged GET per run, as a patch."""

    def read(start: int, end: int) -> bytes:
        with mapping_httpx_errors():
            answer = bulk.get(url, headers={**RAW_BYTES, "Range": f"bytes={start}-{end - 1}"})
        if answer.status_code != 206:
            refused(answer)
        return answer.content

    with open(dest, "wb") as out:
        for chunk in patch_chunks(target, pages, read):
            out.write(chunk)
