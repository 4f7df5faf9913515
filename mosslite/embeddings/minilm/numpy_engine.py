"""The numpy engine: all-MiniLM-L6-v2 as a plain numpy forward pass, the fallback.

It runs where onnxruntime does not import (a platform without its wheels), or
when ``MOSSLITE_MINILM_ENGINE=numpy`` asks for it. numpy is already a
dependency and runs the maths through the same BLAS as torch would, so the
output matches sentence-transformers (cosine > 0.9999) with no heavy runtime.

Speed choices, each measured on a 2-core machine:

* weights are transposed, QKV fused and the attention scale folded into Q once
  at load, so a layer is three large matmuls plus attention;
* texts are packed without padding (the embedder sorts them by length first):
  the dense layers run on all real tokens of a batch at once, attention runs
  per group of equal-length sequences, so no compute is spent on pad tokens
  and a text embeds the same alone or in a batch;
* the feed-forward block runs in row chunks, so its 1536-wide temporaries
  stay a few MB whatever the batch, and GELU uses a closed-form erf (numpy
  has none) in 19 in-place passes.

It is ~1.4-2x slower than onnxruntime running the same maths (see
``onnx_engine``), but needs nothing beyond numpy and loads faster.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .checkpoint import FFN, HEAD_DIM, HEADS, HIDDEN, LAYERS, LN_EPS, tensor, word_embeddings
from .engine import Engine

#: Rows per feed-forward chunk: 256 x 1536 float32 is 1.5 MB.
FFN_CHUNK_ROWS = 256
#: Attention-score floats per chunk (n x heads x L x L), ~4 MB.
ATTENTION_CHUNK_FLOATS = 1 << 20


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


def _build_weights(tensors: Mapping[str, np.ndarray]) -> _Weights:
    """Rearrange the checkpoint once so the forward pass is matmul-shaped."""

    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        return tensor(tensors, name, shape)

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
    word = word_embeddings(tensors)
    position = get("embeddings.position_embeddings.weight", (512, HIDDEN))
    token_type = get("embeddings.token_type_embeddings.weight", (2, HIDDEN))
    return _Weights(
        word=_f32(word),
        position=_f32(position + token_type[0]),
        ln_g=_f32(get("embeddings.LayerNorm.weight", (HIDDEN,))),
        ln_b=_f32(get("embeddings.LayerNorm.bias", (HIDDEN,))),
        layers=tuple(layers),
    )


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
    """Mean-pooled final hidden states (not normalised) for already-tokenised texts.

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
    return pooled


# --------------------------------------------------------------------------- the engine


class NumpyEngine(Engine):
    """The rearranged weights (owned copies, ~90 MB) and the packed forward pass.

    Thread safety: the weights are never written after construction and every
    call allocates its own temporaries, so calls may overlap freely.
    """

    name = "numpy"

    def __init__(self, tensors: Mapping[str, np.ndarray]) -> None:
        self._weights = _build_weights(tensors)

    def pooled(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        return forward(self._weights, token_ids)


__all__ = ["NumpyEngine", "forward"]
