"""What an engine running MiniLM's forward pass promises (``Engine``), and the engines' names.

Two engines compute the same vectors (min cosine > 0.9999 against each other,
checked by the tests): ``onnxruntime`` (``onnx_engine``), the default because it
measured ~1.4-2x faster, and ``numpy`` (``numpy_engine``), the fallback where
onnxruntime does not import. ``MOSSLITE_MINILM_ENGINE=numpy|onnxruntime``, or
``MiniLMEmbedder(engine=...)``, forces one. Stored vectors do not record the
engine: both are the same model, so indexes built with either stay valid.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

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


__all__ = ["ENGINES", "ENGINE_ENV", "NUMPY", "ONNXRUNTIME", "Engine"]
