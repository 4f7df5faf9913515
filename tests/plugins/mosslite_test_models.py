"""Embedders for fault tests, loaded into `mosslite serve --plugin mosslite_test_models`.

- ``flaky-hashed``: raises mid-build when a text contains EXPLODE (a model crash).
- ``slow-hashed``: sleeps per batch, so a test can kill the service mid-build.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

from mosslite.embeddings import register
from mosslite.embeddings.hashed import HashedNgramEmbedder

SLOW_BATCH_S = float(os.environ.get("MOSSLITE_TEST_SLOW_BATCH_S", "0.3"))


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


register(FlakyEmbedder.model_id, FlakyEmbedder)
register(SlowEmbedder.model_id, SlowEmbedder)
