"""Which engine runs MiniLM's forward pass: the one asked for, else onnxruntime if it
imports, else numpy (``engine.py`` says why two, and what both promise).

The engines are imported only when chosen: onnxruntime costs its import time
only to a process that embeds with it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import numpy as np

from ...errors import InvalidArgumentError
from .engine import ENGINE_ENV, ENGINES, ONNXRUNTIME, Engine

log = logging.getLogger("mosslite.embeddings")


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


__all__ = ["check_engine_name", "create_engine", "requested_engine"]
