"""A ``mosslite serve --plugin`` that makes the server look like a newer release: every
JSON object it answers carries a field this client has never heard of. Clients must
go on working (wire.from_answer): a service is upgraded before its devices."""

from __future__ import annotations

import json
from typing import Any

ADDED = "added_by_a_newer_service"


def with_added_fields(value: Any) -> Any:
    """Every object gains ADDED, but a document's metadata: that is the user's data,
    not a shape of the API."""
    if isinstance(value, dict):
        kept = {k: v if k == "metadata" else with_added_fields(v) for k, v in value.items()}
        return {**kept, ADDED: {"nested": True}}
    if isinstance(value, list):
        return [with_added_fields(v) for v in value]
    return value


def mosslite_asgi_middleware(app):  # noqa: ANN001, ANN201
    async def newer(scope, receive, send):  # noqa: ANN001, ANN202
        if scope["type"] != "http":
            return await app(scope, receive, send)
        start: dict[str, Any] = {}
        body = bytearray()

        async def rewrite(message):  # noqa: ANN001, ANN202
            if message["type"] == "http.response.start":
                start.update(message)
                return None
            if not message.get("more_body"):
                headers = dict(start.get("headers", []))
                data = bytes(body) + message.get("body", b"")
                if headers.get(b"content-type", b"").startswith(b"application/json"):
                    data = json.dumps(with_added_fields(json.loads(data))).encode()
                fixed = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
                await send({**start, "headers": [*fixed, (b"content-length", str(len(data)).encode())]})
                return await send({"type": "http.response.body", "body": data})
            body.extend(message.get("body", b""))
            return None

        return await app(scope, receive, rewrite)

    return newer
