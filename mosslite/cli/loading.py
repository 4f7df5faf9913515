"""Loading an index and its model before the first query, each timed and said on stderr.

Why (issue #12): ``mosslite query faqm "refund"`` reported "1 results in 1743.30 ms"
on every run, beside a README that promises about a millisecond: the first query
of a process loaded the model (MiniLM's weights and engine), and that was counted
as the query's time. Now the index (``MossClient.load_index``) and then the model
(``Embedder.load``) are loaded first, each with a spinner on a terminal and a line
on stderr saying how long it took, so the time a result reports is the query's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..embeddings import get_embedder
from ..embeddings.custom import CUSTOM_MODEL_ID
from ..index.keyword import has_words
from ..types import LoadedIndexInfo
from .output import duration, plural, say, spinner


async def load_for_queries(client: Any, name: str, text: str | None = None) -> LoadedIndexInfo:
    """Load index ``name`` and its model; say on stderr what was loaded, in how long.
    A query ``text`` with no word in it is answered without the model (no documents),
    so the model is not loaded for it."""
    started = time.perf_counter()
    with spinner(f"loading index {name}…"):
        info = await client.load_index(name)
    stale = " (a cached copy: the service could not be checked)" if info.stale else ""
    loaded_ms = (time.perf_counter() - started) * 1000
    say(f"index {name} v{info.version} loaded ({plural(info.doc_count, 'document')}) in {duration(loaded_ms)}{stale}")
    if text is None or has_words(text):
        await asyncio.to_thread(load_model, info.model_id)
    return info


def load_model(model_id: str) -> None:
    """Load ``model_id``'s weights now, timed and said on stderr, so that the first query
    does not pay for them (the custom model has nothing to load: queries bring vectors)."""
    if model_id == CUSTOM_MODEL_ID:
        return
    model = get_embedder(model_id)
    if model.loaded:
        return
    started = time.perf_counter()
    with spinner(f"loading model {model_id}…"):
        model.load()
    say(f"model {model_id} loaded in {duration((time.perf_counter() - started) * 1000)}")


__all__ = ["load_for_queries", "load_model"]
