"""The service over HTTP: a thin Starlette app around one ``Service``.

Each endpoint authenticates, parses and checks the body's shape, calls the
(synchronous) service on a worker thread, and serialises the answer with
``mosslite.wire``. Everything else (names, documents, filters, conflicts) is
the service's job, so both transports refuse the same input with the same
error. The JSON shapes are described in ``schemas/wire/``.

Invariants:
- Errors cross the wire as ``{"error": MossliteError.to_dict()}`` with a
  status chosen by class (``STATUS_BY_ERROR``), translated at one boundary
  (``error_response``, around every endpoint); an unexpected exception is
  logged and answered 500 ``internal`` without its details.
- A key of project B on project A's path is answered 404 (not 401), so a key
  cannot be used to learn which projects exist.
- A request body is never read past ``max_request_bytes``: a declared
  ``Content-Length`` over the limit is refused before reading, and the bytes
  are counted while reading, so a lying or chunked client cannot exceed it.
- Numbers from the client (path versions, ``?from=``, ``Content-Length``,
  ``Range``, JSON numbers) are checked as text before ``int()`` sees them:
  ASCII digits only (``str.isdigit`` also accepts '²'), a bounded length;
  JSON integers fit in 64 bits, and NaN/Infinity (not JSON) are refused.
  Hostile input is a typed 4xx, never an exception that reaches the boundary.
- ``GET /v1/openapi.json`` (no key) describes every route: ``openapi.py``
  assembles it from this route table and ``schemas/wire/``.
- Version files are immutable, so their sha256 is a strong ETag; downloads
  honour one ``Range: bytes=a-b`` (206) and resume by appending. A client that
  holds version m asks ``.../versions/{n}/patch?from=m`` for only the pages
  that changed (format in ``index/pages.py``).

Example::

    app = create_app(Service(Path("/srv/mosslite")))
    uvicorn.run(app, host="127.0.0.1", port=8700)
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, Set
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
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
from ..types import MAX_REQUEST_BYTES, MutationOptions, Version
from ..wire import PATCH_MEDIA_TYPE, SQLITE_MEDIA_TYPE, docs_from_json, docs_to_json, from_dict, to_dict
from .core import Service
from .openapi import openapi_json

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

_RANGE_RE = re.compile(r"^bytes=([0-9]{0,19})-([0-9]{0,19})$")  # 19 digits: int64, and int() stays cheap
#: JSON integers in a request fit in 64 bits (what SQLite and numpy hold); longer text is refused unread.
_MAX_JSON_INT_CHARS = 20

Handler = Callable[[Request, str], Awaitable[Response]]


def create_app(service: Service, *, max_request_bytes: int = MAX_REQUEST_BYTES) -> Starlette:
    """The ASGI app serving ``service``; the caller owns (and closes) the service."""

    def route(path: str, handler: Handler, method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                project = await _authenticate(service, request)
                return await handler(request, project)
            except Exception as exc:  # the one boundary: every failure leaves as an error body
                return error_response(exc)

        return Route(path, endpoint, methods=[method])

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def openapi(request: Request) -> Response:
        document = await run_in_threadpool(openapi_json, routes)  # built on first use, then cached
        return Response(document, media_type="application/json")

    async def create_index(request: Request, project: str) -> Response:
        body = await _read_json(request, max_request_bytes, required={"name", "docs"}, optional={"model_id"})
        docs = await run_in_threadpool(docs_from_json, body["docs"])
        model_id = _optional(body, "model_id", str)
        result = await run_in_threadpool(service.create_index, project, body["name"], docs, model_id)
        return JSONResponse(to_dict(result), status_code=202)

    async def add_docs(request: Request, project: str) -> Response:
        body = await _read_json(request, max_request_bytes, required={"docs"}, optional={"options"})
        docs = await run_in_threadpool(docs_from_json, body["docs"])
        options = _mutation_options(body.get("options"))
        name = request.path_params["name"]
        result = await run_in_threadpool(service.add_docs, project, name, docs, options)
        return JSONResponse(to_dict(result), status_code=202)

    async def delete_docs(request: Request, project: str) -> Response:
        body = await _read_json(request, max_request_bytes, required={"ids"})
        ids = _id_list(body["ids"])
        result = await run_in_threadpool(service.delete_docs, project, request.path_params["name"], ids)
        return JSONResponse(to_dict(result), status_code=202)

    async def get_docs(request: Request, project: str) -> Response:
        body = await _read_json(
            request, max_request_bytes, optional={"ids", "filter", "include_embedding", "limit", "cursor"}
        )
        ids = None if body.get("ids") is None else _id_list(body["ids"])
        filter = _optional(body, "filter", dict)
        include_embedding = _optional(body, "include_embedding", bool) is not False  # (default: included)
        limit, cursor = body.get("limit"), _optional(body, "cursor", str)
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

    async def manifest(request: Request, project: str) -> Response:
        found = await run_in_threadpool(service.manifest, project, request.path_params["name"])
        etag = f'"{found.sha256}"'
        if _etag_matches(request, found.sha256):
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse(to_dict(found), headers={"ETag": etag})

    async def download(request: Request, project: str) -> Response:
        name, version = request.path_params["name"], _version_param(request)
        record = await run_in_threadpool(service.version_record, project, name, version)
        sha256 = record.manifest.sha256
        headers = {"ETag": f'"{sha256}"', "X-Content-SHA256": sha256, "Accept-Ranges": "bytes"}
        if _etag_matches(request, sha256):
            return Response(status_code=304, headers=headers)
        try:
            size = await run_in_threadpool(service.storage.size, record.storage_key)
        except FileNotFoundError as exc:  # deleted between the catalog read and now
            raise IndexNotFoundError.version_gone(name, version) from exc
        try:
            byte_range = _parse_range(request.headers.get("range"), size)
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
        chunks = service.storage.iter_range(record.storage_key, start, end)
        return StreamingResponse(chunks, status_code=status, headers=headers, media_type=SQLITE_MEDIA_TYPE)

    async def patch(request: Request, project: str) -> Response:
        name, version = request.path_params["name"], _version_param(request)
        base = _version_number(request.query_params.get("from", ""), "?from= must be the version number you hold")
        found = await run_in_threadpool(service.version_patch, project, name, version, base)
        headers = {"Content-Length": str(found.size_bytes), "X-Content-SHA256": found.target.manifest.sha256}
        return StreamingResponse(found.chunks(service.storage), headers=headers, media_type=PATCH_MEDIA_TYPE)

    async def open_upload(request: Request, project: str) -> Response:
        body = await _read_json(request, max_request_bytes, required={"index", "kind"}, optional={"model_id", "options"})
        index, kind = _optional(body, "index", str), _optional(body, "kind", str)
        model_id, options = _optional(body, "model_id", str), _mutation_options(body.get("options"))
        upload_id = await run_in_threadpool(
            lambda: service.open_upload(project, index, kind, model_id=model_id, upsert=options.upsert)
        )
        return JSONResponse({"upload_id": upload_id, "doc_count": 0}, status_code=201)

    async def append_upload(request: Request, project: str) -> Response:
        body = await _read_json(request, max_request_bytes, required={"docs"})
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
        body = await _read_json(
            request, max_request_bytes, required={"diff_id", "changeset"}, optional={"model_id", "dimension"}
        )
        diff_id = _optional(body, "diff_id", str)
        encoded = _optional(body, "changeset", str)
        model_id = _optional(body, "model_id", str)
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
        Route("/v1/health", health, methods=["GET"]),
        Route("/v1/openapi.json", openapi, methods=["GET"]),
        route(base + "/indexes", create_index, "POST"),
        route(base + "/indexes", list_indexes, "GET"),
        route(index, get_index, "GET"),
        route(index, delete_index, "DELETE"),
        route(index + "/docs", add_docs, "POST"),
        route(index + "/docs/delete", delete_docs, "POST"),
        route(index + "/docs/get", get_docs, "POST"),
        route(index + "/manifest", manifest, "GET"),
        # {version}, not {version:int}: Starlette would run int() on any digits (even 5,000 of
        # them) while routing, outside the boundary; _version_param checks them first.
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


async def _authenticate(service: Service, request: Request) -> str:
    """The path's project, if the bearer key opens it."""
    project = request.path_params["project"]
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise UnauthorizedError("send the project key as 'Authorization: Bearer <key>'", project=project)
    owner = await run_in_threadpool(service.catalog.project_of_key, key)
    if owner is None:
        raise UnauthorizedError(f"the key is not valid for project {project!r}", project=project)
    if owner != project:
        raise NotFoundError(f"project {project!r} not found", project=project)
    return project


