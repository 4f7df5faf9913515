"""Input rules shared by every entry point: names, document ids, storable text, vectors.

Each rule is written once, here, and names the exact rule a value breaks with a
typed error (issue #2, issue #8). The records in ``types.py`` check themselves on
construction with these (an id, a text, an embedding); client, session, service,
reader and builder check what enters without a record (an index name, a list of
ids to delete or look up) with the same functions, so a get never answers
"nothing" to what a delete refuses.

This module imports only ``errors``: ``types`` builds on it, never the reverse.
The limits live beside their rules: ``MAX_NAME_CHARS``, ``MAX_ID_CHARS``,
``FLOAT32_MAX``; the others stay in ``types``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InvalidArgumentError, InvalidDocumentError, InvalidNameError

MAX_ID_CHARS = 512
MAX_NAME_CHARS = 128

# Used with fullmatch: "$" also matches before a final newline, so "faq\n" passed (issue #8).
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def validate_name(name: object, *, what: str = "index") -> str:
    """Index and session names become file and URL path parts: keep them boring.

    Invariant (issue #8): a name is returned only if it *fullmatches* the alphabet
    (no final newline slips through); anything else is an InvalidNameError."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"{what} name must be a non-empty string", name=str(name))
    if len(name) > MAX_NAME_CHARS:
        raise InvalidNameError(f"{what} name is longer than {MAX_NAME_CHARS} characters", name=name[:40])
    if not _NAME_RE.fullmatch(name) or ".." in name:
        raise InvalidNameError(
            f"{what} name {name!r} may use only letters, digits, '.', '_' and '-', "
            "must start with a letter or digit, and may not contain '..'",
            name=name,
        )
    return name


def check_doc_id(doc_id: object, error: type[InvalidArgumentError] = InvalidDocumentError) -> str:
    """``doc_id`` if a document can have it: a non-blank string of at most MAX_ID_CHARS
    that SQLite can store; else ``error`` (InvalidArgumentError for the ids of deletes
    and lookups). One rule for both, so a get never answers "nothing" to what a delete
    refuses (issue #8)."""
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise error(f"a document id must be a non-empty string, got {doc_id!r}"[:200], id=str(doc_id)[:40])
    if len(doc_id) > MAX_ID_CHARS:
        raise error(f"document id is longer than {MAX_ID_CHARS} characters", id=doc_id[:40])
    storable_utf8(doc_id, "id", doc_id, error)
    return doc_id


def storable_utf8(
    text: str, what: str, doc_id: str, error: type[InvalidArgumentError] = InvalidDocumentError
) -> bytes:
    """``text`` as UTF-8. A lone surrogate (a JSON "\\ud800" escape, a file name that
    is not UTF-8) is text SQLite cannot store: refused where the document is made,
    not where a batch or a session writes it (issue #8)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(
            f"document {doc_id!r}: {what} holds text SQLite cannot store (a lone surrogate, {exc.object[exc.start]!r})",
            id=doc_id,
        ) from exc


def check_ids(ids: Sequence[str]) -> list[str]:
    """``ids`` (a list or tuple) as a list, each id checked as DocumentInfo checks one.

    Invariant (issue #8): an id no document can have (blank, longer than
    MAX_ID_CHARS, a lone surrogate) is an InvalidArgumentError here, where
    deletes and lookups enter (client, session, service, reader), so a get
    cannot answer "nothing" to what a delete refuses, nor a job be queued for it."""
    if not isinstance(ids, (list, tuple)):
        raise InvalidArgumentError(f"ids must be a list of strings, got {type(ids).__name__}")
    return [check_doc_id(doc_id, InvalidArgumentError) for doc_id in ids]


def check_embedding(values: Any, what: str, **fields: Any) -> tuple[float, ...]:
    """``values`` as a tuple of floats, checked as ``_floats`` checks them.

    The usual case, a list of Python floats and ints (what JSON gives), skips numpy:
    the set of element types (one C-level pass) shows they are plain numbers, and
    one ``math.hypot`` that they are finite and within float32 (a NaN or an infinity
    makes it NaN or infinite, and no element is larger than the vector's length).
    Anything else, or a length over the float32 limit, goes to ``_floats``, which
    refuses it or says exactly what is wrong.
    At 10k x 384 through ``wire.docs_from_json`` this is faster than the unchecked
    numpy round trip it replaces (issue #8)."""
    if isinstance(values, (list, tuple)) and values:
        kinds = set(map(type, values))
        if kinds <= _PLAIN_NUMBERS:
            floats = _plain_floats(values, kinds)
            if floats is not None:
                return floats
    return tuple(_floats(values, what, **fields).tolist())


_PLAIN_NUMBERS = frozenset({float, int})
#: Vectors are stored and searched as float32: a larger number would be stored as infinity.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _plain_floats(values: Sequence[float], kinds: set[type]) -> tuple[float, ...] | None:
    """``values`` (all exactly float or int) as floats, or None unless each is finite
    and within float32 (maybe, if the vector is longer than the float32 limit)."""
    try:
        floats = tuple(values) if kinds == {float} else tuple(map(float, values))
    except OverflowError:  # an int too large for a float64
        return None
    return floats if math.hypot(*floats) <= FLOAT32_MAX else None


def _floats(values: Any, what: str, **fields: Any) -> np.ndarray:
    """``values`` as a flat, non-empty float64 array of finite numbers float32 can hold.

    Invariant (issue #8): only real numbers get through: Python ints and floats
    or numpy's integer and floating types. Strings ("0.1"), booleans, complex
    numbers and nested sequences are an InvalidDocumentError (numpy alone would
    turn "0.1" and True into floats), as are NaN, infinity and a number beyond
    float32, the type vectors are stored in. ``fields`` (e.g. the document's id)
    go into the error."""
    if isinstance(values, (str, bytes, bytearray, memoryview)) or not hasattr(values, "__len__"):
        raise InvalidDocumentError(f"{what} must be a sequence of numbers", **fields)
    refused = _not_a_number_type(values)
    if refused is not None:
        raise InvalidDocumentError(f"{what} must be a flat sequence of numbers, it holds a {refused}", **fields)
    # Converted and checked in numpy: a per-element Python loop cost ~60 us for a
    # 384-dim query vector, more than the whole vector search at 10k documents.
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidDocumentError(f"{what} must be a sequence of finite numbers: {exc}", **fields) from exc
    if arr.ndim != 1:
        raise InvalidDocumentError(f"{what} must be a flat sequence of numbers", **fields)
    if not arr.size:
        raise InvalidDocumentError(f"{what} is empty", **fields)
    if not np.abs(arr).max() <= FLOAT32_MAX:  # (one pass; NaN compares False too)
        if not np.isfinite(arr).all():
            raise InvalidDocumentError(f"{what} contains NaN or infinity", **fields)
        raise InvalidDocumentError(
            f"{what} holds a number beyond float32 (|x| > {FLOAT32_MAX:.4g}), the type vectors are stored in",
            **fields,
        )
    return arr


def _not_a_number_type(values: Any) -> str | None:
    """The name of the first kind of element in ``values`` that is not a real number,
    or None. An array is judged by its dtype; anything else by its elements' types,
    in one C-level pass (``set(map(type, ...))``, ~11 us for 384 floats)."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "fiu":
            return None
        if values.dtype.kind != "O":
            return f"{values.dtype} array"
        values = values.ravel().tolist()
    try:
        kinds = set(map(type, values))
    except TypeError:  # (not iterable after all)
        return type(values).__name__
    return next((kind.__name__ for kind in kinds if not _is_number_type(kind)), None)


def _is_number_type(kind: type) -> bool:
    """int, float and numpy's integers and floats; not bool (an int in Python, not a number on the wire)."""
    return issubclass(kind, (int, float, np.integer, np.floating)) and not issubclass(kind, (bool, np.bool_))


def check_query_embedding(embedding: Any) -> tuple[tuple[float, ...], np.ndarray]:
    """A query embedding as (tuple of floats, float32 array), checked as documents' are.
    An array is checked by its dtype and converted once; a list as ``check_embedding`` does.

    A flat float32 array (what models give) needs only a finiteness pass (a float32
    cannot exceed ``FLOAT32_MAX``): no float64 copy, ~3 us less of the ~0.3 ms a
    vector query takes at 10k documents. Any other array, or a bad one, goes the
    general way, which accepts it or says what is wrong."""
    if isinstance(embedding, np.ndarray):
        if embedding.dtype == np.float32 and embedding.ndim == 1 and embedding.size and np.isfinite(embedding).all():
            return tuple(embedding.tolist()), embedding.copy()
        vector = _floats(embedding, "query embedding")
        return tuple(vector.tolist()), vector.astype(np.float32)
    values = check_embedding(embedding, "query embedding")
    return values, np.array(values, dtype=np.float32)
