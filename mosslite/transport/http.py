"""The client side of ``mosslite serve``: the Transport contract over HTTP with httpx.

Invariants:
- Callers see only ``mosslite.errors``: every request goes through
  ``http_errors.mapping_httpx_errors`` (``_request`` here, ``Downloads._fetch``
  for files).
- Version files and patches download through ``download.Downloads``: resumable,
  hashed as written, on a thread of their own with bulk socket reads. When the
  manifest carried download links (a service storing in S3), they come straight
  from the object store instead (``direct.py``), and through the service only if
  the store refuses them after the manifest was read again.
- A public index's manifest is polled at its public URL (``public.py``) once the
  service named it, conditionally; a poll that fails asks the service, once.
- Names go into URL paths only after ``validate_name``, so a name cannot walk
  to another route (``..``, ``/``), and both transports refuse it alike.
- Nothing is retried here: a lost response to a mutation would otherwise
  submit its job twice. Downloads resume when the caller passes ``offset``.

Example::

    transport = HTTPTransport("http://127.0.0.1:8700", "my-project", "mk_...")
    info = await transport.get_index("faq")
    await transport.aclose()
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from .. import __version__
from ..errors import ClosedError, InvalidArgumentError, MossliteError, UnavailableError
from ..filters import compile_filter
from ..types import (
    MAX_REQUEST_BYTES,
    DocsPage,
    DocumentInfo,
    DownloadLinks,
    IndexInfo,
    Job,
    Manifest,
    MutationOptions,
    MutationResult,
    PushIndexResult,
    Version,
    VersionInfo,
    iter_docs,
)
from ..validation import validate_name
from ..wire import docs_from_json, from_answer, to_dict
from .base import ByteProgress, Transport
from .direct import Direct, Held, LinkRefused
from .download import Downloads
from .download_sockets import download_transport
from .http_errors import json_body, mapping_httpx_errors, raise_for_status
from .public import PublicManifestFailed, PublicManifests

log = logging.getLogger("mosslite.transport")
T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
#: Room left in a request for everything but the documents (field names, brackets).
BODY_MARGIN_BYTES = 4096
JSON_CONTENT = {"Content-Type": "application/json"}


class HTTPTransport(Transport):
    """One ``httpx.AsyncClient`` talking to ``url`` (e.g. ``http://127.0.0.1:8700``) for one project.

    ``transport`` replaces httpx's network transport, e.g. with
    ``httpx.ASGITransport(app=create_app(service))`` to test in-process.
    """

    def __init__(
        self,
        url: str,
        project_id: str,
        project_key: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.project_id = validate_name(project_id, what="project")
        self.url = _service_url(url)
        self.source = source_folder(self.url)
        #: The server's request limit: larger batches of documents go as uploads.
        self.max_request_bytes = max_request_bytes
        settings: dict[str, Any] = {
            "base_url": f"{self.url}/v1/projects/{_segment(project_id)}",
            "headers": {"Authorization": f"Bearer {project_key}", "User-Agent": f"mosslite/{__version__}"},
            "timeout": timeout_s,
        }
        self._client = httpx.AsyncClient(**settings, transport=transport)
        # Version files and patches go through a blocking client with bulk socket reads
        # on a worker thread (download_sockets.py says why); an injected transport is
        # async, so then they stream on the event loop like everything else.
        bulk = None if transport is not None else httpx.Client(**settings, transport=download_transport())
        self._downloads = Downloads(self._client, bulk, self._check_open)
        self._direct = Direct(timeout_s, self._check_open)
        self._public = PublicManifests(self._direct)

    async def aclose(self) -> None:
        """Close; downloads still running are stopped first (they raise ClosedError)."""
        await self._client.aclose()
        await self._downloads.aclose()
        await self._direct.aclose()

    # -- mutations ---------------------------------------------------------------

    async def create_index(self, name: str, docs: Iterable[DocumentInfo], model_id: str | None) -> MutationResult:
        single = ("/indexes", {"name": validate_name(name), "model_id": model_id})
        upload = {"index": name, "kind": "create_index", "model_id": model_id}
        return await self._send_docs(docs, single, upload)

    async def add_docs(self, name: str, docs: Iterable[DocumentInfo], options: MutationOptions) -> MutationResult:
        options_json = {"upsert": options.upsert}
        single = (f"{_index_path(name)}/docs", {"options": options_json})
        return await self._send_docs(docs, single, {"index": name, "kind": "add_docs", "options": options_json})

    async def _send_docs(
        self, docs: Iterable[DocumentInfo], single: tuple[str, dict[str, Any]], upload: dict[str, Any]
    ) -> MutationResult:
        """Send a batch in one request when it fits ``max_request_bytes``, else as an
        upload of several (open, add each part, commit: one job). The documents are
        read and encoded part by part on a worker thread, so a generator of any size
        streams through, and a refused part ends the upload on the server too."""
        parts = _json_parts(iter_docs(docs), self.max_request_bytes - BODY_MARGIN_BYTES)
        first = await asyncio.to_thread(next, parts, [])
        second = await asyncio.to_thread(next, parts, None)
        if second is None:
            path, fields = single
            body = await self._request("POST", path, raw=_json_body(fields, first))
            return from_answer(MutationResult, body)
        opened = await self._request("POST", "/uploads", upload)
        path = f"/uploads/{_segment(opened['upload_id'])}"
        try:
            part: list[bytes] | None = first
            while part is not None:
                await self._request("POST", f"{path}/docs", raw=_json_body({}, part))
                part, second = second, None
                if part is None:
                    part = await asyncio.to_thread(next, parts, None)
            return from_answer(MutationResult, await self._request("POST", f"{path}/commit"))
        except BaseException:
            with contextlib.suppress(MossliteError):  # (already gone when the server refused a part)
                await asyncio.shield(self._request("DELETE", path))
            raise

    async def delete_docs(self, name: str, ids: Sequence[str]) -> MutationResult:
        body = {"ids": _id_list(ids)}
        return from_answer(MutationResult, await self._request("POST", f"{_index_path(name)}/docs/delete", body))

    async def delete_index(self, name: str) -> None:
        await self._request("DELETE", _index_path(name))

    async def set_public(self, name: str, public: bool) -> IndexInfo:
        return from_answer(IndexInfo, await self._request("PUT", f"{_index_path(name)}/public", {"public": public}))

    # -- reads -------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job:
        return from_answer(Job, await self._request("GET", f"/jobs/{_segment(job_id)}"))

    async def get_index(self, name: str) -> IndexInfo:
        return from_answer(IndexInfo, await self._request("GET", _index_path(name)))

    async def list_indexes(self) -> list[IndexInfo]:
        body = await self._request("GET", "/indexes")
        return [from_answer(IndexInfo, item) for item in body["indexes"]]

    async def get_docs_page(
        self,
        name: str,
        ids: Sequence[str] | None,
        filter: dict[str, Any] | None,
        include_embedding: bool = True,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> DocsPage:
        # Checked as the service checks it, before it is encoded: a filter JSON cannot
        # carry (an int of 5,000 digits) raised ValueError here, not InvalidFilterError.
        compile_filter(filter)
        body = {
            "ids": None if ids is None else _id_list(ids),
            "filter": filter,
            "include_embedding": include_embedding,
            "limit": limit,
            "cursor": cursor,
        }
        answer = await self._request("POST", f"{_index_path(name)}/docs/get", body)
        return DocsPage(docs=docs_from_json(answer["docs"], answer=True), next_cursor=answer.get("next_cursor"))

    async def manifest(self, name: str) -> Manifest:
        if self._public.url(name) is not None:
            try:
                return await self._public.read(name)
            except PublicManifestFailed as exc:
                log.warning("%s: %s; asking the service", name, exc)
        return await self._service_manifest(name)

    async def _service_manifest(self, name: str) -> Manifest:
        body = await self._request("GET", f"{_index_path(name)}/manifest")
        links = body.pop("download", None) if isinstance(body, dict) else None
        public = body.pop("public_manifest", None) if isinstance(body, dict) else None
        manifest = from_answer(Manifest, body)
        self._direct.remember(name, manifest, None if links is None else from_answer(DownloadLinks, links))
        self._public.follow(name, public if isinstance(public, str) else None)
        return manifest

    async def list_versions(self, name: str) -> list[VersionInfo]:
        body = await self._request("GET", f"{_index_path(name)}/versions")
        return [from_answer(VersionInfo, item) for item in body["versions"]]

    async def download(
        self, name: str, version: int, dest: Path, *, offset: int = 0, progress: ByteProgress | None = None
    ) -> str | None:
        path = f"{_index_path(name)}/versions/{int(Version(version))}"
        try:
            return await self._by_link(name, version, lambda held: self._direct.version(held, dest, offset, progress))
        except _NoLink:
            pass
        except UnavailableError as exc:  # the store is out of reach: the service reads it for us
            log.warning("%s v%d: the object store failed (%s); downloading through the service", name, version, exc)
            offset = dest.stat().st_size if offset and dest.exists() else 0  # (what it wrote follows offset)
        return await self._downloads.version(path, dest, offset=offset, progress=progress)

    async def download_patch(
        self, name: str, version: int, base_version: int, dest: Path, *, base_path: Path | None = None
    ) -> bool:
        if base_path is not None:
            try:
                patch = partial(self._direct.patch, base=base_path, base_version=base_version, dest=dest)
                return await self._by_link(name, version, patch)
            except _NoLink:
                pass
            except UnavailableError as exc:
                log.warning("%s v%d: the object store failed (%s); patching through the service", name, version, exc)
        path = f"{_index_path(name)}/versions/{int(Version(version))}/patch"
        return await self._downloads.patch(path, {"from": str(int(Version(base_version)))}, dest)

    async def _by_link(self, name: str, version: int, fetch: Callable[[Held], Awaitable[T]]) -> T:
        """``fetch`` with the download links of ``version`` from the last manifest; expired,
        or refused by the store (403 once expired), those of the manifest read again,
        once. _NoLink when there are none for that version, or they were refused twice."""
        held, read_again = self._direct.links(name, version), False
        if held is None and self._direct.expired(name, version):
            await self._service_manifest(name)
            held, read_again = self._direct.links(name, version), True
        while held is not None:
            try:
                return await fetch(held)
            except LinkRefused as exc:
                if read_again:
                    log.warning("%s v%d: %s, again; downloading through the service", name, version, exc)
                    break
                self._direct.forget(name)
                await self._service_manifest(name)
                held, read_again = self._direct.links(name, version), True
        raise _NoLink

    # -- session pushes (issue #5) ---------------------------------------------------

    async def push(
        self, name: str, diff_id: str, changeset: bytes, model_id: str | None, dimension: int | None
    ) -> PushIndexResult:
        body = {
            "diff_id": diff_id,
            "changeset": base64.b64encode(bytes(changeset)).decode("ascii"),
            "model_id": model_id,
            "dimension": dimension,
        }
        return from_answer(PushIndexResult, await self._request("POST", f"{_index_path(name)}/push", body))

    async def get_push(self, name: str, diff_id: str) -> PushIndexResult:
        path = f"{_index_path(name)}/pushes/{_segment(diff_id)}"
        return from_answer(PushIndexResult, await self._request("GET", path))

    # -- the one boundary to httpx -------------------------------------------------

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, raw: bytes | None = None
    ) -> Any:
        """The decoded JSON answer (None for 204); error answers raise typed errors.
        ``raw``: a JSON body already encoded."""
        self._check_open()
        with mapping_httpx_errors():
            if raw is not None:
                response = await self._client.request(method, path, content=raw, headers=JSON_CONTENT)
            else:
                response = await self._client.request(method, path, json=body)
        raise_for_status(response)
        if response.status_code == 204 or not response.content:
            return None
        return json_body(response)

    def _check_open(self) -> None:
        if self._client.is_closed:
            raise ClosedError("this HTTPTransport was closed", hint="create a new client")


# -- paths, bodies and downloads --------------------------------------------------


class _NoLink(Exception):
    """No download link to use: fetch through the service."""



def _service_url(url: object) -> str:
    """``url`` without a trailing slash, if it is an http(s) URL with a host. Caught
    here: "localhost:8700" parses as scheme "localhost", and failed only at the first
    request, as "service unreachable, retry later"."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else None
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidArgumentError(
            f"url must be an http:// or https:// URL with a host, got {url!r}", hint="e.g. http://127.0.0.1:8700"
        )
    return str(url).rstrip("/")


def source_folder(url: str) -> str:
    """The cache folder of the service at ``url``: its host and port, readable, then a
    hash of the whole URL (two services on one host and port differ by path)."""
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    host = re.sub(r"[^A-Za-z0-9.-]", "_", parsed.host)
    return f"{host}_{port}-{hashlib.sha256(url.encode('utf-8')).hexdigest()[:8]}"


def _segment(value: str) -> str:
    """One URL path segment, escaped so it stays one ("/" escaped; "." and ".." too,
    which URL normalisation would otherwise resolve)."""
    segment = quote(value, safe="")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


def _index_path(name: str) -> str:
    return f"/indexes/{_segment(validate_name(name))}"


def _json_parts(docs: Iterator[DocumentInfo], limit: int) -> Iterator[list[bytes]]:
    """The documents as JSON, in lists whose encodings add up to at most ``limit`` bytes
    (a document over the limit on its own goes alone, and the server refuses it)."""
    part: list[bytes] = []
    size = 0
    for doc in docs:
        encoded = json.dumps(to_dict(doc)).encode("utf-8")
        if part and size + len(encoded) + 1 > limit:
            yield part
            part, size = [], 0
        part.append(encoded)
        size += len(encoded) + 1
    if part:
        yield part


def _json_body(fields: dict[str, Any], docs: list[bytes]) -> bytes:
    """``fields`` plus ``"docs": [...]`` from the documents' encodings, as one JSON object."""
    head = json.dumps(fields)[:-1].encode("utf-8")  # '{...' without its closing brace
    return head + (b", " if fields else b"") + b'"docs": [' + b", ".join(docs) + b"]}"


def _id_list(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str):
        raise InvalidArgumentError("ids must be a list of strings, not one string")
    return list(ids)
