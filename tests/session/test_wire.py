"""The push routes speak the shapes of schemas/wire/push_*.json, and refuse bad bodies."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import jsonschema
import pytest

from mosslite import DocumentInfo, MossClient
from mosslite.transport.http import HTTPTransport
from mosslite.errors import InvalidArgumentError
from mosslite.service import Service
from mosslite.service.http import create_app

from ..test_changeset import GOOD, HOSTILE_DIFFS, diff_of
from .conftest import MODEL

pytestmark = pytest.mark.anyio

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "wire"


def schema(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{name}.json").read_text()))


async def test_push_messages_match_their_schemas(tmp_path: Path) -> None:
    service = Service(tmp_path / "srv")
    key = service.create_key("p")
    seen: list[tuple[httpx.Request, httpx.Response]] = []
    inner = httpx.ASGITransport(app=create_app(service))

    class Recorder(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            await response.aread()
            seen.append((request, response))
            return response

    transport = HTTPTransport("http://mosslite.test", "p", key, transport=Recorder())
    client = MossClient("p", key, transport=transport, cache_path=tmp_path / "home")
    try:
        session = await client.session("wire", model_id=MODEL)
        await session.add_docs([DocumentInfo(id="a", text="alpha"), DocumentInfo(id="b", text="beta")])
        await session.push_index()
        pushes = [(q, r) for q, r in seen if q.url.path.endswith("/push")]
        results = [(q, r) for q, r in seen if "/pushes/" in q.url.path]
        assert pushes and results
        for request, response in pushes:
            body = json.loads(request.content)
            schema("push_request").validate(body)
            assert base64.b64decode(body["changeset"])
            assert response.status_code == 202
            schema("push_result").validate(response.json())
        for _, response in results:
            schema("push_result").validate(response.json())
            assert response.json()["overwritten"] == 0

        http = httpx.AsyncClient(transport=inner, base_url="http://mosslite.test/v1/projects/p/indexes/wire")
        auth = {"Authorization": f"Bearer {key}"}
        bad_bodies = [
            {"diff_id": "diff_12345678", "changeset": "not base64!!"},
            {"diff_id": "diff_12345678", "changeset": base64.b64encode(b"junk").decode()},
            {"diff_id": "x", "changeset": base64.b64encode(b"junk").decode()},
            {"diff_id": "diff_12345678", "changeset": "", "dimension": "8"},
            {"diff_id": "diff_12345678", "changeset": "", "extra": 1},
            {"changeset": "AAAA"},
        ]
        for body in bad_bodies:
            response = await http.post("/push", json=body, headers=auth)
            assert response.status_code == 400, body
        assert (await http.get("/pushes/diff_unknown_123", headers=auth)).status_code == 404
        for diff_id in ("diff_12345678\n", "diff_1234567\u0661"):  # a final newline passed "$" (issue #8)
            response = await http.post("/push", json={"diff_id": diff_id, "changeset": ""}, headers=auth)
            assert response.status_code == 400 and "diff id" in response.json()["error"]["message"]
            with pytest.raises(InvalidArgumentError, match="diff id"):
                service.get_push("p", "wire", diff_id)
        assert (await http.post("/push", json=bad_bodies[0])).status_code == 401
        await http.aclose()
        await session.close()
    finally:
        await client.close()
        service.close()


# -- hostile diffs (issue #8): decode refuses them (tests/test_changeset.py), so a push applies nothing


@pytest.mark.parametrize("hostile", HOSTILE_DIFFS.values(), ids=HOSTILE_DIFFS.keys())
def test_a_hostile_push_applies_nothing(tmp_path: Path, hostile: tuple[str, str, str, str]) -> None:
    service = Service(tmp_path / "srv")
    try:
        service.create_key("p")
        with pytest.raises(InvalidArgumentError):
            service.push("p", "idx", "diff_12345678", diff_of(GOOD, hostile), model_id="custom", dimension=4)
        assert service.list_indexes("p") == [] and service.catalog.unfinished_jobs() == []
    finally:
        service.close()
