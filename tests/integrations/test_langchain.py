"""MossliteVectorStore for LangChain: the standard suite of langchain-tests, then what the
suite does not cover (mosslite's own model, hybrid search arguments, metadata, errors)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from mosslite import MossClient, SyncMossClient
from mosslite.client.embedded import close_embedded_services
from mosslite.errors import InvalidArgumentError, InvalidDocumentError, InvalidFilterError
from mosslite.integrations.langchain import MossliteVectorStore, langchain_filter

from ..client.conftest import Target
from .conftest import seen_within

# The suite's async tests are plain `async def`s: anyio runs them (as it runs the rest of ours).
pytestmark = pytest.mark.anyio

MODEL = "hashed-ngrams-256"


class TestStandardSuite(VectorStoreIntegrationTests):
    """LangChain's contract, sync and async, every test of it, over both transports.
    The suite's embeddings are its DeterministicFakeEmbedding (the index: `custom`)."""

    @pytest.fixture
    def vectorstore(self, client: SyncMossClient) -> Iterator[MossliteVectorStore]:
        yield MossliteVectorStore("suite", client, embedding=self.get_embeddings())


# -- what the suite does not cover ------------------------------------------------------------

FAQ = [
    Document(id="r1", page_content="Refunds are paid within five days.", metadata={"lang": "en", "year": 2024}),
    Document(id="s1", page_content="Standard shipping takes three days.", metadata={"lang": "en", "year": 2019}),
    Document(id="d1", page_content="Erstattungen kommen in fünf Tagen.", metadata={"lang": "de", "year": 2024}),
]


@pytest.fixture
def store(client: SyncMossClient) -> MossliteVectorStore:
    """mosslite's own model embeds (the dependency-free one, for speed)."""
    s = MossliteVectorStore("faq", client, model_id=MODEL)
    s.add_documents(FAQ)
    return s


def ids(docs: list[Document]) -> list[str | None]:
    return [d.id for d in docs]


def test_mosslite_model_embeds_documents_and_queries(store: MossliteVectorStore, client: SyncMossClient) -> None:
    assert store.embeddings is None and client.get_index("faq").model == MODEL
    assert ids(store.similarity_search("how long does shipping take", k=1)) == ["s1"]
    assert store.get_by_ids(["d1"]) == [FAQ[2]]


def test_retriever_search_kwargs_are_top_k_alpha_and_filter(store: MossliteVectorStore) -> None:
    assert len(store.as_retriever().invoke("refunds five days")) == 3
    assert ids(store.as_retriever(search_kwargs={"k": 1}).invoke("refunds five days")) == ["r1"]
    assert ids(store.as_retriever(search_kwargs={"filter": {"lang": "de"}}).invoke("refunds")) == ["d1"]
    newer = store.as_retriever(search_kwargs={"filter": {"year": {"$gte": 2020}}}).invoke("shipping days")
    assert sorted(ids(newer)) == ["d1", "r1"]
    # alpha 0 is keyword search alone: a word no text holds finds nothing, where the
    # vectors (character trigrams, here) still find the near spellings.
    assert store.as_retriever(search_kwargs={"alpha": 0.0}).invoke("refundz") == []
    assert ids(store.as_retriever(search_kwargs={"alpha": 1.0, "k": 1}).invoke("refundz")) == ["r1"]
    with pytest.raises(InvalidArgumentError, match="top_k"):
        store.as_retriever(search_kwargs={"top_k": 1}).invoke("refunds")


async def test_retriever_async(store: MossliteVectorStore) -> None:
    found = await store.as_retriever(search_kwargs={"k": 1, "filter": {"lang": "de"}}).ainvoke("refunds")
    assert ids(found) == ["d1"]


def test_scores_are_the_hybrid_score(store: MossliteVectorStore) -> None:
    keyword = store.similarity_search_with_score("shipping", k=3, alpha=0.0)
    assert [(d.id, s) for d, s in keyword] == [("s1", 1.0)]  # BM25, relative to the best hit
    hybrid = store.similarity_search_with_score("shipping", k=3)
    assert hybrid[0][0].id == "s1" and all(0.0 <= s <= 1.0 for _, s in hybrid)
    assert store.similarity_search_with_relevance_scores("shipping", k=3) == hybrid
    kept = store.similarity_search_with_relevance_scores("shipping", k=3, score_threshold=hybrid[0][1])
    assert kept == hybrid[:1]
    cosine = store.similarity_search_with_score("shipping", k=3, alpha=1.0)  # an absolute threshold, as documented
    threshold = store.as_retriever(search_type="similarity_score_threshold",
                                   search_kwargs={"score_threshold": cosine[0][1], "alpha": 1.0})
    assert threshold.invoke("shipping") == [cosine[0][0]]


