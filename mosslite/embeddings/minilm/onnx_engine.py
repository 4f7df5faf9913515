"""The onnxruntime engine: MiniLM's graph, assembled in memory from the verified weights.

Why onnxruntime: measured on a 2-core machine against the numpy engine in the
same process (``benchmarks/embedding_engines.py``), it embeds a ~20-word
query in 6-7.5 ms p50 instead of 11-14.5 ms, and 32-document batches
1.4-1.75x faster (256 tokens: 16-19 docs/s against 9-13; ~100 tokens: ~47
against ~32); the benchmarks' target for a query embedding, p50 <= 10 ms, is met
by this engine and missed by numpy there. What it costs: two
dependencies (onnxruntime, and onnx to write the graph), ~0.5 s more on first
use (import ~0.1 s, graph build ~0.2 s, serialise ~0.25 s, session ~0.25 s)
and ~160 MB more resident memory than the numpy engine (310 against 147 MB
after loading: the session's copy of the weights and its buffers).

Why we build the graph: no ONNX file of this model is downloaded or shipped.
``build_graph`` writes the BERT encoder with the ``onnx`` helper API, standard
operators only (opset 20), from the same sha256-verified tensors the numpy
engine uses, and the serialised graph goes straight to an InferenceSession:
nothing touches the disk. A variant with onnxruntime's fused contrib operators
(``Attention``, ``SkipLayerNormalization``, ``BiasGelu``) was no faster for
queries (7.7 against 7.0 ms p50) and within noise for batches, so the
portable form stays. Building takes ~0.5 s per process, so the graph is not
cached on disk (a cache would need its own verification).

The graph: ``input_ids`` and ``attention_mask`` (batch x length, padded with
mask 0) in, ``pooled`` (batch x 384, the masked mean of the last hidden
states) out. Padding costs little because the embedder sorts texts by length
before batching; the mask keeps pad tokens out of attention and pooling, so a
text embeds the same alone or in a batch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from ..._background import at_normal_priority
from .checkpoint import FFN, HEAD_DIM, HEADS, HIDDEN, LAYERS, LN_EPS, tensor, word_embeddings
from .engine import Engine

OPSET = 20  # Gelu is a standard operator from opset 20
#: Threads per run (see ``session_options``): 2, or 1 on a one-CPU machine (more is untested).
INTRA_OP_THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
#: Padded tokens per session run. Measured on 2 cores: 8 texts of 256 tokens
#: (19 docs/s) beat 32 (14/s), and short texts run best ~32 at a time; this
#: also bounds the attention scores (runs x 12 heads x L x L) to ~25 MB.
RUN_TOKENS = 2048
#: Masked scores: exp(-1e9 - max) is exactly 0 in float32, and no NaN as -inf could give.
MASKED = -1e9


class _GraphBuilder:
    """Writes nodes and initialisers straight into one ModelProto.

    In place because the weights are 90 MB: ``helper.make_graph`` and
    ``make_model`` would copy them twice more (measured ~0.25 s).
    """

    def __init__(self) -> None:
        self.model = onnx.ModelProto()
        self.graph = self.model.graph
        self._count = 0

    def const(self, name: str, array: np.ndarray) -> str:
        array = np.ascontiguousarray(array)
        proto = self.graph.initializer.add()
        proto.name = name
        proto.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
        proto.dims.extend(array.shape)
        proto.raw_data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        return name

    def weight(self, name: str, array: np.ndarray) -> str:
        return self.const(name, np.asarray(array, dtype=np.float32))

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attributes: object) -> str | list[str]:
        self._count += 1
        names = [f"{op_type}_{self._count}_{i}" for i in range(outputs)]
        self.graph.node.append(helper.make_node(op_type, list(inputs), names, **attributes))
        return names[0] if outputs == 1 else names


def build_graph(tensors: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """The encoder plus mean pooling as an ONNX model; the weights are copied into it.

    Same rearrangement as the numpy engine: Q, K and V fused into one matmul
    with the attention scale folded into Q, token type 0 added to the
    position table once.
    """
    g = _GraphBuilder()
    i64 = np.int64
    g.const("axis_0", np.array([0], i64))
    g.const("axis_1", np.array([1], i64))
    g.const("axis_last", np.array([-1], i64))
    g.const("axes_1_2", np.array([1, 2], i64))
    g.const("one", np.array(1.0, np.float32))
    g.const("masked", np.array(MASKED, np.float32))
    g.const("shape_qkv", np.array([0, 0, 3, HEADS, HEAD_DIM], i64))  # 0 copies the input's dimension
    g.const("shape_hidden", np.array([0, 0, HIDDEN], i64))

    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        return tensor(tensors, name, shape)

    g.weight("word", word_embeddings(tensors))
    position = get("embeddings.position_embeddings.weight", (512, HIDDEN))
    token_type = get("embeddings.token_type_embeddings.weight", (2, HIDDEN))
    g.weight("position", position + token_type[0])
    g.weight("emb_ln_g", get("embeddings.LayerNorm.weight", (HIDDEN,)))
    g.weight("emb_ln_b", get("embeddings.LayerNorm.bias", (HIDDEN,)))

    length = g.op("Shape", "input_ids", start=1, end=2)
    x = g.op("Add", g.op("Gather", "word", "input_ids"), g.op("Slice", "position", "axis_0", length, "axis_0"))
    x = g.op("LayerNormalization", x, "emb_ln_g", "emb_ln_b", axis=-1, epsilon=LN_EPS)
    # (batch, 1, 1, length): 0 for real tokens, -1e9 for padding, added to every head's scores.
    score_bias = g.op("Unsqueeze", g.op("Mul", g.op("Sub", "one", "attention_mask"), "masked"), "axes_1_2")

    scale = np.float32(1.0 / np.sqrt(HEAD_DIM))
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        a = p + "attention."
        q_w, k_w, v_w = (get(f"{a}self.{n}.weight", (HIDDEN, HIDDEN)) for n in ("query", "key", "value"))
        q_b, k_b, v_b = (get(f"{a}self.{n}.bias", (HIDDEN,)) for n in ("query", "key", "value"))
        w_qkv = g.weight(f"l{i}.w_qkv", np.concatenate([q_w.T * scale, k_w.T, v_w.T], axis=1))
        b_qkv = g.weight(f"l{i}.b_qkv", np.concatenate([q_b * scale, k_b, v_b]))
        w_out = g.weight(f"l{i}.w_out", get(f"{a}output.dense.weight", (HIDDEN, HIDDEN)).T)
        b_out = g.weight(f"l{i}.b_out", get(f"{a}output.dense.bias", (HIDDEN,)))
        ln1_g = g.weight(f"l{i}.ln1_g", get(f"{a}output.LayerNorm.weight", (HIDDEN,)))
        ln1_b = g.weight(f"l{i}.ln1_b", get(f"{a}output.LayerNorm.bias", (HIDDEN,)))
        w_up = g.weight(f"l{i}.w_up", get(f"{p}intermediate.dense.weight", (FFN, HIDDEN)).T)
        b_up = g.weight(f"l{i}.b_up", get(f"{p}intermediate.dense.bias", (FFN,)))
        w_down = g.weight(f"l{i}.w_down", get(f"{p}output.dense.weight", (HIDDEN, FFN)).T)
        b_down = g.weight(f"l{i}.b_down", get(f"{p}output.dense.bias", (HIDDEN,)))
        ln2_g = g.weight(f"l{i}.ln2_g", get(f"{p}output.LayerNorm.weight", (HIDDEN,)))
        ln2_b = g.weight(f"l{i}.ln2_b", get(f"{p}output.LayerNorm.bias", (HIDDEN,)))

        # Self-attention: (B, L, 3, H, D) -> (3, B, H, L, D) -> q, k, v.
        qkv = g.op("Add", g.op("MatMul", x, w_qkv), b_qkv)
        qkv = g.op("Transpose", g.op("Reshape", qkv, "shape_qkv"), perm=[2, 0, 3, 1, 4])
        q, k, v = (g.op("Squeeze", part, "axis_0") for part in g.op("Split", qkv, outputs=3, axis=0, num_outputs=3))
        scores = g.op("Add", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2])), score_bias)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), "shape_hidden")
        attended = g.op("Add", g.op("Add", g.op("MatMul", context, w_out), b_out), x)
        x = g.op("LayerNormalization", attended, ln1_g, ln1_b, axis=-1, epsilon=LN_EPS)

        # Feed-forward with exact (erf) GELU, as the model was trained.
        hidden = g.op("Gelu", g.op("Add", g.op("MatMul", x, w_up), b_up))
        fed = g.op("Add", g.op("Add", g.op("MatMul", hidden, w_down), b_down), x)
        x = g.op("LayerNormalization", fed, ln2_g, ln2_b, axis=-1, epsilon=LN_EPS)

    # Mean over real tokens: sum(x * mask) / sum(mask).
    mask = g.op("Unsqueeze", "attention_mask", "axis_last")
    summed = g.op("ReduceSum", g.op("Mul", x, mask), "axis_1", keepdims=0)
    g.graph.node.append(helper.make_node("Div", [summed, g.op("ReduceSum", mask, "axis_1", keepdims=0)], ["pooled"]))

    g.graph.name = "all-MiniLM-L6-v2"
    g.graph.input.extend(
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, ["batch", "length"]),
        ]
    )
    g.graph.output.append(helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", HIDDEN]))
    model = g.model
    model.ir_version = 9  # what onnxruntime >= 1.17 reads
    model.producer_name = "mosslite"
    model.opset_import.append(helper.make_opsetid("", OPSET))
    return model


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Options for a small model on a small machine, each measured on 2 cores.

    ``threads`` (default ``INTRA_OP_THREADS``) parallelise each operator: 2
    embedded a query in ~7 ms p50 against ~12 ms for 1, and batches ~2x
    faster. Execution is sequential (the graph is a chain: a second pool
    would only add threads). Workers spin between operators within a run,
    as onnxruntime does by default, but stop as soon as the run returns:
    left spinning, they took a core from the caller's next step (a
    following ``M @ q`` in numpy went from ~1 ms to ~5 ms), at no gain.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or INTRA_OP_THREADS
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.log_severity_level = 3  # errors only: the optimiser's notes are not the user's business
    return options


class OnnxEngine(Engine):
    """An InferenceSession over ``build_graph``; the session owns its copy of the weights.

    Thread safety: ``InferenceSession.run`` may be called from many threads at
    once (onnxruntime documents it), and each call builds its own inputs.
    """

    name = "onnxruntime"

    def __init__(self, tensors: Mapping[str, np.ndarray], *, threads: int | None = None) -> None:
        serialized = build_graph(tensors).SerializeToString()
        # (Its pool is made with it: at the normal priority, whichever thread loads the model.)
        options = session_options(threads)
        self._session = at_normal_priority(ort.InferenceSession, serialized, options, ["CPUExecutionProvider"])
        # After a batch, hand the arena's activations (~100 MB) back; a single
        # query keeps it (shrinking cost ~1 ms a query) and needs little anyway.
        self._batch_run = ort.RunOptions()
        self._batch_run.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def pooled(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        out = np.empty((len(token_ids), HIDDEN), dtype=np.float32)
        for start, stop in _runs(token_ids):
            out[start:stop] = self._run(token_ids[start:stop])
        return out

    def _run(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """One session run: the sequences padded to the longest, mask 0 on the padding."""
        length = max(len(ids) for ids in token_ids)
        input_ids = np.zeros((len(token_ids), length), dtype=np.int64)
        mask = np.zeros((len(token_ids), length), dtype=np.float32)
        for row, ids in enumerate(token_ids):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1.0
        run_options = self._batch_run if len(token_ids) > 1 else None
        (pooled,) = self._session.run(["pooled"], {"input_ids": input_ids, "attention_mask": mask}, run_options)
        return pooled


def _runs(token_ids: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive sequences whose padded size stays within ``RUN_TOKENS``.

    Always at least one sequence per run. The embedder sorts by length, so
    neighbours are alike and padding is small.
    """
    runs = []
    start, longest = 0, 0
    for i, ids in enumerate(token_ids):
        longest = max(longest, len(ids))
        if i > start and (i + 1 - start) * longest > RUN_TOKENS:
            runs.append((start, i))
            start, longest = i, len(ids)
    runs.append((start, len(token_ids)))
    return runs


__all__ = ["OnnxEngine", "build_graph", "session_options"]
