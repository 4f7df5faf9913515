"""LangChain: ``MossliteVectorStore``, a LangChain ``VectorStore`` over one mosslite index.

Install with ``pip install 'mosslite[langchain]'``. Importing this module imports
``langchain_core``; ``import mosslite`` never does. Example::

    from mosslite import SyncMossClient
    from mosslite.integrations.langchain import MossliteVectorStore

    store = MossliteVectorStore("notes", SyncMossClient("my-project", "my-key"))
    store.add_texts(["Refunds take 5 days."], metadatas=[{"year": 2024}], ids=["r1"])
    store.similarity_search("refund", k=1, filter={"year": {"$gte": 2020}})

What it promises (the standard suite of ``langchain-tests`` holds it to
LangChain's contract, in tests/integrations/test_langchain.py):
- Embeddings: mosslite's own model (``model_id``, default moss-minilm) embeds the
  documents and queries; or a LangChain ``Embeddings`` passed as ``embedding`` does,
  and the index keeps its vectors under the ``custom`` model.
- A score is mosslite's hybrid score in [0, 1], higher is closer:
  ``alpha * cosine + (1 - alpha) * keyword`` (``mosslite/index/ranking.py``), the
  keyword part being BM25 over the texts relative to the query's best hit. With
  ``alpha=1.0`` it is the cosine similarity (below 0 counted as 0). ``alpha`` is
  mosslite's DEFAULT_ALPHA (0.8) unless the store or the search says otherwise, and a
  search by vector is a vector search (alpha 1). Relevance scores are the same, so
  a ``score_threshold`` is absolute only with ``alpha=1.0`` (below, the keyword part
  is relative to each query's best hit): pass ``alpha=1.0`` beside it.
- Search arguments (``similarity_search*``, ``as_retriever(search_kwargs=...)``):
  ``k`` (mosslite's ``top_k``), ``alpha`` and ``filter``; any other is an
  InvalidArgumentError rather than ignored. A filter is mosslite's own shape, or
  LangChain's usual dict (``langchain_filter``).
- Metadata values are any JSON values, and come back as they went in (``metadata.py``).
- Read your writes (``index_store.py``): once an add or a delete has returned, a
  search sees it. ``delete()`` with no ids deletes the index. Others' writes arrive
  on their own (``auto_refresh``, on by default).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from ..client import MossClient, SyncMossClient
from ..embeddings.custom import CUSTOM_MODEL_ID
from ..errors import InvalidArgumentError, InvalidFilterError
from ..types import DEFAULT_ALPHA, DEFAULT_LIVE_POLLING_INTERVAL_S, DocumentInfo, QueryOptions, QueryResultDocumentInfo, check_batch
from .index_store import IndexStore, refuse_unknown
from .metadata import condition, from_payload, metadata_strings, payload_json

#: The payload key under which a document's exact LangChain metadata is kept.
PAYLOAD_KEY = "langchain.metadata"


class MossliteVectorStore(VectorStore):
    """A LangChain VectorStore on the mosslite index ``index_name`` (made by the first add).
    See the module docstring for what it promises. Example::

        store = MossliteVectorStore("notes", client, embedding=my_embeddings)
        retriever = store.as_retriever(search_kwargs={"k": 3, "alpha": 0.5, "filter": {"lang": "en"}})
    """

    def __init__(
        self,
        index_name: str,
        client: MossClient | SyncMossClient | None = None,
        *,
        embedding: Embeddings | None = None,
        model_id: str | None = None,
        alpha: float = DEFAULT_ALPHA,
        project_id: str | None = None,
        project_key: str | None = None,
        url: str | None = None,
        auto_refresh: bool = True,
        polling_interval_in_seconds: float = DEFAULT_LIVE_POLLING_INTERVAL_S,
    ) -> None:
        """``client``, or ``project_id`` and ``project_key`` (and ``url`` for a server) for
        a SyncMossClient of the store's own (``close`` closes it). A store made from an
        async MossClient is used through its async methods (``aadd_documents``,
        ``asimilarity_search``, ...). ``model_id`` is the mosslite model a new index is
        made with, when no ``embedding`` is given. ``auto_refresh`` and
        ``polling_interval_in_seconds``: how the index is loaded (``index_store.py``)."""
        if embedding is not None and not isinstance(embedding, Embeddings):
            raise InvalidArgumentError(f"embedding must be a LangChain Embeddings, got {type(embedding).__name__}")
        if embedding is not None and model_id not in (None, CUSTOM_MODEL_ID):
            raise InvalidArgumentError(
                f"model_id {model_id!r} and an embedding: the index keeps the embedding's vectors (the 'custom' model)",
                hint="pass one of them",
            )
        self.alpha = QueryOptions(alpha=alpha).alpha  # (checked as every search's)
        self._embedding = embedding
        self._store = IndexStore(
            index_name,
            client,
            project_id=project_id,
            project_key=project_key,
            url=url,
            model_id=CUSTOM_MODEL_ID if embedding is not None else model_id,
            auto_refresh=auto_refresh,
            polling_interval_in_seconds=polling_interval_in_seconds,
        )

    @property
    def embeddings(self) -> Embeddings | None:
        """The LangChain Embeddings given, or None: mosslite's model embeds."""
        return self._embedding

    @property
    def client(self) -> MossClient | SyncMossClient:
        return self._store.given_client

    def close(self) -> None:
        """Close the client the store made for itself (a client passed in stays open)."""
        self._store.close()

    # -- writes ---------------------------------------------------------------------------

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Add or replace ``documents`` (by ``ids=[...]``, else their ``id``, else a new uuid4)."""
        docs = _mosslite_docs(documents, _ids(documents, kwargs))
        if self._embedding is not None:
            docs = _with_vectors(docs, self._embedding.embed_documents([doc.text for doc in docs]))
        self._store.run(self._store.upsert(docs))
        return [doc.id for doc in docs]

    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        docs = _mosslite_docs(documents, _ids(documents, kwargs))
        if self._embedding is not None:
            docs = _with_vectors(docs, await self._embedding.aembed_documents([doc.text for doc in docs]))
        await self._store.arun(self._store.upsert(docs))
        return [doc.id for doc in docs]

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete the documents of ``ids`` (ids not there are no error); with None, the index."""
        refuse_unknown(kwargs, "delete", takes="only ids")
        self._store.run(self._store.clear() if ids is None else self._store.delete(ids))
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        refuse_unknown(kwargs, "delete", takes="only ids")
        await self._store.arun(self._store.clear() if ids is None else self._store.delete(ids))
        return True

    # -- lookups and searches -------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return [_langchain_doc(doc) for doc in self._store.run(self._store.get(ids))]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return [_langchain_doc(doc) for doc in await self._store.arun(self._store.get(ids))]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` best documents for ``query``, each with its score (module docstring)."""
        options = self._options(k, kwargs)
        if self._embedding is not None and options.alpha > 0.0:  # (alpha 0: no vector to make)
            options = dataclasses.replace(options, embedding=self._embedding.embed_query(query))
        return _scored(self._store.search(query, options))

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        options = self._options(k, kwargs)
        if self._embedding is not None and options.alpha > 0.0:
            options = dataclasses.replace(options, embedding=await self._embedding.aembed_query(query))
        return _scored(await self._store.asearch(query, options))

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` documents closest to ``embedding`` (a vector search); takes ``filter``."""
        return [doc for doc, _ in _scored(self._store.search("", self._vector_options(embedding, k, kwargs)))]

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in _scored(await self._store.asearch("", self._vector_options(embedding, k, kwargs)))]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Scores already lie in [0, 1], higher is closer: relevance is the score."""
        return _relevance

    def _options(self, k: int, kwargs: Mapping[str, Any]) -> QueryOptions:
        """A search's options, checked before any embedding is made."""
        refuse_unknown(kwargs, "a search", ("alpha", "filter"), takes="k, alpha and filter")
        alpha = kwargs.get("alpha", self.alpha)
        return QueryOptions(top_k=k, alpha=alpha, filter=langchain_filter(kwargs.get("filter")))

    def _vector_options(self, embedding: list[float], k: int, kwargs: Mapping[str, Any]) -> QueryOptions:
        refuse_unknown(kwargs, "a search by vector", ("filter",), takes="k and filter")
        return QueryOptions(top_k=k, alpha=1.0, filter=langchain_filter(kwargs.get("filter")), embedding=embedding)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls, texts: list[str], embedding: Embeddings | None = None, metadatas: list[dict] | None = None, **kwargs: Any
    ) -> MossliteVectorStore:
        """A store holding ``texts``. ``kwargs`` are ``ids=`` and the constructor's:
        ``index_name=`` (required), ``client=`` or ``project_id=``/``project_key=``,
        ``alpha=`` ...; ``embedding`` None: mosslite's model embeds."""
        ids = kwargs.pop("ids", None)
        store = cls(embedding=embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(
        cls, texts: list[str], embedding: Embeddings | None = None, metadatas: list[dict] | None = None, **kwargs: Any
    ) -> MossliteVectorStore:
        ids = kwargs.pop("ids", None)
        store = cls(embedding=embedding, **kwargs)
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store


def langchain_filter(spec: Any) -> dict[str, Any] | None:
    """A LangChain filter as mosslite's. Mosslite's own shape stays as it is; LangChain's
    usual dict becomes it: ``{"genre": "jazz"}`` is ``$eq``, ``{"year": {"$gte": 2020,
    "$lt": 2025}}`` takes mosslite's operators, several fields must all hold, and
    ``{"$and": [...]}`` / ``{"$or": [...]}`` nest. None or ``{}``: no filter. What is left
    malformed is mosslite's InvalidFilterError, before any search."""
    if spec is None or (isinstance(spec, Mapping) and not spec):
        return None
    if not isinstance(spec, Mapping):
        raise InvalidFilterError(f"a filter is a dict, got {type(spec).__name__}")
    if len(spec) == 1 and next(iter(spec)) in ("$and", "$or"):
        ((key, parts),) = spec.items()
        if not isinstance(parts, list):
            raise InvalidFilterError(f"{key} takes a list of filters, got {type(parts).__name__}")
        return {key: [langchain_filter(part) for part in parts]}
    if set(spec) == {"field", "condition"} and _operators(spec["condition"]):  # mosslite's own shape
        return condition(spec["field"], spec["condition"])
    conditions = [
        condition(field, value if _operators(value) else {"$eq": value}) for field, value in spec.items()
    ]
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def _operators(value: Any) -> bool:
    """Whether ``value`` is a condition's operators, such as ``{"$gte": 2020}``."""
    return isinstance(value, Mapping) and bool(value) and all(str(op).startswith("$") for op in value)


def _ids(documents: Sequence[Document], kwargs: dict[str, Any]) -> list[str]:
    """Each document's id: ``ids[i]``, else ``documents[i].id``, else a new uuid4."""
    ids = kwargs.pop("ids", None)
    refuse_unknown(kwargs, "an add", takes="only ids")
    if ids is None:
        ids = [None] * len(documents)
    elif len(ids) != len(documents):
        raise InvalidArgumentError(f"{len(ids)} ids for {len(documents)} documents")
    return [given or doc.id or str(uuid.uuid4()) for given, doc in zip(ids, documents)]


def _mosslite_docs(documents: Sequence[Document], ids: Sequence[str]) -> list[DocumentInfo]:
    """The documents as mosslite's, checked (before anything is embedded): metadata as
    strings, and the exact values in the payload when some value is not a string."""
    out = []
    for doc, doc_id in zip(documents, ids):
        metadata = doc.metadata or {}
        strings = metadata_strings(metadata, doc_id)
        payload = None if strings == metadata else payload_json(PAYLOAD_KEY, metadata, doc_id)
        out.append(DocumentInfo(id=doc_id, text=doc.page_content, metadata=strings, payload=payload))
    return check_batch(out)


def _with_vectors(docs: list[DocumentInfo], vectors: Sequence[Sequence[float]]) -> list[DocumentInfo]:
    if len(vectors) != len(docs):
        raise InvalidArgumentError(f"the embeddings gave {len(vectors)} vectors for {len(docs)} documents")
    return [dataclasses.replace(doc, embedding=vector) for doc, vector in zip(docs, vectors)]


def _langchain_doc(doc: DocumentInfo | QueryResultDocumentInfo) -> Document:
    metadata = from_payload(PAYLOAD_KEY, doc.payload)
    if not isinstance(metadata, dict):
        metadata = dict(doc.metadata or {})
    return Document(id=doc.id, page_content=doc.text, metadata=metadata)


def _scored(docs: Iterable[QueryResultDocumentInfo]) -> list[tuple[Document, float]]:
    return [(_langchain_doc(doc), doc.score) for doc in docs]


def _relevance(score: float) -> float:
    return score
