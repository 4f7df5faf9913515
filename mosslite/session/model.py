"""The model a session's vectors belong to: chosen at open, kept one for good (issue #8).

Invariants:
- Every document of a session has its model's vectors, of its dimension (the
  store's ``meta``: ``model_id``, ``dimension``). ``choose`` picks the model at
  open: the index's when the service has it (an explicit other ``model_id`` is
  an InvalidArgumentError), else the one the file already holds, else the one
  asked for, else ``DEFAULT_MODEL_ID``.
- A ``custom`` session computes no vectors: its first documents (or the index it
  mirrors, ``adopt_dimension``) fix its dimension, and every document carries
  its embedding.
- An index made again with another model or dimension is never merged in
  (``check_base``): refused before anything is downloaded or written.
- A text stored unchanged keeps its vector: an upsert re-embeds only new texts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from ..embeddings import Embedder, get_embedder
from ..errors import DimensionMismatchError, InvalidArgumentError, InvalidDocumentError
from ..rows import vector_blob
from ..types import DEFAULT_MODEL_ID, DocumentInfo, IndexInfo
from .store import SessionStore

CUSTOM = "custom"


class SessionModel:
    """The session's model id and its embedder (None: a ``custom`` session with no
    dimension yet). Example::

        model = SessionModel("call-123", path, store)
        await model.choose(None, await transport.get_index("call-123"))
        blobs = await model.vectors(docs, model.embedder)
    """

    def __init__(self, name: str, path: Path, store: SessionStore) -> None:
        self.name = name
        self.path = path
        self.store = store
        self.model_id = DEFAULT_MODEL_ID
        self.embedder: Embedder | None = None

    @property
    def dimension(self) -> int | None:
        return self.embedder.dimension if self.embedder is not None else None

    async def choose(self, requested: str | None, info: IndexInfo | None) -> None:
        """Settle the model at open: ``requested`` is the caller's ``model_id``, ``info``
        the index as the service has it (None: none, or not asked)."""
        meta = self.store.meta()
        stored_model = meta.get("model_id")
        stored_dim = int(meta["dimension"]) if meta.get("dimension") else None
        if info is not None:
            if requested is not None and requested != info.model:
                raise InvalidArgumentError(
                    f"index {self.name!r} uses model {info.model!r}, not {requested!r}",
                    index=self.name,
                    hint="omit model_id: a session adopts its index's model",
                )
            if stored_model is not None:
                self.check_base(stored_model, stored_dim, info.model, info.dimension)
            model, dimension = info.model, info.dimension
        else:
            if stored_model is not None and requested is not None and requested != stored_model:
                raise InvalidArgumentError(
                    f"session {self.name!r} uses model {stored_model!r}, not {requested!r}", index=self.name
                )
            model, dimension = stored_model or requested or DEFAULT_MODEL_ID, stored_dim
        self.model_id = model
        if model != CUSTOM or dimension is not None:
            self.embedder = await asyncio.to_thread(get_embedder, model, dimension=dimension)
            dimension = self.embedder.dimension
        self.store.set_meta(index_name=self.name, model_id=model, dimension=dimension or "")

    def check_base(self, model: str, dimension: int | None, index_model: str, index_dimension: int) -> None:
        """Refuse to mirror an index whose vectors this session cannot hold.

        Invariant (issue #8): the session's documents all have its model's vectors of
        its dimension (``meta``). An index deleted and made again with another model
        or dimension is never merged in (a mix no longer loads, and no push can land):
        DimensionMismatchError or InvalidArgumentError, raised before anything is
        downloaded or written, with the session file left as it was. ``dimension``
        None: a custom session with no documents yet, which takes the index's."""
        if model == index_model and dimension in (None, index_dimension):
            return
        pending = self.store.pending_count()
        if pending:
            hint = (
                f"its {pending} unpushed change(s) are kept and still served (get_docs() reads them); to push "
                f"them as they are, delete the index on the service first (push_index() then makes it again); "
                f"to follow the new index instead, close the session and delete {self.path} (this loses them)"
            )
        else:
            hint = f"nothing in it is unpushed: close the session and delete {self.path}, then open it again"
        if model != index_model:
            raise InvalidArgumentError(
                f"the local session {self.name!r} holds model {model!r} documents, but index {self.name!r} "
                f"now uses model {index_model!r}",
                index=self.name,
                hint=hint,
            )
        raise DimensionMismatchError(
            f"the local session {self.name!r} holds {dimension}-dimensional vectors, but index "
            f"{self.name!r} (model {index_model!r}) now has {index_dimension} dimensions",
            index=self.name,
            hint=hint,
        )

    def adopt_dimension(self, dimension: int) -> None:
        """A custom session with no documents yet takes the dimension of the index it mirrors."""
        if self.embedder is None:
            self.embedder = get_embedder(self.model_id, dimension=dimension)
            self.store.set_meta(dimension=self.embedder.dimension)

    def embedder_for(self, docs: list[DocumentInfo]) -> tuple[Embedder, dict[str, object]]:
        """The embedder for a write of ``docs``, and the meta it sets: a custom session's
        first documents fix its dimension (``{"dimension": n}``), else nothing."""
        if self.embedder is not None:
            return self.embedder, {}
        first = next((d for d in docs if d.embedding is not None), None)
        if first is None:
            raise InvalidDocumentError(
                f"document {docs[0].id!r} has no embedding, and model 'custom' computes none", id=docs[0].id
            )
        embedder = get_embedder(CUSTOM, dimension=len(first.embedding))  # type: ignore[arg-type]
        return embedder, {"dimension": embedder.dimension}

    async def vectors(self, docs: Sequence[DocumentInfo], embedder: Embedder) -> list[bytes]:
        """One float32 blob per doc: supplied (checked, normalised), reused, or embedded."""
        blobs: list[bytes | None] = [None] * len(docs)
        missing: list[int] = []
        for i, doc in enumerate(docs):
            if doc.embedding is not None:
                blobs[i] = vector_blob(embedder.check_vector(doc.embedding, f"embedding of document {doc.id!r}"))
            elif not embedder.computes_embeddings:
                raise InvalidDocumentError(
                    f"document {doc.id!r} has no embedding, and model {embedder.model_id!r} computes none",
                    id=doc.id,
                    hint="pass DocumentInfo(embedding=[...]) for every document of a custom session",
                )
            else:
                missing.append(i)
        if missing:
            existing = self.store.existing([docs[i].id for i in missing])
            to_embed = []
            for i in missing:
                old = existing.get(docs[i].id)
                if old is not None and old[0] == docs[i].text:
                    blobs[i] = old[1]
                else:
                    to_embed.append(i)
            if to_embed:
                vectors = await asyncio.to_thread(embedder.embed, [docs[i].text for i in to_embed])
                for i, vector in zip(to_embed, vectors):
                    blobs[i] = vector_blob(vector)
        return [b for b in blobs if b is not None]