def test_whole_numbers_are_equal_as_int_or_float(client: SyncMossClient) -> None:
    store = MossliteVectorStore("n", client, model_id=MODEL)
    store.add_texts(["one", "two"], metadatas=[{"price": 1.0, "n": 2}, {"price": 1.5, "n": 3}], ids=["a", "b"])
    for spec, expected in (({"price": 1}, ["a"]), ({"n": 2.0}, ["a"]), ({"n": {"$in": [2.0]}}, ["a"]),
                           ({"n": {"$nin": [2.0]}}, ["b"]), ({"price": {"$ne": 1}}, ["b"]),
                           ({"price": {"$in": [1, 1.5]}}, ["a", "b"])):
        assert sorted(ids(store.similarity_search("one two", k=2, filter=spec))) == expected, spec
    assert store.get_by_ids(["a"])[0].metadata == {"price": 1.0, "n": 2}  # given back as they went in


def test_search_by_vector(client: SyncMossClient) -> None:
    embedding = DeterministicFakeEmbedding(size=8)
    store = MossliteVectorStore("v", client, embedding=embedding)
    store.add_texts(["alpha", "beta"], metadatas=[{"n": 1}, {"n": 2}], ids=["a", "b"])
    assert ids(store.similarity_search_by_vector(embedding.embed_query("beta"), k=1)) == ["b"]
    assert ids(store.similarity_search_by_vector(embedding.embed_query("beta"), k=2, filter={"n": 1})) == ["a"]


def test_metadata_comes_back_as_it_went_in_and_filters_on_its_values(client: SyncMossClient) -> None:
    store = MossliteVectorStore("m", client, model_id=MODEL)
    metadata = {"year": 2024, "price": 9.5, "draft": False, "tags": ["a", "b"], "note": None, "lang": "en"}
    store.add_texts(["a typed document"], metadatas=[metadata], ids=["t"])
    assert store.get_by_ids(["t"])[0].metadata == metadata
    for spec in ({"draft": False}, {"year": 2024}, {"year": {"$gt": 2000, "$lte": 2024}}, {"price": {"$lt": 10}},
                 {"$or": [{"lang": "de"}, {"draft": {"$in": [False]}}]},
                 {"field": "lang", "condition": {"$eq": "en"}}):  # mosslite's own shape
        assert ids(store.similarity_search("typed", k=1, filter=spec)) == ["t"], spec
    assert store.similarity_search("typed", k=1, filter={"draft": True}) == []
    # Documents written through mosslite itself come back with their string metadata.
    assert client.get_docs("m", ["t"])[0].metadata == {"year": "2024", "price": "9.5", "draft": "false",
                                                       "tags": '["a", "b"]', "lang": "en"}


