"""An index's metadata as columns: one field's values across all documents, in row
order, which filters (filters.py) compare as whole numpy arrays; and stored metadata
texts parsed into dicts (rows.py shares them).

A column keeps exactly the strings the documents hold: numpy's fixed-width ``str_``
pads with NULs and would drop a trailing one, so a field with a NUL in any value
keeps Python strings instead (issue #8; see ``FieldColumn``). Numbers and
"lat,lng" points are read from the strings on the first comparison that needs them.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .errors import CorruptIndexError


@dataclass(frozen=True)
class FieldColumn:
    """One metadata field across all documents of an index, in row order.

    ``strings`` is numpy's fixed-width ``str_`` (fast to compare) unless a value
    holds a NUL: ``str_`` pads with NULs, so "a\x00" would read back, and compare,
    as "a". Such a column keeps Python strings (``object``), compared exactly
    (issue #8); finding out costs one join of the values (~0.5 ms at 100k)."""

    present: np.ndarray  # bool
    strings: np.ndarray  # str_ (object if a value holds a NUL), "" where absent

    @classmethod
    def from_values(cls, values: Sequence[str | None]) -> FieldColumn:
        present = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
        texts = [v if v is not None else "" for v in values]
        strings = np.array(texts, dtype=object if holds_nul(texts) else np.str_)
        return cls(present=present, strings=strings)

    @functools.cached_property
    def exact_strings(self) -> np.ndarray:
        """``strings`` as Python strings: what a value holding a NUL is compared with."""
        return self.strings if self.strings.dtype == object else self.strings.astype(object)

    @functools.cached_property
    def numbers(self) -> np.ndarray:
        """float64, NaN where absent or not a number. Only comparisons with a number
        need it, and a field of words costs an exception per document to find out
        (~150 ms at 100k documents): worked out on the first such comparison."""
        return np.fromiter(
            (as_number(v) if p else math.nan for v, p in zip(self.strings.tolist(), self.present.tolist())),
            dtype=np.float64,
            count=len(self.strings),
        )

    def latlng(self) -> tuple[np.ndarray, np.ndarray]:
        pairs = [as_latlng(s) if p else None for s, p in zip(self.strings.tolist(), self.present.tolist())]
        lat = np.array([p[0] if p else np.nan for p in pairs], dtype=np.float64)
        lng = np.array([p[1] if p else np.nan for p in pairs], dtype=np.float64)
        return lat, lng


class Columns(Protocol):
    """What a filter reads: the row count and one column per metadata field."""

    def __len__(self) -> int: ...

    def column(self, field: str) -> FieldColumn: ...


class DictColumns:
    """Columns over a list of metadata dicts (a session's rows, a test's documents)."""

    def __init__(self, metadata: Sequence[Mapping[str, str]]) -> None:
        self._metadata = metadata
        self._cache: dict[str, FieldColumn] = {}

    def __len__(self) -> int:
        return len(self._metadata)

    def column(self, field: str) -> FieldColumn:
        col = self._cache.get(field)
        if col is None:
            col = self._cache[field] = FieldColumn.from_values([m.get(field) for m in self._metadata])
        return col


class JsonColumns:
    """Columns over metadata held as JSON texts (an index file's ``docs.metadata``).

    The texts are read (``load``, in row order) and parsed on the first filter, in one
    ``json.loads`` of all of them joined (at 100k documents 135 ms, against 406 for
    one call per document), into one list of values per field; each field's list
    becomes its column when a filter first asks for it. Neither the texts nor the
    parsed dicts are kept: with the dicts, the first filter added 54 MB of resident
    memory at 100k benchmark documents; without, 27. An index that is never
    filtered never reads them (issue #7: opening reads no per-document objects).
    """

    def __init__(self, count: int, load: Callable[[], Sequence[str]]) -> None:
        self._count = count
        self._load = load
        self._values: dict[str, list[str | None]] | None = None
        self._cache: dict[str, FieldColumn] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    def column(self, field: str) -> FieldColumn:
        col = self._cache.get(field)
        if col is None:
            with self._lock:
                col = self._cache.get(field)
                if col is None:
                    if self._values is None:
                        self._values = values_by_field(self._load())
                    values = self._values.pop(field, None) or [None] * self._count
                    col = self._cache[field] = FieldColumn.from_values(values)
        return col


def values_by_field(texts: Sequence[str]) -> dict[str, list[str | None]]:
    """For each metadata field, its value in every document (None where absent)."""
    values: dict[str, list[str | None]] = {}
    for row, metadata in enumerate(metadata_objects(texts)):
        for field, value in metadata.items():
            column = values.get(field)
            if column is None:
                column = values[field] = [None] * len(texts)
            column[row] = value
    return values


def metadata_objects(texts: Sequence[str]) -> list[dict[str, str]]:
    """Documents' stored metadata texts as dicts, parsed as one JSON array: one
    ``json.loads`` is faster than one per text (a query's 5 results: ~13 -> ~6 us).
    Should the joined text not give one object per text, each is parsed alone, and
    the first that is not an object raises as in ``metadata_object``."""
    try:
        parsed = json.loads("[" + ",".join(texts) + "]")
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or len(parsed) != len(texts) or not all(type(m) is dict for m in parsed):
        return [metadata_object(text) for text in texts]
    return parsed


def metadata_object(text: str) -> dict[str, str]:
    """A document's stored metadata as a dict. Anything else is a damaged file (the
    schema's CHECK refuses it), reported as such rather than as a JSON error."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raise CorruptIndexError(f"a document's metadata is not a JSON object: {str(text)[:80]!r}")
    return value


def holds_nul(value: Any) -> bool:
    """Whether a value (an operand, or a column's texts) holds a NUL anywhere."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, tuple):  # (text, number) of a comparison; $near's floats
        return any(holds_nul(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.dtype == object
    if isinstance(value, list):
        return "\x00" in "".join(value)
    return False


def as_number(value: str | None) -> float:
    """A value as a finite float64, or NaN: absent, not a number, or beyond float64."""
    if value is None:
        return math.nan
    try:
        number = float(value)
    except ValueError:
        return math.nan
    return number if math.isfinite(number) else math.nan


def as_latlng(value: str) -> tuple[float, float] | None:
    """``"lat,lng"`` as a point on the globe, or None."""
    parts = value.split(",")
    if len(parts) != 2:
        return None
    lat, lng = (as_number(p.strip()) for p in parts)
    if math.isnan(lat) or math.isnan(lng) or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    return lat, lng
