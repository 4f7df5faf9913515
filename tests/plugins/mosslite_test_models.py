"""Embedders for fault tests, loaded into `mosslite serve --plugin mosslite_test_models`.

- ``flaky-hashed``: raises mid-build when a text contains EXPLODE (a model crash).
- ``slow-hashed``: sleeps per batch, so a test can kill the service mid-build.
- ``gated-hashed``: embeds only once the file named by $MOSSLITE_TEST_GATE exists, so
  a test holds a job mid-build for as long as it needs, without timing anything.
- ``gated-intake``: the same gate, held while the service takes a mutation's documents.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

from mosslite.embeddings import register
from mosslite.embeddings.hashed import HashedNgramEmbedder

SLOW_BATCH_S = float(os.environ.get("MOSSLITE_TEST_SLOW_BATCH_S", "0.3"))
GATE_ENV = "MOSSLITE_TEST_GATE"
#: How long a gated build waits at most for its gate (a test that forgot to open it).
GATE_TIMEOUT_S = 120.0


class FlakyEmbedder(HashedNgramEmbedder):
    model_id = "flaky-hashed"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if any("EXPLODE" in t for t in texts):
            raise RuntimeError("the model crashed on purpose")
        return super().embed(texts)


class SlowEmbedder(HashedNgramEmbedder):
    model_id = "slow-hashed"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        time.sleep(SLOW_BATCH_S)
        return super().embed(texts)


class GatedEmbedder(HashedNgramEmbedder):
    model_id = "gated-hashed"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        gate = os.environ.get(GATE_ENV)
        deadline = time.monotonic() + GATE_TIMEOUT_S
        while gate and not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)
        return super().embed(texts)


class GatedIntakeEmbedder(HashedNgramEmbedder):
    """Holds the service's intake of a mutation (which asks whether the model computes
    embeddings, then reads the documents): it touches ``<gate>.reached`` and waits for
    the gate, so a test can press Ctrl-C while the documents are being sent."""

    model_id = "gated-intake"

    @property
    def computes_embeddings(self) -> bool:  # type: ignore[override]
        gate = os.environ.get(GATE_ENV)
        if gate:
            open(gate + ".reached", "w").close()
            deadline = time.monotonic() + GATE_TIMEOUT_S
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.02)
        return True


register(FlakyEmbedder.model_id, FlakyEmbedder)
register(GatedIntakeEmbedder.model_id, GatedIntakeEmbedder)
register(SlowEmbedder.model_id, SlowEmbedder)
register(GatedEmbedder.model_id, GatedEmbedder)


def mosslite_asgi_middleware(app):
    """A slow endpoint: version downloads and page patches of indexes whose names start
    with MOSSLITE_TEST_THROTTLE_PREFIX (default ``slow-``) leave at
    MOSSLITE_TEST_THROTTLE_BPS bytes per second (off when unset), in 64 KiB pieces.
    The tests use it to show that one index's slow download never holds up another's;
    benchmarks/hydrate.py, with an empty prefix, as a slow network link."""
    import asyncio

    rate = float(os.environ.get("MOSSLITE_TEST_THROTTLE_BPS", "0"))
    prefix = os.environ.get("MOSSLITE_TEST_THROTTLE_PREFIX", "slow-")
    if rate <= 0:
        return app
    piece_bytes = 64 * 1024

    async def throttled(scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if f"/indexes/{prefix}" not in path or "/versions/" not in path:
            return await app(scope, receive, send)

        async def slow_send(message):
            if message["type"] != "http.response.body":
                return await send(message)
            body, more = message.get("body", b""), message.get("more_body", False)
            for start in range(0, len(body), piece_bytes):
                piece = body[start : start + piece_bytes]
                await asyncio.sleep(len(piece) / rate)
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            if not more:
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await app(scope, receive, slow_send)

    return throttled
