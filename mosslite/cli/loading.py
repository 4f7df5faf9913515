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
from ..types import LoadedIndexInfo
from .output import duration, plural, say, spinner


async def load_for_queries(client: Any, name: str) -> LoadedIndexInfo:
    """Load index ``name`` and its model; say on stderr what was loaded, in how long."""
    started = time.perf_counter()
    with spinner(f"loading index {name}…"):
        info = await client.load_index(name)
    stale = " (a cached copy: the service could not be checked)" if info.stale else ""
    loaded_ms = (time.perf_counter() - started) * 1000
    say(f"index {name} v{info.version} loaded ({plural(info.doc_count, 'document')}) in {duration(loaded_ms)}{stale}")
    if info.model_id != CUSTOM_MODEL_ID:  # (the custom model has nothing to load: queries bring vectors)
        model = get_embedder(info.model_id)
        if not model.loaded:
            started = time.perf_counter()
            with spinner(f"loading model {info.model_id}…"):
                await asyncio.to_thread(model.load)
            say(f"model {info.model_id} loaded in {duration((time.perf_counter() - started) * 1000)}")
    return info


__all__ = ["load_for_queries"]
