"""The embedder contract: a model id, a dimension, and a batched ``embed``."""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from ..errors import DimensionMismatchError, InvalidArgumentError

QUERY_CACHE_SIZE = 1024


class Embedder(ABC):
    """Turns texts into L2-normalised float32 rows.

    Contract: ``embed(texts)`` returns an array of shape ``(len(texts), dimension)``,
    dtype float32, each row of unit length (or all zeros for a text with no
    signal), so cosine similarity is a dot product. It is safe to call from many
    threads. ``embed_query`` caches by text: agents repeat queries often, and a
    transformer forward pass costs milliseconds.
    """

    model_id: str
    dimension: int
    #: False for ``custom``: the caller supplies every vector.
    computes_embeddings: bool = True
    #: True for a model that keeps every core busy for a query (a transformer): the
    #: reader then picks a vector search that leaves no threads spinning (index/vectors/choice.py).
    needs_the_cores: bool = False

    def __init__(self) -> None:
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed a batch; see the class docstring for the contract."""

    @property
    def loaded(self) -> bool:
        """False while the first ``embed`` would load weights (seconds, for a transformer):
        a caller timing queries calls ``load`` first, so a query's time is the query's."""
        return True

    def load(self) -> None:
        """Load the weights now rather than at the first ``embed``; for a model with
        nothing to load (hashed, custom) there is nothing to do."""

    def embed_query(self, text: str) -> np.ndarray:
        with self._cache_lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        vector = self.embed([text])[0]
        vector.setflags(write=False)
        with self._cache_lock:
            self._cache[text] = vector
            if len(self._cache) > QUERY_CACHE_SIZE:
                self._cache.popitem(last=False)
        return vector

    def query_vector(self, text: str, given: np.ndarray | None, *, kind: str, name: str) -> np.ndarray:
        """A query's embedding: ``given`` (``QueryOptions.vector``), checked, or ``text``
        embedded (cached). ``kind`` and ``name`` ("index", "faq") say who asks, for the
        error a custom model gives when no vector came with the query."""
        if given is not None:
            return self.check_vector(given, "query embedding")
        if not self.computes_embeddings:
            raise InvalidArgumentError(
                f"{kind} {name!r} uses the custom model: pass QueryOptions(embedding=[...])", index=name
            )
        return self.embed_query(text)

    def check_vector(self, vector: Sequence[float] | np.ndarray, what: str = "embedding") -> np.ndarray:
        """A caller-supplied vector, as a normalised float32 row of the right length."""
        arr = np.asarray(vector, dtype=np.float32).reshape(-1)
        if arr.shape[0] != self.dimension:
            raise DimensionMismatchError(
                f"{what} has {arr.shape[0]} dimensions; model {self.model_id!r} uses {self.dimension}",
                expected=self.dimension,
                got=int(arr.shape[0]),
            )
        # One vector: a dot product is ~15 us cheaper than normalise_rows' np.linalg.norm.
        return arr / max(math.sqrt(arr @ arr), 1e-12)


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Unit-length rows (zero rows stay zero), float32, C-contiguous."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return matrix / norms
