"""``custom``: the caller brings every vector, for documents and for queries.

The dimension is fixed by the index (taken from its first documents), so the
same model id serves any width; what this class adds is the checking.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InvalidArgumentError
from .base import Embedder

CUSTOM_MODEL_ID = "custom"


class CustomEmbedder(Embedder):
    model_id = CUSTOM_MODEL_ID
    computes_embeddings = False

    def __init__(self, dimension: int) -> None:
        super().__init__()
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise InvalidArgumentError(
            "the 'custom' model computes no embeddings",
            hint="pass DocumentInfo(embedding=...) for every document and QueryOptions(embedding=...) for each query",
        )

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])
