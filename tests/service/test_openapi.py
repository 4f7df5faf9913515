"""The OpenAPI document at GET /v1/openapi.json: valid OpenAPI 3.1, one operation per
route and one route per operation, and the wire schemas embedded as they are on disk.

The document is fetched from the app in-process (``httpx.ASGITransport``);
``test_fuzz.py`` drives a real server from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from schemathesis.specs.openapi.definitions import OPENAPI_31
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from mosslite.service import Service
from mosslite.service.http import create_app
from mosslite.service.openapi import openapi_document

pytestmark = pytest.mark.anyio

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "wire"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Starlette]:
    service = Service(tmp_path / "data")
    yield create_app(service)
    service.close()


@pytest.fixture
async def document(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mosslite.test") as http:
        response = await http.get("/v1/openapi.json")  # no key: like /v1/health
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        again = await http.get("/v1/openapi.json")
        assert again.content == response.content
        yield response.json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


async def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    jsonschema.Draft202012Validator(OPENAPI_31).validate(document)  # the OpenAPI Initiative's 3.1 schema
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    # schemathesis can load it and resolve every operation (the fuzz test depends on that).
    loaded = schemathesis.openapi.from_dict(document)
    resolved = [result.ok() for result in loaded.get_all_operations()]
    assert len(resolved) == len(list(operations(document)))


async def test_every_route_is_an_operation_and_every_operation_a_route(
    app: Starlette, document: dict[str, Any]
) -> None:
    served: set[tuple[str, str]] = set()
    params: dict[str, set[str]] = {}
    for route in app.routes:
        assert isinstance(route, Route)
        path = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)
        served |= {(method, path) for method in route.methods or ()}
        params[path] = set(route.param_convertors)
    described = {(method, path) for method, path, _ in operations(document)}
    # Starlette answers HEAD on every GET route; only the version download describes it.
    assert described == served - {(m, p) for m, p in served if m == "HEAD" and (m, p) not in described}
    assert ("HEAD", "/v1/projects/{project}/indexes/{name}/versions/{version}") in described
    for _, path, operation in operations(document):
        in_path = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        assert in_path == params[path] == set(re.findall(r"{(\w+)}", path)), path


async def test_components_are_the_wire_schema_files(document: dict[str, Any]) -> None:
    files = {path.stem: json.loads(path.read_text()) for path in SCHEMA_DIR.glob("*.json")}
    assert document["components"]["schemas"] == files
    # ... and the document uses every one of them.
    used = {ref.split("/")[3] for ref in refs(document) if ref.startswith("#/components/schemas/")}
    urns = {ref for ref in refs(document["components"]["schemas"]) if ref.startswith("urn:")}
    used |= {stem for stem, schema in files.items() if schema["$id"] in urns}
    assert used == set(files)


async def test_every_reference_resolves(document: dict[str, Any]) -> None:
    ids = {schema["$id"] for schema in document["components"]["schemas"].values()}
    for ref in refs(document):
        if ref.startswith("urn:"):
            assert ref in ids, ref  # one wire schema naming another by its $id
        else:
            assert resolve(document, ref) is not None, ref


async def test_operations_take_and_answer_the_wire_schemas(document: dict[str, Any]) -> None:
    paths = document["paths"]
    index = "/v1/projects/{project}/indexes/{name}"
    bodies = {
        ("post", "/v1/projects/{project}/indexes"): "create_index_request",
        ("post", index + "/docs"): "add_docs_request",
        ("post", index + "/docs/delete"): "delete_docs_request",
        ("post", index + "/docs/get"): "get_docs_request",
        ("post", index + "/push"): "push_request",
        ("put", index + "/public"): "public_request",
        ("post", "/v1/projects/{project}/uploads"): "upload_request",
        ("post", "/v1/projects/{project}/uploads/{upload_id}/docs"): "upload_docs_request",
    }
    for method, path, operation in operations(document):
        body = bodies.get((method.lower(), path))
        if body is None:
            assert "requestBody" not in operation, (method, path)
        else:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{body}"}
    assert paths[index + "/docs/get"]["post"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/docs_list"
    }
    download = paths[index + "/versions/{version}"]["get"]
    assert set(download["responses"]) >= {"200", "206", "304", "416"}
    assert set(download["responses"]["200"]["content"]) == {"application/vnd.sqlite3"}
    assert {p["name"] for p in download["parameters"] if p["in"] == "header"} == {"Range", "If-None-Match"}
    patch = paths[index + "/versions/{version}/patch"]["get"]
    assert set(patch["responses"]["200"]["content"]) == {"application/vnd.mosslite.page-patch"}
    assert [p for p in patch["parameters"] if p["in"] == "query"][0]["name"] == "from"


async def test_errors_and_security(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "A project key: mosslite keys create",
    }  # fmt: skip
    assert document["security"] == [{"bearer": []}]
    for method, path, operation in operations(document):
        if path in ("/", "/docs", "/v1/health", "/v1/openapi.json"):
            assert operation["security"] == [], path
            continue
        assert "security" not in operation  # the document's default: a bearer key
        for status in ("400", "401", "404"):
            answer = operation["responses"][status]
            if "$ref" in answer:
                answer = resolve(document, answer["$ref"])
            if method == "HEAD":
                continue
            assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/error"}


def test_a_route_without_a_description_is_refused(app: Starlette) -> None:
    async def extra(request: Any) -> Response:
        return Response()

    with pytest.raises(RuntimeError, match="/v1/extra"):
        openapi_document([*app.routes, Route("/v1/extra", extra, methods=["GET"])])
    with pytest.raises(RuntimeError, match="not served"):
        openapi_document([r for r in app.routes if getattr(r, "path", "") != "/v1/health"])


async def test_the_readme_table_renders_every_operation(document: dict[str, Any]) -> None:
    """The README's HTTP table is the document in prose: the same operations, no more (HEAD
    of a version file, its GET's twin, aside; and the pages for people, ``/`` and ``/docs``,
    which the text names). Path parameters may be named shorter there."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    section = readme.split("### HTTP API", 1)[1].split("\n## ", 1)[0]
    in_readme = {(m, _shape(p)) for m, p in re.findall(r"^\| `([A-Z]+) (/v1/[^` ?]*)", section, re.MULTILINE)}
    in_document = {(m, _shape(p)) for m, p, _ in operations(document) if m != "HEAD" and p.startswith("/v1/")}
    assert in_readme == in_document


def _shape(path: str) -> str:
    return re.sub(r"{[^}]*}", "{}", path)
