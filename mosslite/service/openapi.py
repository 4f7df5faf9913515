"""The OpenAPI 3.1 document of the HTTP API, assembled from the app's routes and ``schemas/wire/``.

``GET /v1/openapi.json`` serves it; ``tests/service/test_fuzz.py`` fuzzes a real
server from it.

Invariants:
- The JSON Schemas in ``schemas/wire/*.json`` are the one source of truth for
  bodies: every file is embedded verbatim as ``components/schemas/<file stem>``
  (OpenAPI 3.1 schemas are JSON Schema 2020-12, so their ``$id``s make the
  files' ``urn:mosslite:wire:...`` references resolve inside the document), and
  operations only ``$ref`` them; path parameters point into them too.
- Routes and operations match one to one: building the document for routes this
  module does not describe, or describing an operation no route serves, raises
  RuntimeError, so the document cannot silently drift from ``create_app``.
- Built once per route table (and the wire schemas read once per process): the
  cached bytes are served; ``openapi_document`` parses a fresh copy of them.

Example::

    document = openapi_document(app.routes)
    document["paths"]["/v1/health"]["get"]["responses"]["200"]
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.routing import BaseRoute, Route

from .. import __version__
from .._db import schema_path
from ..types import MAX_DOC_TEXT_BYTES, MAX_PAYLOAD_BYTES, MAX_REQUEST_BYTES, Version
from ..validation import MAX_ID_CHARS, MAX_NAME_CHARS
from ..wire import PATCH_MEDIA_TYPE, SQLITE_MEDIA_TYPE

OPENAPI_VERSION = "3.1.0"

_CONVERTOR_RE = re.compile(r"{(\w+):\w+}")  # Starlette's {name:type}: OpenAPI's {name}
_PARAM_RE = re.compile(r"{(\w+)}")


# -- the wire schemas ---------------------------------------------------------------


@functools.cache
def wire_schemas() -> Mapping[str, Any]:
    """Every ``schemas/wire/<stem>.json``, by stem, as parsed from the file."""
    return {path.stem: json.loads(path.read_text("utf-8")) for path in sorted(schema_path("wire").glob("*.json"))}


def _schema(stem: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{stem}"}


def _property(stem: str, name: str) -> dict[str, str]:
    """One property of a wire schema: path parameters reuse them rather than repeat them."""
    return {"$ref": f"#/components/schemas/{stem}/properties/{name}"}


# -- what each route takes and answers -----------------------------------------------

#: Path parameters by name, wherever they occur.
PATH_PARAMETERS: Mapping[str, tuple[str, dict[str, Any]]] = {
    "project": ("A project name (the key must be one of its keys).", _property("create_index_request", "name")),
    "name": ("An index name.", _property("create_index_request", "name")),
    "version": (
        "A published version number.",
        {"type": "integer", "minimum": 0, "maximum": Version.MAX},
    ),
    "upload_id": ("An open upload.", _property("upload", "upload_id")),
    "job_id": ("A job of this project.", _property("job", "job_id")),
    "diff_id": ("The id the pushing session gave its diff.", _property("push_request", "diff_id")),
}

_ERROR_STATUSES = {
    "400": "The request is malformed (bad JSON, unknown field, bad name, document or filter).",
    "401": "No key, or an unknown key (with WWW-Authenticate: Bearer).",
    "404": "No such project (for this key), index, version, job, upload or push.",
    "409": "The request contradicts stored state (an existing id without upsert, an existing index, "
    "public read mode on a service with no public URL).",
    "413": f"The request body is over {MAX_REQUEST_BYTES} bytes, or a document or payload over its limit.",
    "500": "Stored bytes are not what they claim (integrity), or an unexpected server failure.",
    "503": "The service cannot do it now; retrying later may work.",
}

_RESPONSE_HEADERS = {
    "ETag": {
        "description": "The version's sha256, quoted: a strong validator (a manifest with download links: "
        "weak, and new each window of its links).",
        "schema": {"type": "string"},
    },
    "X-Content-SHA256": {
        "description": "sha256 of the whole version file (also on 206).",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
    "Accept-Ranges": {"description": "Always bytes.", "schema": {"const": "bytes"}},
    "Cache-Control": {
        "description": "With download links: private, max-age = seconds until the links' window ends.",
        "schema": {"type": "string"},
    },
    "Content-Range": {
        "description": "Which bytes a 206 holds, or bytes */size on a 416.",
        "schema": {"type": "string"},
    },
}


def _json(description: str, schema: dict[str, Any], headers: Iterable[str] = ()) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = {name: _RESPONSE_HEADERS[name] for name in headers}
    return answer


def _empty(description: str, headers: Iterable[str] = ()) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if headers:
        answer["headers"] = {name: _RESPONSE_HEADERS[name] for name in headers}
    return answer


def _bytes(description: str, media_type: str, headers: Iterable[str] = ()) -> dict[str, Any]:
    answer = _empty(description, headers)
    answer["content"] = {media_type: {"schema": {"type": "string", "contentMediaType": media_type}}}
    return answer


def _header(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": schema or {"type": "string"}}  # fmt: skip


_IF_NONE_MATCH = _header("If-None-Match", "An ETag you hold: answered 304 without a body when it still matches.")
_RANGE = _header("Range", "One range, bytes=<start>-[<end>] or bytes=-<suffix>: answered 206 with those bytes.")
_FROM = {
    "name": "from",
    "in": "query",
    "required": True,
    "description": "The version you hold; only the pages that differ from it are sent.",
    "schema": {"type": "integer", "minimum": 0, "maximum": Version.MAX},
}


def _operation(
    summary: str,
    answers: Mapping[str, dict[str, Any]],
    *,
    body: str | None = None,
    errors: Iterable[str] = ("400", "401", "404", "500", "503"),
    parameters: Iterable[dict[str, Any]] = (),
    public: bool = False,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "parameters": list(parameters)}
    if body is not None:
        content = {"application/json": {"schema": _schema(body)}}
        operation["requestBody"] = {"required": True, "content": content}
        errors = [*errors, "413"]
    responses = dict(answers)
    for status in sorted(set(errors)):
        responses.setdefault(status, {"$ref": f"#/components/responses/error_{status}"})
    operation["responses"] = dict(sorted(responses.items()))
    if public:
        operation["security"] = []
    return operation


_MUTATION = ("400", "401", "404", "409", "500", "503")
_BASE = "/v1/projects/{project}"
_INDEX = _BASE + "/indexes/{name}"
_VERSION = _INDEX + "/versions/{version}"

#: Every operation, by (method, route path); the route table in http.py must serve exactly these.
OPERATIONS: Mapping[tuple[str, str], dict[str, Any]] = {
    ("GET", "/"): _operation(
        "What this server is: its version, and where its documentation is (no key needed).",
        {"200": _json("The server's name, version and pointers.", _schema("root"))},
        errors=(),
        public=True,
    ),
    ("GET", "/docs"): _operation(
        "This document as a page for people: every operation, its parameters, bodies and answers (no key needed).",
        {"200": _bytes("A self-contained HTML page (no scripts, nothing fetched).", "text/html")},
        errors=(),
        public=True,
    ),
    ("GET", "/v1/health"): _operation(
        "Liveness and the server's version (no key needed).",
        {"200": _json("The server is up.", _schema("health"))},
        errors=(),
        public=True,
    ),
    ("GET", "/v1/openapi.json"): _operation(
        "This document (no key needed).",
        {"200": _json("The OpenAPI 3.1 document.", {"type": "object", "required": ["openapi", "info", "paths"]})},
        errors=(),
        public=True,
    ),
    ("POST", _BASE + "/indexes"): _operation(
        "Create an index from documents: a job builds its first version.",
        {"202": _json("The job was queued.", _schema("mutation_result"))},
        body="create_index_request",
        errors=_MUTATION,
    ),
    ("GET", _BASE + "/indexes"): _operation(
        "The project's indexes.", {"200": _json("The indexes.", _schema("index_list"))}
    ),
    ("GET", _INDEX): _operation("One index.", {"200": _json("The index.", _schema("index_info"))}),
    ("DELETE", _INDEX): _operation(
        "Delete an index and its versions.", {"204": _empty("Deleted.")}, errors=_MUTATION
    ),
    ("POST", _INDEX + "/docs"): _operation(
        "Add (or, with upsert, replace) documents: a job builds the next version.",
        {"202": _json("The job was queued.", _schema("mutation_result"))},
        body="add_docs_request",
        errors=_MUTATION,
    ),
    ("POST", _INDEX + "/docs/delete"): _operation(
        "Delete documents by id: a job builds the next version.",
        {"202": _json("The job was queued.", _schema("mutation_result"))},
        body="delete_docs_request",
        errors=_MUTATION,
    ),
    ("POST", _INDEX + "/docs/get"): _operation(
        "Documents by id or metadata filter (get_docs_request says how many at a time).",
        {"200": _json("The documents found.", _schema("docs_list"))},
        body="get_docs_request",
    ),
    ("PUT", _INDEX + "/public"): _operation(
        "Public read mode on or off: anyone with the URL reads its newest versions (README: Public read mode).",
        {"200": _json("The index, with its public manifest's URL when public.", _schema("index_info"))},
        body="public_request",
        errors=_MUTATION,
    ),
    ("GET", _INDEX + "/manifest"): _operation(
        "The newest published version: its number, size and sha256 (also the ETag).",
        {
            "200": _json("The manifest.", _schema("manifest"), headers=["ETag", "Cache-Control"]),
            "304": _empty("The ETag sent still matches.", headers=["ETag", "Cache-Control"]),
        },
        parameters=[_IF_NONE_MATCH],
    ),
    ("GET", _INDEX + "/versions"): _operation(
        "The index's published versions, newest first: number, size, documents, time, and whether "
        "the file is still kept (older ones are pruned).",
        {"200": _json("The versions.", _schema("version_list"))},
    ),
    ("GET", _VERSION): _operation(
        "Download a version file (a SQLite database); resumable with Range.",
        {
            "200": _bytes("The whole file.", SQLITE_MEDIA_TYPE, ["ETag", "X-Content-SHA256", "Accept-Ranges"]),
            "206": _bytes("The requested bytes.", SQLITE_MEDIA_TYPE, ["ETag", "X-Content-SHA256", "Content-Range"]),
            "304": _empty("The ETag sent still matches.", headers=["ETag", "X-Content-SHA256"]),
            "416": _json("The range is not within the file.", _schema("error"), headers=["Content-Range"]),
        },
        parameters=[_RANGE, _IF_NONE_MATCH],
    ),
    ("HEAD", _VERSION): _operation(
        "A version file's headers (size, sha256), without the bytes.",
        {
            "200": _empty("The whole file's headers.", ["ETag", "X-Content-SHA256", "Accept-Ranges"]),
            "206": _empty("The requested range's headers.", ["ETag", "X-Content-SHA256", "Content-Range"]),
            "304": _empty("The ETag sent still matches.", headers=["ETag", "X-Content-SHA256"]),
            "416": _empty("The range is not within the file.", headers=["Content-Range"]),
        },
        parameters=[_RANGE, _IF_NONE_MATCH],
    ),
    ("GET", _VERSION + "/patch"): _operation(
        "The pages of a version that differ from the one you hold (format: index/page_patch.py).",
        {"200": _bytes("The page patch.", PATCH_MEDIA_TYPE, ["X-Content-SHA256"])},
        parameters=[_FROM],
    ),
    ("POST", _BASE + "/uploads"): _operation(
        "Open an upload: a batch larger than one request, sent in parts and committed as one job.",
        {"201": _json("The upload, empty.", _schema("upload"))},
        body="upload_request",
        errors=_MUTATION,
    ),
    ("POST", _BASE + "/uploads/{upload_id}/docs"): _operation(
        "Add documents to an upload (a refused part ends the upload).",
        {"200": _json("The upload and how many documents it holds.", _schema("upload"))},
        body="upload_docs_request",
        errors=_MUTATION,
    ),
    ("POST", _BASE + "/uploads/{upload_id}/commit"): _operation(
        "Commit an upload as one job.",
        {"202": _json("The job was queued.", _schema("mutation_result"))},
        errors=_MUTATION,
    ),
    ("DELETE", _BASE + "/uploads/{upload_id}"): _operation(
        "Abort an upload.", {"204": _empty("Aborted; what it held is gone.")}, errors=_MUTATION
    ),
    ("GET", _BASE + "/jobs/{job_id}"): _operation("A job's progress.", {"200": _json("The job.", _schema("job"))}),
    ("POST", _INDEX + "/push"): _operation(
        "Push a session's diff (idempotent by diff_id); creates the index if needed.",
        {"202": _json("The push was queued (or had been).", _schema("push_result"))},
        body="push_request",
        errors=_MUTATION,
    ),
    ("GET", _INDEX + "/pushes/{diff_id}"): _operation(
        "A push's progress.", {"200": _json("The push.", _schema("push_result"))}
    ),
}

_DESCRIPTION = (
    "mosslite's HTTP API. Every error is answered as `{\"error\": {...}}` (components/schemas/error) "
    "with a status chosen by its class. Limits: a request body is at most "
    f"{MAX_REQUEST_BYTES} bytes (else 413); a document's text and payload at most {MAX_DOC_TEXT_BYTES} "
    f"and {MAX_PAYLOAD_BYTES} bytes (UTF-8), its id {MAX_ID_CHARS} characters; index and project names "
    f"at most {MAX_NAME_CHARS} characters."
)


# -- the document -------------------------------------------------------------------


def route_operations(routes: Iterable[BaseRoute]) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route; HEAD only where it is described (Starlette adds
    it to every GET route, but only the version download answers it on purpose)."""
    found = set()
    for route in routes:
        if not isinstance(route, Route):
            raise RuntimeError(f"cannot describe route {route!r}: not a plain Route")
        path = _CONVERTOR_RE.sub(r"{\1}", route.path)
        for method in route.methods or ():
            if method != "HEAD" or (method, path) in OPERATIONS:
                found.add((method, path))
    return found


