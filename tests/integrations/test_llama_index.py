"""MossliteVectorStore for LlamaIndex: a VectorStoreIndex built and queried over it, with
mosslite's own dependency-free model as a deterministic, local embed_model (no network)."""

from __future__ import annotations

import threading

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.schema import NodeRelationship, TextNode
from llama_index.core.vector_stores.types import (
    ExactMatchFilter,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from mosslite import DocumentInfo, MossClient, SyncMossClient
from mosslite.client.embedded import close_embedded_services
from mosslite.errors import InvalidArgumentError, InvalidDocumentError, InvalidFilterError, ModelNotFoundError
from mosslite.integrations.llama_index import MossliteEmbedding, MossliteVectorStore, llama_index_filter

from ..client.conftest import Target
from .conftest import seen_within

pytestmark = pytest.mark.anyio

EMBED = MossliteEmbedding(model_name="hashed-ngrams-256")
DOCS = [
    Document(doc_id="refunds", text="Refunds are paid within five days.", metadata={"lang": "en", "year": 2024}),
    Document(doc_id="shipping", text="Standard shipping takes three days.", metadata={"lang": "en", "year": 2019}),
    Document(doc_id="erstattung", text="Erstattungen kommen in fünf Tagen.", metadata={"lang": "de", "year": 2024}),
]


@pytest.fixture
def store(client: SyncMossClient) -> MossliteVectorStore:
    return MossliteVectorStore("docs", client)


@pytest.fixture
def index(store: MossliteVectorStore) -> VectorStoreIndex:
    context = StorageContext.from_defaults(vector_store=store)
    return VectorStoreIndex.from_documents(DOCS, storage_context=context, embed_model=EMBED)


def docs_of(found) -> list[str]:
    return [n.node.ref_doc_id for n in found]


def test_an_index_is_built_and_queried_over_the_store(index: VectorStoreIndex, client: SyncMossClient) -> None:
    found = index.as_retriever(similarity_top_k=1).retrieve("how long does shipping take")
    assert docs_of(found) == ["shipping"] and 0.0 < found[0].score <= 1.0
    node = found[0].node
    assert node.text == DOCS[1].text and node.metadata == {"lang": "en", "year": 2019}  # typed, as it went in
    assert node.relationships[NodeRelationship.SOURCE].node_id == "shipping"
    assert client.get_index("docs").model == "custom"  # the store keeps LlamaIndex's vectors


def test_metadata_filters(index: VectorStoreIndex) -> None:
    def found(*filters, condition=FilterCondition.AND) -> list[str]:
        spec = MetadataFilters(filters=list(filters), condition=condition)
        return sorted(docs_of(index.as_retriever(similarity_top_k=5, filters=spec).retrieve("days")))

    assert found(ExactMatchFilter(key="lang", value="de")) == ["erstattung"]
    assert found(MetadataFilter(key="year", value=2020, operator=FilterOperator.GT)) == ["erstattung", "refunds"]
    assert found(MetadataFilter(key="year", value=[2019], operator=FilterOperator.IN)) == ["shipping"]
    assert found(MetadataFilter(key="lang", value="en", operator=FilterOperator.NE),
                 MetadataFilter(key="year", value=2019, operator=FilterOperator.LTE),
                 condition=FilterCondition.OR) == ["erstattung", "shipping"]
    nested = MetadataFilters(filters=[MetadataFilter(key="lang", value="de"), MetadataFilter(key="year", value=2019)],
                             condition=FilterCondition.OR)
    assert found(nested, MetadataFilter(key="year", value=2024, operator=FilterOperator.GTE)) == ["erstattung"]
    for bad in (MetadataFilters(filters=[MetadataFilter(key="lang", value="de")], condition=FilterCondition.NOT),
                MetadataFilters(filters=[MetadataFilter(key="lang", value="d", operator=FilterOperator.TEXT_MATCH)])):
        with pytest.raises(InvalidFilterError):
            index.as_retriever(filters=bad).retrieve("days")


def test_whole_numbers_are_equal_as_int_or_float(store: MossliteVectorStore) -> None:
    store.add([TextNode(id_="four", text="four", embedding=[1.0, 0.0], metadata={"rating": 4.0}),
               TextNode(id_="five", text="five", embedding=[0.0, 1.0], metadata={"rating": 5})])

    def found(value, operator: FilterOperator) -> list[str]:
        spec = MetadataFilters(filters=[MetadataFilter(key="rating", value=value, operator=operator)])
        return sorted(store.query(VectorStoreQuery(query_embedding=[1.0, 1.0], similarity_top_k=2, filters=spec)).ids)

    assert found(4, FilterOperator.EQ) == found(4.0, FilterOperator.EQ) == ["four"]
    assert found(4, FilterOperator.NE) == found(5.0, FilterOperator.EQ) == ["five"]
    assert found([4, 5.0], FilterOperator.IN) == ["five", "four"] and found([5.0], FilterOperator.NIN) == ["four"]


def test_query_modes(store: MossliteVectorStore, index: VectorStoreIndex) -> None:
    keyword = index.as_retriever(vector_store_query_mode="text_search", similarity_top_k=3)
    assert docs_of(keyword.retrieve("shipping")) == ["shipping"] and keyword.retrieve("shippingz") == []
    assert docs_of(index.as_retriever(similarity_top_k=1).retrieve("shippingz")) == ["shipping"]  # vectors
    hybrid = index.as_retriever(vector_store_query_mode="hybrid", alpha=0.5, similarity_top_k=1)
    assert docs_of(hybrid.retrieve("shipping")) == ["shipping"]

    def score(mode: str, **alpha: float) -> float:
        found = index.as_retriever(vector_store_query_mode=mode, similarity_top_k=3, **alpha).retrieve("shipping")
        return {n.node.ref_doc_id: n.score for n in found}["shipping"]

    keyword_score, vector_score = score("text_search"), score("default")
    assert keyword_score != vector_score  # so a hybrid score shows the alpha it was given
    for alpha in (0.25, 0.5):
        expected = alpha * vector_score + (1 - alpha) * keyword_score
        assert score("hybrid", alpha=alpha) == pytest.approx(expected, abs=1e-4), alpha
    hybrid_query = VectorStoreQuery(query_embedding=EMBED.get_query_embedding("days"), query_str="days",
                                    similarity_top_k=1, hybrid_top_k=3)
    assert len(store.query(hybrid_query).ids) == 1  # hybrid_top_k is for the hybrid mode only
    hybrid_query.mode = VectorStoreQueryMode.HYBRID
    assert len(store.query(hybrid_query).ids) == 3
    only = store.query(VectorStoreQuery(query_embedding=EMBED.get_query_embedding("days"), similarity_top_k=3,
                                        doc_ids=["refunds"]))
    assert [n.ref_doc_id for n in only.nodes] == ["refunds"] and len(only.similarities) == len(only.ids) == 1
    with pytest.raises(InvalidArgumentError, match="mmr"):
        store.query(VectorStoreQuery(query_embedding=[0.1] * 256, mode=VectorStoreQueryMode.MMR))
    with pytest.raises(InvalidArgumentError, match="node_ids"):
        store.query(VectorStoreQuery(query_embedding=[0.1] * 256, node_ids=["x"]))


def test_delete_by_ref_doc_id_get_nodes_and_clear(index: VectorStoreIndex, store: MossliteVectorStore) -> None:
    of_refunds = MetadataFilters(filters=[MetadataFilter(key="ref_doc_id", value="refunds")])
    (refund_node,) = store.get_nodes(filters=of_refunds)
    assert store.get_nodes([refund_node.node_id])[0].text == DOCS[0].text and store.get_nodes(["nope"]) == []
    index.delete_ref_doc("refunds")
    assert "refunds" not in docs_of(index.as_retriever(similarity_top_k=5).retrieve("refunds five days"))
    assert store.get_nodes([refund_node.node_id]) == []
    store.delete_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="lang", value="de")]))
    assert docs_of(index.as_retriever(similarity_top_k=5).retrieve("days")) == ["shipping"]
    store.clear()
    assert index.as_retriever().retrieve("days") == [] and store.get_nodes() == []
    index.insert(Document(doc_id="again", text="Gift cards never expire."))
    assert docs_of(index.as_retriever().retrieve("gift cards")) == ["again"]