class CountingEmbeddings(Embeddings):
    """Two-dimensional vectors, and every text it was asked to embed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.texts += texts
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0, float(len(text))]


def test_bad_input_is_a_typed_error_before_any_work(client: SyncMossClient) -> None:
    embeddings = CountingEmbeddings()
    for store in (MossliteVectorStore("bad", client, model_id=MODEL),
                  MossliteVectorStore("bad", client, embedding=embeddings)):
        with pytest.raises(InvalidDocumentError, match="'when'"):
            store.add_texts(["x"], metadatas=[{"when": datetime.date(2024, 1, 1)}])
        with pytest.raises(InvalidDocumentError):
            store.add_texts(["x", "y"], ids=["same", "same"])
    assert client.list_indexes() == [] and embeddings.texts == []  # nothing was made, nor embedded
    store = MossliteVectorStore("bad", client, model_id=MODEL)
    store.add_texts(["x"], ids=["x"])
    for spec in ({"year": {"$regex": "2."}}, "lang", {"$and": {"lang": "en"}}, {"lang": {"$eq": None}}):
        with pytest.raises(InvalidFilterError):
            store.similarity_search("x", filter=spec)
    with pytest.raises(InvalidArgumentError, match="alpha"):
        store.similarity_search("x", alpha=2)
    with pytest.raises(InvalidArgumentError, match="unknown"):
        store.add_texts(["z"], upsert=False)
    with pytest.raises(InvalidArgumentError, match="auto_refresh"):
        MossliteVectorStore("bad", client, auto_refresh="yes")
    with pytest.raises(InvalidArgumentError, match="polling_interval_in_seconds"):
        MossliteVectorStore("bad", client, polling_interval_in_seconds=0)


def test_a_store_never_mixes_models(client: SyncMossClient) -> None:
    MossliteVectorStore("mixed", client, model_id=MODEL).add_texts(["hashed"], ids=["h"])
    custom = MossliteVectorStore("mixed", client, embedding=DeterministicFakeEmbedding(size=8))
    with pytest.raises(InvalidArgumentError, match="brings its own vectors"):
        custom.add_texts(["custom"], ids=["c"])
    for _ in range(2):  # every search, not only the one that loaded the index
        with pytest.raises(InvalidArgumentError, match="brings its own vectors"):
            custom.similarity_search("hashed")
    assert [d.id for d in client.get_docs("mixed")] == ["h"]
    MossliteVectorStore("other", client, embedding=DeterministicFakeEmbedding(size=8)).add_texts(["c"], ids=["c"])
    client.load_index("other")  # loaded by the client already: the store's first search checks too
    with pytest.raises(InvalidArgumentError, match="no embeddings to query it with"):
        MossliteVectorStore("other", client, model_id=MODEL).similarity_search("c")


def test_writes_keep_the_refresh_options_of_a_loaded_index(store: MossliteVectorStore, client: SyncMossClient) -> None:
    client.load_index("faq", auto_refresh=True, polling_interval_in_seconds=60)
    before = client.get_loaded_version("faq")
    store.add_texts(["Gift cards never expire."], ids=["g1"])
    loaded = client.loaded_index("faq")
    assert loaded.version == before + 1 and (loaded.auto_refresh, loaded.polling_interval_s) == (True, 60)
    store.delete(["g1", "no-such-id"])
    assert client.get_loaded_version("faq") == before + 2 and store.get_by_ids(["g1"]) == []


def test_a_search_sees_what_another_client_writes(store: MossliteVectorStore, client: SyncMossClient,
                                                  target: Target) -> None:
    """A store's copy follows the service on its own (auto_refresh, on by default): the embedded
    service's new versions arrive at once; a server is asked every polling interval."""
    if target.server is not None:
        store = MossliteVectorStore("faq", client, model_id=MODEL, polling_interval_in_seconds=0.2)
    assert ids(store.similarity_search("gift cards", k=1)) != ["g1"]  # loaded now
    with target.client(client.project_id) as other:
        MossliteVectorStore("faq", other).add_texts(["Gift cards never expire."], ids=["g1"])
    assert seen_within(lambda: ids(store.similarity_search("gift cards", k=1)) == ["g1"])
    assert client.loaded_index("faq").auto_refresh


def test_delete_all_then_add_again(store: MossliteVectorStore) -> None:
    store.delete()
    assert store.similarity_search("refunds") == [] and store.get_by_ids(["r1"]) == []
    store.add_texts(["Refunds are paid in cash."], ids=["r2"])
    assert ids(store.similarity_search("refunds")) == ["r2"]


def test_from_texts_with_a_project_and_key(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    if target.server is not None:
        credentials = {"project_id": "lc", "project_key": target.server.new_key("lc"), "url": target.server.url}
    else:
        monkeypatch.setenv("MOSSLITE_HOME", str(target.home))
        credentials = {"project_id": "lc", "project_key": "lc-key"}
    store = MossliteVectorStore.from_texts(["one", "two"], None, ids=["1", "2"], index_name="ft", model_id=MODEL,
                                           **credentials)
    try:
        assert isinstance(store.client, SyncMossClient) and ids(store.similarity_search("two", k=1)) == ["2"]
    finally:
        store.close()
        close_embedded_services()
    with pytest.raises(InvalidArgumentError):
        MossliteVectorStore("ft", project_id="lc")


async def test_a_store_of_an_async_client(tmp_path) -> None:
    client = MossClient("p", "k", cache_path=tmp_path)
    try:
        store = await MossliteVectorStore.afrom_texts(["one", "two"], None, ids=["1", "2"], index_name="a",
                                                      client=client, model_id=MODEL)
        assert ids(await store.asimilarity_search("two", k=1)) == ["2"]
        await store.adelete(["2"])
        assert ids(await store.asimilarity_search("two")) == ["1"] and await store.aget_by_ids(["2"]) == []
        assert ids(store.similarity_search("one")) == ["1"]  # a query of the loaded copy needs no loop
        with pytest.raises(InvalidArgumentError, match="async MossClient"):
            store.add_texts(["three"])
    finally:
        await client.close()
        close_embedded_services()


def test_langchain_filter_shapes() -> None:
    assert langchain_filter(None) is None and langchain_filter({}) is None
    assert langchain_filter({"a": 1}) == {"field": "a", "condition": {"$eq": 1}}
    assert langchain_filter({"a": True, "b": {"$in": ["x", False]}}) == {"$and": [
        {"field": "a", "condition": {"$eq": "true"}}, {"field": "b", "condition": {"$in": ["x", "false"]}}]}
    assert langchain_filter({"$or": [{"a": "x"}, {"field": "b", "condition": {"$ne": "y"}}]}) == {"$or": [
        {"field": "a", "condition": {"$eq": "x"}}, {"field": "b", "condition": {"$ne": "y"}}]}
