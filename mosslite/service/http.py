"""The service over HTTP: a thin Starlette app around one ``Service``.

Each endpoint authenticates, parses and checks the body's shape (http_input.py),
calls the (synchronous) service on a worker thread, and serialises the answer
with ``mosslite.wire``. Everything else (names, documents, filters, conflicts) is
the service's job, so both transports refuse the same input with the same
error. The JSON shapes are described in ``schemas/wire/``.

Invariants:
- The app calls only ``Service`` methods: what the in-process transport can
  do, and no more.
- Errors cross the wire as ``{"error": MossliteError.to_dict()}`` with a
  status chosen by class (``STATUS_BY_ERROR``), translated at one boundary
  (``error_response``, around every endpoint); an unexpected exception is
  logged and answered 500 ``internal`` without its details.
- A key of project B on project A's path is answered 404 (not 401), so a key
  cannot be used to learn which projects exist.
- A request body is never read past ``max_request_bytes``, and numbers from
  the client are checked as text before ``int()`` sees them (http_input.py).
- ``GET /v1/openapi.json`` (no key) describes every route: ``openapi.py``
  assembles it from this route table and ``schemas/wire/``. ``GET /docs`` is
  that document as a page for people (``api_docs.py``), and ``GET /`` points
  to both (issue #12).
- A refused key (401) is logged as a warning with its reason, beside the
  access log's line for the request.
- The manifest's answer names, for storage that signs URLs (S3), links to fetch
  the version straight from the store (links.py says how long they work and
  what its ETag covers); the service then answers only manifests. A public
  index's answer names its public manifest too (public.py): devices then poll
  that, and the service answers nothing of theirs.
- Version files are immutable, so their sha256 is a strong ETag; downloads
  honour one ``Range: bytes=a-b`` (206) and resume by appending. A client that
  holds version m asks ``.../versions/{n}/patch?from=m`` for only the pages
  that changed (format in ``index/page_patch.py``).

Example::

    app = create_app(Service(Path("/srv/mosslite")))
    uvicorn.run(app, host="127.0.0.1", port=8700)
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import __version__
from ..errors import (
    ConflictError,
    IndexNotFoundError,
    IntegrityError,
    InvalidArgumentError,
    MossliteError,
    NotFoundError,
    PayloadTooLargeError,
    UnauthorizedError,
    UnavailableError,
)
from ..types import MAX_REQUEST_BYTES
from ..wire import PATCH_MEDIA_TYPE, SQLITE_MEDIA_TYPE, docs_from_json, docs_to_json, to_dict
from .core import Service
from .http_input import (
    etag_matches,
    id_list,
    mutation_options,
    optional,
    parse_range,
    read_json,
    version_number,
    version_param,
)
from .api_docs import docs_page
from .openapi import openapi_document, openapi_json

log = logging.getLogger("mosslite.service.http")


#: Most specific class first; any other MossliteError is a 400.
STATUS_BY_ERROR: tuple[tuple[type[MossliteError], int], ...] = (
    (PayloadTooLargeError, 413),
    (InvalidArgumentError, 400),
    (UnauthorizedError, 401),
    (NotFoundError, 404),
    (ConflictError, 409),
    (UnavailableError, 503),
    (IntegrityError, 500),
)


Handler = Callable[[Request, str], Awaitable[Response]]


def create_app(service: Service, *, max_request_bytes: int = MAX_REQUEST_BYTES) -> Starlette:
    """The ASGI app serving ``service``; the caller owns (and closes) the service."""

    def route(path: str, handler: Handler, method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                project = await _authenticate(service, request)
                return await handler(request, project)
            except Exception as exc:  # the one boundary: every failure leaves as an error body
                if isinstance(exc, UnauthorizedError):  # the access log shows the 401; this, why
                    where = _loggable(f"{request.method} {request.url.path} from {_client(request)}")
                    log.warning("401 %s: %s", where, _loggable(exc.message))
                return error_response(exc)

        return Route(path, endpoint, methods=[method])

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def openapi(request: Request) -> Response:
        document = await run_in_threadpool(openapi_json, routes)  # built on first use, then cached
        return Response(document, media_type="application/json")

    async def root(request: Request) -> Response:
        return JSONResponse(
            {"name": "mosslite", "version": __version__, "docs": "/docs", "openapi": "/v1/openapi.json", "health": "/v1/health"}
        )

    page: list[str] = []  # rendered on first use

    async def docs(request: Request) -> Response:
        if not page:
            page.append(await run_in_threadpool(lambda: docs_page(openapi_document(routes))))
        return HTMLResponse(page[0])

    async def create_index(request: Request, project: str) -> Response:
        body = await read_json(request, max_request_bytes, required={"name", "docs"}, optional={"model_id"})
        docs = await run_in_threadpool(docs_from_json, body["docs"])
        model_id = optional(body, "model_id", str)
        result = await run_in_threadpool(service.create_index, project, body["name"], docs, model_id)
        return JSONResponse(to_dict(result), status_code=202)

    async def add_docs(request: Request, project: str) -> Response:
        body = await read_json(request, max_request_bytes, required={"docs"}, optional={"options"})
        docs = await run_in_threadpool(docs_from_json, body["docs"])
        options = mutation_options(body.get("options"))
        name = request.path_params["name"]
        result = await run_in_threadpool(service.add_docs, project, name, docs, options)
        return JSONResponse(to_dict(result), status_code=202)

    async def delete_docs(request: Request, project: str) -> Response:
        body = await read_json(request, max_request_bytes, required={"ids"})
        ids = id_list(body["ids"])
        result = await run_in_threadpool(service.delete_docs, project, request.path_params["name"], ids)
        return JSONResponse(to_dict(result), status_code=202)

    async def get_docs(request: Request, project: str) -> Response:
        body = await read_json(
            request, max_request_bytes, optional={"ids", "filter", "include_embedding", "limit", "cursor"}
        )
        ids = None if body.get("ids") is None else id_list(body["ids"])
        filter = optional(body, "filter", dict)
        include_embedding = optional(body, "include_embedding", bool) is not False  # (default: included)
        limit, cursor = body.get("limit"), optional(body, "cursor", str)
        name = request.path_params["name"]
        page = await run_in_threadpool(
            lambda: service.get_docs_page(
                project, name, ids, filter, include_embedding=include_embedding, limit=limit, cursor=cursor
            )
        )
        return JSONResponse({"docs": docs_to_json(page.docs), "next_cursor": page.next_cursor})

    async def list_indexes(request: Request, project: str) -> Response:
        indexes = await run_in_threadpool(service.list_indexes, project)
        return JSONResponse({"indexes": [to_dict(info) for info in indexes]})

    async def get_index(request: Request, project: str) -> Response:
        info = await run_in_threadpool(service.get_index, project, request.path_params["name"])
        return JSONResponse(to_dict(info))

    async def delete_index(request: Request, project: str) -> Response:
        await run_in_threadpool(service.delete_index, project, request.path_params["name"])
        return Response(status_code=204)

    async def set_public(request: Request, project: str) -> Response:
        body = await read_json(request, max_request_bytes, required={"public"})
        public = optional(body, "public", bool)
        info = await run_in_threadpool(service.set_public, project, request.path_params["name"], public)
        return JSONResponse(to_dict(info))

    async def manifest(request: Request, project: str) -> Response:
        found = await run_in_threadpool(service.manifest_answer, project, request.path_params["name"])
        headers = {"ETag": f'"{found.etag}"'}
        if found.links is not None:  # its links outlive neither the window nor a cache (links.py)
            headers = {"ETag": f'W/"{found.etag}"', "Cache-Control": f"private, max-age={found.max_age_s}"}
        if etag_matches(request, found.etag):
            return Response(status_code=304, headers=headers)
        body = to_dict(found.manifest)
        if found.links is not None:
            body["download"] = {k: v for k, v in to_dict(found.links).items() if v is not None}
        if found.public_manifest is not None:
            body["public_manifest"] = found.public_manifest
        return JSONResponse(body, headers=headers)

    async def list_versions(request: Request, project: str) -> Response:
        versions = await run_in_threadpool(service.list_versions, project, request.path_params["name"])
        return JSONResponse({"versions": [to_dict(v) for v in versions]})

    async def download(request: Request, project: str) -> Response:
        name, version = request.path_params["name"], version_param(request)
        record = await run_in_threadpool(service.version_record, project, name, version)
        sha256 = record.manifest.sha256
        headers = {"ETag": f'"{sha256}"', "X-Content-SHA256": sha256, "Accept-Ranges": "bytes"}
        if etag_matches(request, sha256):
            return Response(status_code=304, headers=headers)
        try:
            size = await run_in_threadpool(service.version_size, record)
        except FileNotFoundError as exc:  # deleted between the catalog read and now
            raise IndexNotFoundError.version_gone(name, version) from exc
        try:
            byte_range = parse_range(request.headers.get("range"), size)
        except ValueError as exc:
            error = InvalidArgumentError(str(exc), index=name, version=version, size_bytes=size)
            return error_response(error, headers={"Content-Range": f"bytes */{size}"}, status_code=416)
        if byte_range is None:
            start, end, status = 0, size, 200
        else:
            (start, end), status = byte_range, 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=SQLITE_MEDIA_TYPE)
        chunks = service.version_bytes(record, start, end)
        return StreamingResponse(chunks, status_code=status, headers=headers, media_type=SQLITE_MEDIA_TYPE)

    async def patch(request: Request, project: str) -> Response:
        name, version = request.path_params["name"], version_param(request)
        base = version_number(request.query_params.get("from", ""), "?from= must be the version number you hold")
        found = await run_in_threadpool(service.version_patch, project, name, version, base)
        headers = {"Content-Length": str(found.size_bytes), "X-Content-SHA256": found.target.manifest.sha256}
        return StreamingResponse(service.patch_bytes(found), headers=headers, media_type=PATCH_MEDIA_TYPE)

    async def open_upload(request: Request, project: str) -> Response:
        body = await read_json(request, max_request_bytes, required={"index", "kind"}, optional={"model_id", "options"})
        index, kind = optional(body, "index", str), optional(body, "kind", str)
        model_id, options = optional(body, "model_id", str), mutation_options(body.get("options"))
        upload_id = await run_in_threadpool(
            lambda: service.open_upload(project, index, kind, model_id=model_id, upsert=options.upsert)
        )
        return JSONResponse({"upload_id": upload_id, "doc_count": 0}, status_code=201)

    async def append_upload(request: Request, project: str) -> Response:
        body = await read_json(request, max_request_bytes, required={"docs"})
        docs = await run_in_threadpool(docs_from_json, body["docs"])
        upload_id = request.path_params["upload_id"]
        held = await run_in_threadpool(service.append_upload, project, upload_id, docs)
        return JSONResponse({"upload_id": upload_id, "doc_count": held})

    async def commit_upload(request: Request, project: str) -> Response:
        result = await run_in_threadpool(service.commit_upload, project, request.path_params["upload_id"])
        return JSONResponse(to_dict(result), status_code=202)

    async def abort_upload(request: Request, project: str) -> Response:
        await run_in_threadpool(service.abort_upload, project, request.path_params["upload_id"])
        return Response(status_code=204)

    async def get_job(request: Request, project: str) -> Response:
        job = await run_in_threadpool(service.get_job, project, request.path_params["job_id"])
        return JSONResponse(to_dict(job))

    async def push(request: Request, project: str) -> Response:
        body = await read_json(
            request, max_request_bytes, required={"diff_id", "changeset"}, optional={"model_id", "dimension"}
        )
        diff_id = optional(body, "diff_id", str)
        encoded = optional(body, "changeset", str)
        model_id = optional(body, "model_id", str)
        dimension = body.get("dimension")
        if dimension is not None and (isinstance(dimension, bool) or not isinstance(dimension, int)):
            raise InvalidArgumentError(f"'dimension' must be an integer or null, got {type(dimension).__name__}")
        try:
            changeset = base64.b64decode(encoded or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidArgumentError(f"'changeset' is not valid base64: {exc}") from exc
        name = request.path_params["name"]
        result = await run_in_threadpool(service.push, project, name, diff_id, changeset, model_id, dimension)
        return JSONResponse(to_dict(result), status_code=202)

    async def get_push(request: Request, project: str) -> Response:
        name, diff_id = request.path_params["name"], request.path_params["diff_id"]
        result = await run_in_threadpool(service.get_push, project, name, diff_id)
        return JSONResponse(to_dict(result))

    base = "/v1/projects/{project}"
    index = base + "/indexes/{name}"
    routes = [
        Route("/", root, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/v1/health", health, methods=["GET"]),
        Route("/v1/openapi.json", openapi, methods=["GET"]),
        route(base + "/indexes", create_index, "POST"),
        route(base + "/indexes", list_indexes, "GET"),
        route(index, get_index, "GET"),
        route(index, delete_index, "DELETE"),
        route(index + "/docs", add_docs, "POST"),
        route(index + "/docs/delete", delete_docs, "POST"),
        route(index + "/docs/get", get_docs, "POST"),
        route(index + "/public", set_public, "PUT"),
        route(index + "/manifest", manifest, "GET"),
        route(index + "/versions", list_versions, "GET"),
        # {version}, not {version:int}: Starlette would run int() on any digits (even 5,000 of
        # them) while routing, outside the boundary; version_param checks them first.
        route(index + "/versions/{version}", download, "GET"),
        route(index + "/versions/{version}/patch", patch, "GET"),
        route(base + "/uploads", open_upload, "POST"),
        route(base + "/uploads/{upload_id}/docs", append_upload, "POST"),
        route(base + "/uploads/{upload_id}/commit", commit_upload, "POST"),
        route(base + "/uploads/{upload_id}", abort_upload, "DELETE"),
        route(base + "/jobs/{job_id}", get_job, "GET"),
        route(index + "/push", push, "POST"),
        route(index + "/pushes/{diff_id}", get_push, "GET"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_exception})


# -- errors ---------------------------------------------------------------------


def status_of(exc: MossliteError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 400


def error_response(
    exc: Exception, *, headers: dict[str, str] | None = None, status_code: int | None = None
) -> Response:
    """``{"error": ...}`` with the status of the error's class; anything foreign is a logged 500."""
    if not isinstance(exc, MossliteError):
        log.error("internal error while answering a request", exc_info=exc)
        body = {"code": "internal", "message": "internal server error", "hint": "see the server log"}
        return JSONResponse({"error": body}, status_code=500, headers=headers)
    if isinstance(exc, UnauthorizedError):
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    body = {"error": _encodable(exc.to_dict())}
    return JSONResponse(body, status_code=status_code or status_of(exc), headers=headers)