def openapi_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of an app with these routes (a fresh copy each call)."""
    return json.loads(openapi_json(routes))


def openapi_json(routes: Iterable[BaseRoute]) -> bytes:
    """The document as the bytes ``GET /v1/openapi.json`` sends: built once per route table."""
    return _document_bytes(frozenset(route_operations(routes)))


@functools.lru_cache(maxsize=4)
def _document_bytes(served: frozenset[tuple[str, str]]) -> bytes:
    return json.dumps(_build(served), separators=(",", ":")).encode()


def _build(served: frozenset[tuple[str, str]]) -> dict[str, Any]:
    undescribed, unserved = served - set(OPERATIONS), set(OPERATIONS) - served
    if undescribed or unserved:
        raise RuntimeError(
            f"routes without a description: {sorted(undescribed)}; described, not served: {sorted(unserved)}"
        )
    paths: dict[str, dict[str, Any]] = {}
    for method, path in sorted(served):
        operation = dict(OPERATIONS[(method, path)])
        path_parameters = [_path_parameter(name) for name in _PARAM_RE.findall(path)]
        operation["parameters"] = path_parameters + operation["parameters"]
        operation["operationId"] = _operation_id(method, path)
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "mosslite", "version": __version__, "description": _DESCRIPTION},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": dict(wire_schemas()),
            "responses": {
                f"error_{status}": _json(description, _schema("error"))
                for status, description in sorted(_ERROR_STATUSES.items())
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A project key: mosslite keys create"}
            },
        },
    }


def _path_parameter(name: str) -> dict[str, Any]:
    if name not in PATH_PARAMETERS:
        raise RuntimeError(f"path parameter {{{name}}} has no description in PATH_PARAMETERS")
    description, schema = PATH_PARAMETERS[name]
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def _operation_id(method: str, path: str) -> str:
    words = [part.strip("{}") for part in path.removeprefix("/v1/").split("/") if part] or ["root"]
    return "_".join([method.lower(), *[re.sub(r"\W", "_", word) for word in words]])