def test_a_query_sees_what_another_client_writes(index: VectorStoreIndex, client: SyncMossClient,
                                                 target: Target) -> None:
    if target.server is not None:  # (the embedded service's new versions arrive at once)
        store = MossliteVectorStore("docs", client, polling_interval_in_seconds=0.2)
        index = VectorStoreIndex.from_vector_store(store, embed_model=EMBED)
    assert docs_of(index.as_retriever(similarity_top_k=1).retrieve("gift cards")) != ["gifts"]  # loaded now
    with target.client(client.project_id) as other:
        writer = VectorStoreIndex.from_vector_store(MossliteVectorStore("docs", other), embed_model=EMBED)
        writer.insert(Document(doc_id="gifts", text="Gift cards never expire."))
    assert seen_within(lambda: docs_of(index.as_retriever(similarity_top_k=1).retrieve("gift cards")) == ["gifts"])


def test_bad_input_is_a_typed_error(store: MossliteVectorStore, client: SyncMossClient) -> None:
    with pytest.raises(InvalidDocumentError, match="no embedding"):
        store.add([TextNode(id_="n", text="not embedded")])
    assert client.list_indexes() == []
    with pytest.raises(ModelNotFoundError):
        MossliteEmbedding(model_name="no-such-model")
    with pytest.raises(InvalidArgumentError, match="unknown"):
        store.add([], batch_size=3)