def _encodable(value: Any) -> Any:
    """``value`` with its strings made UTF-8 encodable: an error about a lone surrogate
    quotes it (as ``\\udc00``) instead of failing to render (a 500; issue #8)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    return value


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Routing misses (unknown path, wrong method) in the same error shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error: MossliteError = NotFoundError(f"no such route: {request.method} {request.url.path}")
        return error_response(error)
    code = "method_not_allowed" if exc.status_code == 405 else "error"
    body = {"code": code, "message": f"{request.method} {request.url.path}: {exc.detail}"}
    return JSONResponse({"error": body}, status_code=exc.status_code, headers=exc.headers)


# -- authentication ---------------------------------------------------------------


def _loggable(text: str) -> str:
    """``text`` on one line, UTF-8 encodable: a path or project name sent with a
    newline (%0A) or a lone surrogate cannot forge or break a log line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", _encodable(text))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "an unknown client"


async def _authenticate(service: Service, request: Request) -> str:
    """The path's project, if the bearer key opens it."""
    project = request.path_params["project"]
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise UnauthorizedError("send the project key as 'Authorization: Bearer <key>'", project=project)
    owner = await run_in_threadpool(service.project_of_key, key)
    if owner is None:
        raise UnauthorizedError(f"the key is not valid for project {project!r}", project=project)
    if owner != project:
        raise NotFoundError(f"project {project!r} not found", project=project)
    return project
