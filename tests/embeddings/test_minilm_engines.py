"""MiniLM's two engines: they agree, and which one runs is chosen as documented.

Real model, real maths: the fallback is provoked by hiding the onnxruntime
module from ``import`` (as on a platform without its wheels), never by
replacing an engine's arithmetic.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from mosslite import DocumentInfo, IndexReader, QueryOptions, Version, build_version
from mosslite.embeddings import get_embedder
from mosslite.embeddings.minilm import ENGINE_ENV, MODEL_DIR_ENV, MiniLMEmbedder, load_tensors, locate_model_dir
from mosslite.embeddings.minilm.onnx_engine import build_graph
from mosslite.errors import InvalidArgumentError

LONG_TEXT = " ".join(
    ["Hybrid search blends FTS5 bm25 keyword scores with cosine similarity over MiniLM vectors stored in vec0."] * 30
)

VARIED_TEXTS = [
    "",
    " ",
    "\n\t",
    "?",
    "a",
    "hello world",
    "How do I reset my password?",
    "UPPERCASE TEXT IS LOWERCASED BY THE TOKENIZER",
    "Qu'est-ce que l'apprentissage automatique ?",
    "東京は日本の首都です。",
    "ÄÖÜ naïve café résumé — emoji 🚀🔥 and symbols ∑∫√",
    "Привет, как дела? Это тест поиска.",
    "def embed(texts): return model.encode(texts, normalize_embeddings=True)",
    "ERROR 2024-05-01T12:00:00Z connection refused: 127.0.0.1:5432",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "1234567890 3.14159 2.71828 -42 1e-12",
    "Mean pooling averages token embeddings weighted by the attention mask, then the vector is L2 normalised.",
    LONG_TEXT,  # far over 256 tokens: truncated
    LONG_TEXT[: len(LONG_TEXT) // 3],
]


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    monkeypatch.delenv(ENGINE_ENV, raising=False)


@pytest.fixture(scope="module")
def numpy_embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(engine="numpy")


@pytest.fixture(scope="module")
def onnx_embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(engine="onnxruntime")


def test_engines_give_the_same_vectors(numpy_embedder: MiniLMEmbedder, onnx_embedder: MiniLMEmbedder) -> None:
    lengths = [len(ids) for ids in onnx_embedder.tokenize(VARIED_TEXTS)]
    assert max(lengths) == 256 and min(lengths) == 2  # truncated, and [CLS] [SEP] alone
    ours = onnx_embedder.embed(VARIED_TEXTS)
    theirs = numpy_embedder.embed(VARIED_TEXTS)
    cosines = np.einsum("ij,ij->i", ours, theirs)
    assert cosines.min() > 0.9999, dict(zip(VARIED_TEXTS, cosines.round(6)))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # One at a time (batch of 1, no padding) agrees too.
    for text, row in zip(VARIED_TEXTS, theirs):
        assert float(onnx_embedder.embed([text])[0] @ row) > 0.9999, repr(text)


def test_default_engine_is_onnxruntime() -> None:
    assert MiniLMEmbedder().engine == "onnxruntime"


@pytest.mark.parametrize("name", ["numpy", "onnxruntime"])
def test_env_var_forces_an_engine(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENGINE_ENV, name)
    assert MiniLMEmbedder().engine == name


def test_engine_argument_beats_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENGINE_ENV, "onnxruntime")
    assert MiniLMEmbedder(engine="numpy").engine == "numpy"


def test_unknown_env_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENGINE_ENV, "torch")
    with pytest.raises(InvalidArgumentError) as caught:
        MiniLMEmbedder().embed(["anything"])
    assert ENGINE_ENV in str(caught.value) and "'torch'" in str(caught.value)
    assert "numpy" in caught.value.hint and "onnxruntime" in caught.value.hint


def test_unknown_engine_argument_fails_at_construction() -> None:
    with pytest.raises(InvalidArgumentError):
        MiniLMEmbedder(engine="ORT")


def test_falls_back_to_numpy_when_onnxruntime_does_not_import(
    numpy_embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # "import onnxruntime" now raises ImportError
    with caplog.at_level(logging.WARNING, logger="mosslite.embeddings"):
        fallback = MiniLMEmbedder()
        assert fallback.engine == "numpy"
    assert "numpy" in caplog.text
    texts = ["hello world", LONG_TEXT]
    np.testing.assert_array_equal(fallback.embed(texts), numpy_embedder.embed(texts))


def test_forcing_onnxruntime_without_it_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setenv(ENGINE_ENV, "onnxruntime")
    with pytest.raises(InvalidArgumentError) as caught:
        MiniLMEmbedder().load()
    assert "does not import" in str(caught.value)
    assert f"{ENGINE_ENV}=numpy" in caught.value.hint


def test_graph_is_valid_onnx_built_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    model = build_graph(load_tensors(locate_model_dir()))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in model.graph.output] == ["pooled"]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_index_built_with_numpy_is_queried_with_onnxruntime(
    tmp_path: Path, numpy_embedder: MiniLMEmbedder, onnx_embedder: MiniLMEmbedder
) -> None:
    # The model id does not name the engine: vectors stored by one are searched by the other.
    docs = [
        DocumentInfo(id="refund", text="How do I get a refund for a damaged product?"),
        DocumentInfo(id="shipping", text="Standard shipping takes three to five business days."),
        DocumentInfo(id="password", text="Reset your password from the account settings page."),
    ]
    path = tmp_path / Version(1).filename()
    build_version(path, embedder=numpy_embedder, index_name="faq", version=Version(1), upserts=docs)
    reader = IndexReader(path, embedder=onnx_embedder)
    try:
        result = reader.query("I forgot my login", QueryOptions(top_k=1, alpha=1.0))
    finally:
        reader.close()
    assert [doc.id for doc in result.docs] == ["password"]
    assert result.docs[0].score > 0.3


def test_registry_serves_the_default_model() -> None:
    embedder = get_embedder("moss-minilm")
    assert isinstance(embedder, MiniLMEmbedder)
    assert embedder.dimension == 384


def test_onnxruntime_runs_stay_within_the_token_budget() -> None:
    from mosslite.embeddings.minilm.onnx_engine import RUN_TOKENS, _runs

    lengths = [3] * 40 + [100] * 30 + [256] * 20
    runs = _runs([[0] * n for n in lengths])
    assert runs[0][0] == 0 and runs[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(runs, runs[1:]))  # contiguous, in order
    for start, stop in runs:
        assert (stop - start) * max(lengths[start:stop]) <= RUN_TOKENS
    assert _runs([[0] * 4000]) == [(0, 1)]  # one over-long sequence still runs
