"""The push routes speak the shapes of schemas/wire/push_*.json, and refuse bad bodies."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import apsw
import httpx
import jsonschema
import numpy as np
import pytest

from mosslite import DocumentInfo, MossClient
from mosslite._db import read_schema
from mosslite.transport.http import HTTPTransport
from mosslite.errors import InvalidArgumentError
from mosslite.service import Service
from mosslite.service.http import create_app
from mosslite.changeset import decode, record

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


# -- hostile diffs (issue #8) --------------------------------------------------------

VECTOR = np.ones(4, dtype="<f4").tobytes()
INSERT_SQL = "INSERT INTO docs (id, text, metadata, payload, embedding) VALUES ({}, {}, {}, NULL, {})"


def diff_of(*inserts: tuple[str, str, str, str], **params: object) -> bytes:
    """A changeset of a session's ``docs`` table (the real schema) inserting rows given
    as SQL expressions (id, text, metadata, embedding), with ``:vector`` and ``params``
    bound: bytes a session cannot write, such as invalid UTF-8, come from CAST(x'..' AS TEXT)."""
    conn = apsw.Connection(":memory:")
    conn.execute(read_schema("session.sql"))
    recorder = record(conn)
    for row in inserts:
        conn.execute(INSERT_SQL.format(*row), {"vector": VECTOR, **params})
    changeset = recorder.changeset()
    recorder.close()
    conn.close()
    return changeset


def sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


GOOD = ("'good'", "'fine'", "'{}'", ":vector")
HOSTILE_DIFFS = {
    "a huge number in metadata": ("'d'", "'t'", sql_text('{"n": ' + "9" * 5000 + "}"), ":vector"),
    "an infinite number in metadata": ("'d'", "'t'", sql_text('{"n": 1e99999}'), ":vector"),
    "deeply nested metadata": ("'d'", "'t'", sql_text('{"n": ' + "[" * 50_000 + "]" * 50_000 + "}"), ":vector"),
    "metadata that is not an object": ("'d'", "'t'", sql_text('["a"]'), ":vector"),
    "metadata that is not JSON": ("'d'", "'t'", sql_text("{nope"), ":vector"),
    "invalid UTF-8 in a text": ("'d'", "CAST(x'ff61' AS TEXT)", "'{}'", ":vector"),
    "invalid UTF-8 in an id": ("CAST(x'61ff' AS TEXT)", "'t'", "'{}'", ":vector"),
    "invalid UTF-8 in metadata": ("'d'", "'t'", "CAST(x'7b2261223a2022ff227d' AS TEXT)", ":vector"),
    "a lone surrogate in a text": ("'d'", "CAST(x'eda080' AS TEXT)", "'{}'", ":vector"),
    "a lone surrogate in an id": ("CAST(x'eda080' AS TEXT)", "'t'", "'{}'", ":vector"),
    "an escaped lone surrogate as a metadata key": ("'d'", "'t'", sql_text('{"\\ud800": "x"}'), ":vector"),
    "an escaped lone surrogate as a metadata value": ("'d'", "'t'", sql_text('{"k": "a\\udc00"}'), ":vector"),
    "a NaN in the embedding": ("'d'", "'t'", "'{}'", "x'" + np.full(4, np.nan, dtype="<f4").tobytes().hex() + "'"),
    "an id DocumentInfo refuses": ("'   '", "'t'", "'{}'", ":vector"),
    "a text over the size limit": ("'d'", "printf('%.*c', 300000, 'x')", "'{}'", ":vector"),
}


@pytest.mark.parametrize("hostile", HOSTILE_DIFFS.values(), ids=HOSTILE_DIFFS.keys())
def test_a_hostile_diff_is_refused_when_decoded(hostile: tuple[str, str, str, str]) -> None:
    # Each was a UnicodeDecodeError, ValueError or RecursionError, or passed decode and
    # failed later (a 500, or a job that failed) instead of a 400.
    with pytest.raises(InvalidArgumentError):
        decode(diff_of(GOOD, hostile))


def test_what_decode_accepts_makes_documents() -> None:
    metadata = json.dumps({"k": "v\x00", "ü": "\U0001f600"}, ensure_ascii=False)
    [change] = decode(diff_of(("'d'", ":text", ":metadata", ":vector"), text="a\x00b \U0001f600", metadata=metadata))
    doc = change.document()
    assert (doc.id, doc.text, doc.embedding) == ("d", "a\x00b \U0001f600", (1.0,) * 4)
    assert doc.metadata == {"k": "v\x00", "ü": "\U0001f600"}


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