# -- request bodies ---------------------------------------------------------------


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = PayloadTooLargeError(
        f"the request body is over {limit} bytes", hint="send the documents in smaller batches"
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        if not _is_digits(declared):
            raise InvalidArgumentError(f"bad Content-Length header {declared[:40]!r}")
        significant = declared.lstrip("0")
        if len(significant) > len(str(limit)) or int(significant or "0") > limit:
            raise too_large
    parts: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise too_large
            parts.append(chunk)
    except ClientDisconnect as exc:  # nobody will read the answer; just do not log it as ours
        raise InvalidArgumentError("the client disconnected while sending the body") from exc
    return b"".join(parts)


async def _read_json(
    request: Request, limit: int, *, required: Set[str] = frozenset(), optional: Set[str] = frozenset()
) -> dict[str, Any]:
    """The body as a JSON object with exactly the allowed fields."""
    raw = await _read_body(request, limit)
    try:
        body = await run_in_threadpool(_loads, raw)  # up to the limit: keep it off the event loop
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidArgumentError(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidArgumentError(f"the request body must be a JSON object, got {type(body).__name__}")
    unknown = set(body) - set(required) - set(optional)
    if unknown:
        raise InvalidArgumentError(f"unknown field(s) in the request body: {sorted(unknown)}")
    missing = set(required) - set(body)
    if missing:
        raise InvalidArgumentError(f"missing field(s) in the request body: {sorted(missing)}")
    return body


def _json_int(text: str) -> int:
    if len(text) > _MAX_JSON_INT_CHARS or not -(2**63) <= (value := int(text)) < 2**63:
        shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
        raise InvalidArgumentError(f"the request body holds an integer out of the 64-bit range: {shown}")
    return value


def _json_constant(name: str) -> Any:
    raise InvalidArgumentError(f"the request body is not valid JSON: {name} is not a JSON number")


#: json.loads, strict about numbers: Python's own raises ValueError on an integer past 4,300
#: digits, and takes NaN and Infinity, which JSON has not. Floats keep the C parser's fast path
#: (a hook would cost ~35% on a body of embeddings); 1e400 is inf, which documents refuse.
_loads = functools.partial(json.loads, parse_int=_json_int, parse_constant=_json_constant)


def _is_digits(text: str) -> bool:
    """Only ASCII 0-9: ``str.isdigit`` also accepts '²' and other digits ``int`` refuses."""
    return text.isascii() and text.isdigit()


def _version_number(text: str, message: str) -> Version:
    """A version number sent as text: at most Version.WIDTH ASCII digits, checked before int()."""
    if not (_is_digits(text) and len(text) <= Version.WIDTH):
        raise InvalidArgumentError(f"{message}: an integer from 0 to {Version.MAX}, got {text[:40]!r}")
    return Version(int(text))


def _version_param(request: Request) -> Version:
    return _version_number(request.path_params["version"], "the path's version is not a version number")


def _optional(body: dict[str, Any], field: str, kind: type) -> Any:
    value = body.get(field)
    if value is not None and not isinstance(value, kind):
        raise InvalidArgumentError(f"{field!r} must be {_json_type(kind)} or null, got {type(value).__name__}")
    return value


def _id_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise InvalidArgumentError(f"'ids' must be an array of strings, got {type(value).__name__}")
    return value


def _mutation_options(value: Any) -> MutationOptions:
    if value is None:
        return MutationOptions()
    return from_dict(MutationOptions, value)  # (MutationOptions checks upsert itself)


def _json_type(kind: type) -> str:
    return {str: "a string", dict: "an object", list: "an array"}.get(kind, kind.__name__)


# -- conditional and range requests -----------------------------------------------


def _etag_matches(request: Request, sha256: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or f'"{sha256}"' in tags


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of one ``bytes=`` range, or None for the whole file.

    Units other than bytes are ignored (RFC 9110 section 14.2); a bytes range we
    cannot serve (past the end, reversed, several ranges) raises ValueError: a 416.
    """
    if header is None or not header.strip().lower().startswith("bytes="):
        return None
    match = _RANGE_RE.match(header.strip().lower().replace(" ", ""))
    if match is None or match.groups() == ("", ""):
        raise ValueError(f"unsupported range {header!r}: send one range, bytes=<start>-[<end>]")
    first, last = match.groups()
    if first == "":  # a suffix: the last N bytes
        if int(last) == 0:
            raise ValueError(f"range {header!r} asks for no bytes")
        return max(0, size - int(last)), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or start >= end:
        raise ValueError(f"range {header!r} is not within the file's {size} bytes")
    return start, end