async def test_async_methods_of_a_store_of_an_async_client(tmp_path) -> None:
    client = MossClient("p", "k", cache_path=tmp_path)
    try:
        store = MossliteVectorStore("a", client)
        nodes = [TextNode(id_=f"n{i}", text=text, embedding=EMBED.get_text_embedding(text), metadata={"i": i})
                 for i, text in enumerate(["alpha beta", "gamma delta"])]
        nodes[1].relationships[NodeRelationship.SOURCE] = Document(doc_id="doc-g").as_related_node_info()
        assert await store.async_add(nodes) == ["n0", "n1"]
        query = VectorStoreQuery(query_embedding=EMBED.get_query_embedding("gamma"), similarity_top_k=1)
        assert (await store.aquery(query)).ids == ["n1"]
        assert [n.metadata for n in await store.aget_nodes(["n1", "n0"])] == [{"i": 1}, {"i": 0}]
        await store.adelete("doc-g")
        assert (await store.aquery(query)).ids == ["n0"]
        await store.adelete_nodes(["n0"])
        assert await store.aget_nodes() == []
        await store.aclear()
        with pytest.raises(InvalidArgumentError, match="async MossClient"):
            store.add(nodes)
    finally:
        await client.close()
        close_embedded_services()


def test_filter_mapping() -> None:
    assert llama_index_filter(None) is None and llama_index_filter(MetadataFilters(filters=[])) is None
    spec = MetadataFilters(filters=[MetadataFilter(key="a", value=1), MetadataFilter(key="b", value=["x", "y"],
                                                                                     operator=FilterOperator.NIN)])
    assert llama_index_filter(spec) == {"$and": [{"field": "a", "condition": {"$eq": 1}},
                                                 {"field": "b", "condition": {"$nin": ["x", "y"]}}]}


def test_every_query_refuses_an_index_of_a_model_that_embeds(client: SyncMossClient) -> None:
    client.wait_for_job(client.create_index("hashed", [DocumentInfo(id="a", text="alpha beta")], "hashed-ngrams-256").job_id)
    store = MossliteVectorStore("hashed", client)
    for _ in range(2):  # not only the query that loaded it: its vectors are another model's
        with pytest.raises(InvalidArgumentError, match="brings its own vectors"):
            store.query(VectorStoreQuery(query_embedding=[0.0625] * 256, similarity_top_k=1))


async def test_async_embeddings_are_one_batch_off_the_event_loop() -> None:
    calls: list[tuple[str, list[str], bool]] = []

    class Recording(MossliteEmbedding):
        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            calls.append(("texts", list(texts), threading.current_thread() is threading.main_thread()))
            return super()._get_text_embeddings(texts)

        def _get_query_embedding(self, query: str) -> list[float]:
            calls.append(("query", [query], threading.current_thread() is threading.main_thread()))
            return super()._get_query_embedding(query)

    model = Recording(model_name="hashed-ngrams-256")  # (the event loop runs in the main thread)
    texts = ["alpha", "beta", "gamma"]
    assert await model.aget_text_embedding_batch(texts) == EMBED.get_text_embedding_batch(texts)
    assert await model.aget_query_embedding("delta") == EMBED.get_query_embedding("delta")
    assert calls == [("texts", texts, False), ("query", ["delta"], False)]
