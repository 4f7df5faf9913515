"""q @ M in int32 through onnxruntime's MatMulInteger, and the check that it is exact.

The int8 searches (int8.py, rotated.py) read an 8-bit copy of the matrix through
this product: onnxruntime's integer matmul (MLAS) reads a quarter of the bytes of
the float32 product. Both operands are u8 with zero point 128: on AVX2 without
VNNI, MLAS's u8 x s8 kernel saturates 16-bit pair sums, and the u8 x u8 kernel
does not. ``product_is_exact`` runs both extremes once per process, and the
chooser (choice.py) keeps the float32 scan if it fails.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from ..._background import at_normal_priority
from .codes import ZERO_POINT

THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def integer_product_session(quantised: np.ndarray):  # -> onnxruntime.InferenceSession
    """An onnxruntime session computing q (1 x d, u8) @ quantised (d x n, u8) in int32,
    both with zero point 128. The matrix is a constant, so onnxruntime packs it once.

    The matrix is handed over as an "external initializer" (an OrtValue over
    our array): serialising 38 MB into the graph and parsing it back cost ~100 ms
    more at 100k rows. The caller keeps ``quantised`` alive as long as the session.
    The one-node graph is written by ``_matmul_integer_model``: the ``onnx``
    package took ~1 s to import, more than opening a 100k-document index.
    """
    import onnxruntime as ort

    dim, rows = quantised.shape
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    # Threads sleep between queries instead of spinning: a spinning pool takes a
    # core from the query embedder and from other indexes' queries.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_external_initializers(["m"], [ort.OrtValue.ortvalue_from_numpy(quantised)])
    model = _matmul_integer_model(dim, rows)
    # (Its pool is made with it: at the normal priority even when a refresh opens the reader.)
    return at_normal_priority(ort.InferenceSession, model, options, ["CPUExecutionProvider"])


# -- the ONNX graph of one MatMulInteger, as protobuf bytes (field numbers from onnx.proto)

_UINT8, _INT32 = 2, 6  # TensorProto.DataType
_EXTERNAL = 1  # TensorProto.DataLocation


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    """One protobuf field: a varint for an int, length-delimited for bytes or text."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _tensor_type(elem_type: int, dims: tuple[int, ...]) -> bytes:
    shape = b"".join(_field(1, _field(1, d)) for d in dims)  # TensorShapeProto.dim.dim_value
    return _field(1, _field(1, elem_type) + _field(2, shape))  # TypeProto.tensor_type


def _matmul_integer_model(dim: int, rows: int) -> bytes:
    """ModelProto of y = MatMulInteger(q, m, zero, zero): q (1 x dim) u8 an input, m (dim x
    rows) u8 an external initializer named "m", zero a u8 scalar 128, y (1 x rows) int32."""
    matrix = (
        _field(1, dim) + _field(1, rows) + _field(2, _UINT8) + _field(8, "m")
        + _field(13, _field(1, "location") + _field(2, "supplied-by-session-options"))
        + _field(14, _EXTERNAL)
    )  # fmt: skip
    zero = _field(2, _UINT8) + _field(8, "zero") + _field(9, bytes([ZERO_POINT]))
    node = b"".join(_field(1, name) for name in ("q", "m", "zero", "zero")) + _field(2, "y") + _field(4, "MatMulInteger")
    graph = (
        _field(1, node) + _field(2, "int8-product") + _field(5, matrix) + _field(5, zero)
        + _field(11, _field(1, "q") + _field(2, _tensor_type(_UINT8, (1, dim))))
        + _field(12, _field(1, "y") + _field(2, _tensor_type(_INT32, (1, rows))))
    )  # fmt: skip
    opset = _field(1, "") + _field(2, 13)
    return _field(1, 8) + _field(7, graph) + _field(8, opset)  # ir_version 8, opset 13


@functools.cache
def product_is_exact() -> bool:
    """Whether this machine's integer kernel is exact at the extremes the bound relies on."""
    try:
        q = np.array([[255] * 64, [0] * 64, [255] * 32 + [0] * 32], dtype=np.uint8)
        m = np.array([[255] * 64, [0] * 64, [255, 0] * 32], dtype=np.uint8).T.copy()
        session = integer_product_session(m)
    except Exception:  # onnxruntime missing or refusing the graph: scan float32
        return False
    expected = (q.astype(np.int64) - ZERO_POINT) @ (m.astype(np.int64) - ZERO_POINT)
    return all(
        np.array_equal(session.run(None, {"q": row[None, :]})[0][0], want) for row, want in zip(q, expected)
    )
