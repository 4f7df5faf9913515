"""Which engine runs MiniLM's forward pass: the contract, and the choice.

Two engines compute the same vectors (min cosine > 0.9999 against each other,
checked by the tests): ``onnxruntime`` (``onnx_engine``), the default because it
measured ~1.4-2x faster, and ``numpy`` (``numpy_engine``), the fallback where
onnxruntime does not import. ``MOSSLITE_MINILM_ENGINE=numpy|onnxruntime``, or
``MiniLMEmbedder(engine=...)``, forces one. Stored vectors do not record the
engine: both are the same model, so indexes built with either stay valid.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import numpy as np

from ...errors import InvalidArgumentError

log = logging.getLogger("mosslite.embeddings")

ENGINE_ENV = "MOSSLITE_MINILM_ENGINE"
ONNXRUNTIME = "onnxruntime"
NUMPY = "numpy"
#: In order of preference.
ENGINES = (ONNXRUNTIME, NUMPY)


class Engine(ABC):
    """Runs the transformer: token ids in, mean-pooled final hidden states out.

    Contract: ``pooled(token_ids)`` takes one or more sequences of token ids
    (``[CLS] ... [SEP]``, at most 256 each, shortest first is fastest) and
    returns a ``(len(token_ids), 384)`` float32 array whose row i is the mean
    of sequence i's final hidden states, not yet normalised. A row does not
    depend on the other sequences of the call (beyond float32 rounding). Safe
    to call from many threads at once. An engine is built from checkpoint
    tensors that were already verified, and copies what it keeps.
    """

    #: One of ``ENGINES``.
    name: str

    @abstractmethod
    def pooled(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Mean-pooled hidden states; see the class docstring."""


def check_engine_name(name: str | None, *, source: str = "engine") -> str | None:
    """``name`` if it names an engine (or is None/empty, for "choose"), else ``InvalidArgumentError``."""
    if not name:
        return None
    if name not in ENGINES:
        raise InvalidArgumentError(
            f"{source}={name!r} names no MiniLM engine",
            hint=f"use one of {list(ENGINES)}, or leave it unset to use onnxruntime when it imports",
        )
    return name


def requested_engine(explicit: str | None) -> str | None:
    """The engine asked for: ``explicit`` if given, else ``$MOSSLITE_MINILM_ENGINE``, else None."""
    if explicit:
        return check_engine_name(explicit)
    return check_engine_name(os.environ.get(ENGINE_ENV, "").strip(), source=ENGINE_ENV)


def create_engine(tensors: Mapping[str, np.ndarray], requested: str | None) -> Engine:
    """The requested engine, or onnxruntime if it imports, else numpy.

    Asking for onnxruntime where it does not import is an error rather than a
    silent fallback: whoever forced it wants to know. The import is attempted
    on every call (cheap once loaded), so a test can hide the module.
    """
    if requested in (None, ONNXRUNTIME):
        try:
            import onnx  # noqa: F401 - both must import; onnx_engine imports them too
            import onnxruntime  # noqa: F401

            from .onnx_engine import OnnxEngine
        except ImportError as exc:
            if requested == ONNXRUNTIME:
                raise InvalidArgumentError(
                    f"the MiniLM engine 'onnxruntime' was asked for, but it does not import: {exc}",
                    hint=f"pip install onnxruntime onnx, or set {ENGINE_ENV}=numpy",
                ) from exc
            log.warning("onnxruntime does not import (%s); MiniLM falls back to the slower numpy engine", exc)
        else:
            return OnnxEngine(tensors)
    from .numpy_engine import NumpyEngine

    return NumpyEngine(tensors)


__all__ = ["ENGINES", "ENGINE_ENV", "Engine", "check_engine_name", "create_engine", "requested_engine"]
