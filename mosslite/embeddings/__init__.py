"""The embedder registry: model id -> Embedder.

Instances are shared per process (a transformer's weights are loaded once);
``custom`` gets one instance per dimension.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..errors import InvalidArgumentError, ModelNotFoundError
from ..types import DEFAULT_MODEL_ID
from .base import Embedder, normalise_rows
from .custom import CUSTOM_MODEL_ID, CustomEmbedder
from .hashed import HashedNgramEmbedder


def _minilm() -> Embedder:
    # Imported on first use: tokenizers and the weights are not needed by indexes of other models.
    from .minilm import MiniLMEmbedder

    return MiniLMEmbedder()


MODELS: dict[str, Callable[[], Embedder]] = {
    DEFAULT_MODEL_ID: _minilm,
    HashedNgramEmbedder.model_id: HashedNgramEmbedder,
}

_instances: dict[tuple[str, int | None], Embedder] = {}
_lock = threading.Lock()


def register(model_id: str, factory: Callable[[], Embedder]) -> None:
    """Add an embedder under ``model_id`` (e.g. from a ``mosslite serve --plugin`` module)."""
    if model_id == CUSTOM_MODEL_ID:
        raise InvalidArgumentError(f"{CUSTOM_MODEL_ID!r} is reserved")
    with _lock:
        MODELS[model_id] = factory
        _instances.pop((model_id, None), None)


def model_ids() -> list[str]:
    return sorted([*MODELS, CUSTOM_MODEL_ID])


def get_embedder(model_id: str | None = None, *, dimension: int | None = None) -> Embedder:
    """The shared embedder for ``model_id`` (default ``moss-minilm``).

    ``dimension`` is required for ``custom`` and, for the others, checked
    against the model's own width when given (a stored index names both).
    """
    if model_id is None:
        model_id = DEFAULT_MODEL_ID
    elif not isinstance(model_id, str):
        raise InvalidArgumentError(f"a model id is a string, got {type(model_id).__name__}", hint=f"one of {model_ids()}")
    if model_id == CUSTOM_MODEL_ID:
        if isinstance(dimension, bool) or not isinstance(dimension, int) or not 1 <= dimension <= 8192:
            raise InvalidArgumentError(f"the custom model needs a dimension from 1 to 8192, got {dimension!r}")
        key: tuple[str, int | None] = (model_id, dimension)
        factory: Callable[[], Embedder] = lambda: CustomEmbedder(dimension)  # noqa: E731
    else:
        if model_id not in MODELS:
            raise ModelNotFoundError(f"unknown model id {model_id!r}", hint=f"choose one of {model_ids()}")
        key, factory = (model_id, None), MODELS[model_id]
    with _lock:
        embedder = _instances.get(key)
        if embedder is None:
            embedder = _instances[key] = factory()
    if dimension is not None and embedder.dimension != dimension:
        raise InvalidArgumentError(
            f"model {model_id!r} has {embedder.dimension} dimensions, not {dimension}",
        )
    return embedder


__all__ = ["Embedder", "get_embedder", "model_ids", "normalise_rows", "register"]
