"""LlamaIndex: ``MossliteVectorStore`` over one mosslite index, and ``MossliteEmbedding``.

Install with ``pip install 'mosslite[llama-index]'``. Importing this module imports
``llama_index.core``; ``import mosslite`` never does. Example::

    from llama_index.core import StorageContext, VectorStoreIndex
    from mosslite import SyncMossClient
    from mosslite.integrations.llama_index import MossliteEmbedding, MossliteVectorStore

    store = MossliteVectorStore("notes", SyncMossClient("my-project", "my-key"))
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store),
                             embed_model=MossliteEmbedding())
    index.as_retriever(similarity_top_k=3).retrieve("refunds")

What it promises:
- The index keeps the nodes' own vectors (the ``custom`` model): LlamaIndex embeds
  nodes and queries with its ``embed_model``. ``MossliteEmbedding`` is one that runs
  mosslite's models on this device (moss-minilm by default), with no network.
- A node is stored as a document: its id, its text (for the keyword search), its
  metadata as mosslite's strings plus ``ref_doc_id`` (``metadata.py``), and in the
  payload LlamaIndex's own serialisation of the node without text and vector
  (``node_to_metadata_dict``: metadata, relationships, templates), from which
  queries and ``get_nodes`` rebuild it.
- Query modes: ``default`` is a vector search (alpha 1), ``hybrid`` mosslite's
  hybrid search (``alpha`` of the query, else DEFAULT_ALPHA 0.8), ``text_search``
  and ``sparse`` keyword search alone (alpha 0); similarities are mosslite's scores
  in [0, 1]. ``MetadataFilters`` map to mosslite's filters: EQ NE GT GTE LT LTE IN
  NIN, nested, with AND / OR; ``doc_ids`` filters on ``ref_doc_id``. What has no
  mosslite equivalent (another mode or operator, NOT, ``node_ids``) is an
  InvalidArgumentError (InvalidFilterError for a filter), never ignored.
- Read your writes (``index_store.py``): once ``add`` or a delete has returned, a
  query sees it. ``clear`` deletes the index. Others' writes arrive on their own
  (``auto_refresh``, on by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from ..client import MossClient, SyncMossClient
from ..embeddings import get_embedder
from ..embeddings.custom import CUSTOM_MODEL_ID
from ..errors import InvalidArgumentError, InvalidDocumentError, InvalidFilterError
from ..types import (
    DEFAULT_ALPHA,
    DEFAULT_LIVE_POLLING_INTERVAL_S,
    DEFAULT_MODEL_ID,
    DocumentInfo,
    QueryOptions,
    QueryResultDocumentInfo,
)
from .index_store import IndexStore, refuse_unknown
from .metadata import condition, from_payload, metadata_strings, payload_json

#: The payload key under which a node's LlamaIndex serialisation is kept.
PAYLOAD_KEY = "llama_index.node"
#: The metadata field holding a node's ref_doc_id: deletes and ``doc_ids`` filter on it.
REF_DOC_ID = "ref_doc_id"
#: The parts of ``node_to_metadata_dict`` that rebuild a node (``metadata_dict_to_node``).
NODE_PARTS = ("_node_content", "_node_type")

#: LlamaIndex's filter operators, as mosslite's.
OPERATORS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
}
#: Query modes, and the alpha each searches with (None: the query's, else DEFAULT_ALPHA).
MODES = {
    VectorStoreQueryMode.DEFAULT: 1.0,
    VectorStoreQueryMode.HYBRID: None,
    VectorStoreQueryMode.TEXT_SEARCH: 0.0,
    VectorStoreQueryMode.SPARSE: 0.0,
}


class MossliteVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store on the mosslite index ``index_name`` (made by the first
    ``add``). See the module docstring for what it promises. Example::

        store = MossliteVectorStore("notes", project_id="my-project", project_key="my-key")
        store.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=3))
    """

    stores_text: bool = True
    index_name: str
    _store: IndexStore = PrivateAttr()

    def __init__(
        self,
        index_name: str,
        client: MossClient | SyncMossClient | None = None,
        *,
        project_id: str | None = None,
        project_key: str | None = None,
        url: str | None = None,
        auto_refresh: bool = True,
        polling_interval_in_seconds: float = DEFAULT_LIVE_POLLING_INTERVAL_S,
    ) -> None:
        """``client``, or ``project_id`` and ``project_key`` (and ``url`` for a server)
        for a SyncMossClient of the store's own (``close`` closes it). A store made from
        an async MossClient is used through its async methods (``async_add``, ``aquery``, ...).
        ``auto_refresh`` and ``polling_interval_in_seconds``: how the index is loaded
        (``index_store.py``)."""
        store = IndexStore(
            index_name,
            client,
            project_id=project_id,
            project_key=project_key,
            url=url,
            model_id=CUSTOM_MODEL_ID,
            auto_refresh=auto_refresh,
            polling_interval_in_seconds=polling_interval_in_seconds,
        )
        super().__init__(index_name=store.name)
        self._store = store

    @classmethod
    def class_name(cls) -> str:
        return "MossliteVectorStore"

    @property
    def client(self) -> MossClient | SyncMossClient:
        return self._store.given_client

    def close(self) -> None:
        """Close the client the store made for itself (a client passed in stays open)."""
        self._store.close()

    # -- writes --------------------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Add or replace ``nodes`` (each with its embedding) by their ids."""
        refuse_unknown(kwargs, "add", takes="only nodes")
        self._store.run(self._store.upsert([_mosslite_doc(node) for node in nodes]))
        return [node.node_id for node in nodes]

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        refuse_unknown(kwargs, "add", takes="only nodes")
        await self._store.arun(self._store.upsert([_mosslite_doc(node) for node in nodes]))
        return [node.node_id for node in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document ``ref_doc_id``."""
        refuse_unknown(delete_kwargs, "delete", takes="only ref_doc_id")
        self._store.run(self._store.delete_where(filter=_of_document(ref_doc_id)))

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        refuse_unknown(delete_kwargs, "delete", takes="only ref_doc_id")
        await self._store.arun(self._store.delete_where(filter=_of_document(ref_doc_id)))

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Delete the nodes of ``node_ids`` that match ``filters`` (None: any; both None: all)."""
        refuse_unknown(delete_kwargs, "delete_nodes", takes="node_ids and filters")
        self._store.run(self._store.delete_where(node_ids, llama_index_filter(filters)))

    async def adelete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        refuse_unknown(delete_kwargs, "delete_nodes", takes="node_ids and filters")
        await self._store.arun(self._store.delete_where(node_ids, llama_index_filter(filters)))

    def clear(self) -> None:
        """Delete the index (the next ``add`` makes it again)."""
        self._store.run(self._store.clear())

    async def aclear(self) -> None:
        await self._store.arun(self._store.clear())

    # -- reads ----------------------------------------------------------------------------------

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        """The nodes of ``node_ids`` (in that order) that match ``filters``, without embeddings."""
        return [_node(doc) for doc in self._store.run(self._store.get(node_ids, llama_index_filter(filters)))]

    async def aget_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        return [_node(doc) for doc in await self._store.arun(self._store.get(node_ids, llama_index_filter(filters)))]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The best nodes for ``query`` (module docstring: modes, filters, similarities)."""
        refuse_unknown(kwargs, "query", takes="only a VectorStoreQuery")
        return _result(self._store.search(query.query_str or "", query_options(query)))

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        refuse_unknown(kwargs, "query", takes="only a VectorStoreQuery")
        return _result(await self._store.asearch(query.query_str or "", query_options(query)))


class MossliteEmbedding(BaseEmbedding):
    """A LlamaIndex embedding model running mosslite's ``model_name`` on this device,
    with no network: ``moss-minilm`` (all-MiniLM-L6-v2, the default) or
    ``hashed-ngrams-256``. Vectors are unit length; query vectors are cached. The async
    methods embed in a worker thread (the event loop goes on), a batch in one call. Example::

        VectorStoreIndex(nodes, storage_context=context, embed_model=MossliteEmbedding())
    """

    model_name: str = DEFAULT_MODEL_ID

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        get_embedder(self.model_name)  # an unknown model fails here (ModelNotFoundError), not at the first embed

    @classmethod
    def class_name(cls) -> str:
        return "MossliteEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return get_embedder(self.model_name).embed_query(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._aget_text_embeddings([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return get_embedder(self.model_name).embed(texts).tolist()

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


def query_options(query: VectorStoreQuery) -> QueryOptions:
    """``query`` as mosslite's QueryOptions (module docstring: modes, filters)."""
    if query.node_ids:
        raise InvalidArgumentError("a query cannot be limited to node_ids", hint="filter on metadata, or use get_nodes")
    if query.mode not in MODES:
        raise InvalidArgumentError(
            f"query mode {query.mode.value!r} is not supported",
            hint=f"use one of {', '.join(mode.value for mode in MODES)}",
        )
    alpha = MODES[query.mode]
    if alpha is None:
        alpha = DEFAULT_ALPHA if query.alpha is None else query.alpha
    parts = [llama_index_filter(query.filters), _of_documents(query.doc_ids)]
    filters = [part for part in parts if part is not None]
    top_k = query.similarity_top_k
    if query.mode == VectorStoreQueryMode.HYBRID and query.hybrid_top_k:
        top_k = query.hybrid_top_k
    return QueryOptions(
        top_k=top_k,
        alpha=alpha,
        filter=filters[0] if len(filters) == 1 else ({"$and": filters} if filters else None),
        embedding=query.query_embedding if alpha > 0.0 else None,
    )


def llama_index_filter(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex ``MetadataFilters`` as a mosslite filter (None for no filter)."""
    if filters is None:
        return None
    if filters.condition == FilterCondition.NOT:
        raise InvalidFilterError("a NOT condition has no mosslite equivalent", hint="negate each filter: != or nin")
    parts = [llama_index_filter(f) if isinstance(f, MetadataFilters) else _condition(f) for f in filters.filters]
    parts = [part for part in parts if part is not None]
    if len(parts) <= 1:
        return parts[0] if parts else None
    return {"$or" if filters.condition == FilterCondition.OR else "$and": parts}


def _condition(f: MetadataFilter) -> dict[str, Any]:
    op = OPERATORS.get(f.operator)
    if op is None:
        raise InvalidFilterError(
            f"the filter operator {f.operator.name} has no mosslite equivalent",
            hint=f"use one of {' '.join(o.name for o in OPERATORS)}",
        )
    return condition(f.key, {op: f.value})


def _of_document(ref_doc_id: str) -> dict[str, Any]:
    return condition(REF_DOC_ID, {"$eq": ref_doc_id})


def _of_documents(ref_doc_ids: list[str] | None) -> dict[str, Any] | None:
    return condition(REF_DOC_ID, {"$in": ref_doc_ids}) if ref_doc_ids else None


def _mosslite_doc(node: BaseNode) -> DocumentInfo:
    """``node`` as a document (module docstring: what is kept where)."""
    node_id = node.node_id
    if node.embedding is None:
        raise InvalidDocumentError(
            f"node {node_id!r} has no embedding",
            id=node_id,
            hint="embed nodes before adding them (a VectorStoreIndex does, with its embed_model)",
        )
    metadata = dict(node.metadata)
    if node.ref_doc_id is not None:
        metadata[REF_DOC_ID] = node.ref_doc_id
    serialised = node_to_metadata_dict(node, remove_text=True, flat_metadata=False)
    return DocumentInfo(
        id=node_id,
        text=node.get_content(metadata_mode=MetadataMode.NONE),
        metadata=metadata_strings(metadata, node_id),
        embedding=node.embedding,
        payload=payload_json(PAYLOAD_KEY, {part: serialised[part] for part in NODE_PARTS}, node_id),
    )


def _node(doc: DocumentInfo | QueryResultDocumentInfo) -> BaseNode:
    """The node ``_mosslite_doc`` stored; a document written through mosslite itself
    becomes a TextNode of its text and (string) metadata."""
    serialised = from_payload(PAYLOAD_KEY, doc.payload)
    if isinstance(serialised, dict) and all(isinstance(serialised.get(part), str) for part in NODE_PARTS):
        return metadata_dict_to_node(serialised, text=doc.text)
    return TextNode(id_=doc.id, text=doc.text, metadata=dict(doc.metadata or {}))


def _result(docs: list[QueryResultDocumentInfo]) -> VectorStoreQueryResult:
    return VectorStoreQueryResult(
        nodes=[_node(doc) for doc in docs], similarities=[doc.score for doc in docs], ids=[doc.id for doc in docs]
    )
