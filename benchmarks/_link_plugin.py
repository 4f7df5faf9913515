"""``mosslite serve --plugin _link_plugin``: a network link for the benchmarks.

Loopback moves bytes at memory speed, so a benchmark on it cannot show what a
smaller download is worth. With ``MOSSLITE_BENCH_LINK_BPS`` set, version
downloads and page patches leave the server at that many bytes per second (in
64 KiB pieces, each after the time the link would take to carry it); all other
routes are untouched.
"""

from __future__ import annotations

import asyncio
import os

PIECE_BYTES = 64 * 1024


def mosslite_asgi_middleware(app):
    rate = float(os.environ.get("MOSSLITE_BENCH_LINK_BPS", "0"))
    if rate <= 0:
        return app

    async def paced(scope, receive, send):
        if scope["type"] != "http" or "/versions/" not in scope.get("path", ""):
            return await app(scope, receive, send)

        async def paced_send(message):
            if message["type"] != "http.response.body":
                return await send(message)
            body, more = message.get("body", b""), message.get("more_body", False)
            for start in range(0, len(body), PIECE_BYTES):
                piece = body[start : start + PIECE_BYTES]
                await asyncio.sleep(len(piece) / rate)
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            if not more:
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await app(scope, receive, paced_send)

    return paced
