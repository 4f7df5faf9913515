"""Metadata filters in Moss's shape, compiled once and evaluated as numpy masks.

    {"field": "category", "condition": {"$eq": "audio"}}
    {"$and": [filter, ...]}   {"$or": [filter, ...]}      (nested up to MAX_DEPTH = 32 levels)

Operators: ``$eq $ne $in $nin`` compare strings exactly (numbers given in a
filter are turned into their string form); ``$gt $gte $lt $lte`` compare
numerically when the filter's value is a number or a string that reads as one
(``10``, ``"10"``, ``"9.5"``, ``"1e3"``: whatever ``float()`` parses to a finite
number; documents whose value is not a number then do not match), and as
strings otherwise (ISO dates order correctly); ``$near``
takes ``"lat,lng,radius_m"`` and matches documents whose field holds
``"lat,lng"`` within that great-circle (haversine) distance. Several operators
in one condition must all hold. A document without the field matches only
``$ne`` and ``$nin``, as in MongoDB.

Filters are validated up front so a malformed one fails before any search, and
evaluated over whole columns so a filter on 100k documents costs about a
millisecond instead of 100k Python calls.

Invariants (issue #8: hostile input never crashes):
- ``compile_filter`` raises nothing but InvalidFilterError for a bad filter: at
  most ``MAX_DEPTH`` levels of ``$and``/``$or`` (deeper is refused before any
  recursion could run out of stack), and a number given as a number must be a
  finite float64 (what the comparisons use; a larger int is refused rather than
  turned into text or infinity). A document's value that is not a finite float64
  is not a number and matches no numeric comparison.
- Values compare exactly as Python strings: a NUL is a character like any other,
  so ``"returns\x00"`` never equals ``"returns"`` (numpy's fixed-width ``str_``
  pads with NULs and would drop a trailing one; see metadata_columns.py). A field or
  value holding a lone surrogate, which no stored document can, is refused.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidFilterError
from .metadata_columns import Columns, FieldColumn, as_latlng, as_number, holds_nul

EARTH_RADIUS_M = 6_371_008.8
COMPARISONS = ("$gt", "$gte", "$lt", "$lte")
OPERATORS = ("$eq", "$ne", "$in", "$nin", *COMPARISONS, "$near")
#: Levels of $and/$or a filter may nest: far more than a person writes, far less than the stack holds.
MAX_DEPTH = 32


class Filter:
    """A validated filter; ``mask(columns)`` says which rows match."""

    def mask(self, columns: Columns) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class _All(Filter):
    parts: tuple[Filter, ...]

    def mask(self, columns: Columns) -> np.ndarray:
        out = np.ones(len(columns), dtype=bool)
        for part in self.parts:
            out &= part.mask(columns)
        return out


@dataclass(frozen=True)
class _Any(Filter):
    parts: tuple[Filter, ...]

    def mask(self, columns: Columns) -> np.ndarray:
        out = np.zeros(len(columns), dtype=bool)
        for part in self.parts:
            out |= part.mask(columns)
        return out


@dataclass(frozen=True)
class _Condition(Filter):
    field: str
    op: str
    value: Any
    #: The value holds a NUL: compare with the column's Python strings (see FieldColumn).
    exact: bool = False

    def mask(self, columns: Columns) -> np.ndarray:
        col = columns.column(self.field)
        strings = col.exact_strings if self.exact else col.strings
        if self.op == "$eq":
            return col.present & (strings == self.value)
        if self.op == "$ne":
            return ~(col.present & (strings == self.value))
        if self.op == "$in":
            return col.present & np.isin(strings, self.value)
        if self.op == "$nin":
            return ~(col.present & np.isin(strings, self.value))
        if self.op == "$near":
            lat, lng, radius_m = self.value
            doc_lat, doc_lng = col.latlng()
            with np.errstate(invalid="ignore"):
                return haversine_m(doc_lat, doc_lng, lat, lng) <= radius_m
        return self._compare(col, strings)

    def _compare(self, col: FieldColumn, strings: np.ndarray) -> np.ndarray:
        text, number = self.value
        ops = {"$gt": np.greater, "$gte": np.greater_equal, "$lt": np.less, "$lte": np.less_equal}
        compare = ops[self.op]
        if number is None:
            return col.present & compare(strings, text)
        # A number in the filter orders numbers: "9.5" < "10"; a value that is not
        # a number (NaN here) is not comparable with it, and does not match.
        with np.errstate(invalid="ignore"):
            return compare(col.numbers, number)


def haversine_m(lat1: np.ndarray, lng1: np.ndarray, lat2: float, lng2: float) -> np.ndarray:
    p1, p2 = np.radians(lat1), math.radians(lat2)
    dlat, dlng = p2 - p1, np.radians(lng2 - lng1)
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * math.cos(p2) * np.sin(dlng / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def compile_filter(spec: Mapping[str, Any] | None) -> Filter | None:
    """Validate ``spec`` and return a Filter (None stays None)."""
    if spec is None:
        return None
    return _compile(spec, "filter", 0)


def _compile(spec: Any, where: str, depth: int) -> Filter:
    if not isinstance(spec, Mapping):
        raise InvalidFilterError(f"{where} must be an object, got {type(spec).__name__}")
    keys = set(spec)
    if keys in ({"$and"}, {"$or"}):
        (key,) = keys
        if depth >= MAX_DEPTH:
            raise InvalidFilterError(f"{where}: filters nest at most {MAX_DEPTH} levels of $and/$or")
        parts = spec[key]
        if not isinstance(parts, list) or not parts:
            raise InvalidFilterError(f"{where}.{key} must be a non-empty list of filters")
        compiled = tuple(_compile(p, f"{where}.{key}[{i}]", depth + 1) for i, p in enumerate(parts))
        return _All(compiled) if key == "$and" else _Any(compiled)
    if keys == {"field", "condition"}:
        return _compile_condition(spec["field"], spec["condition"], where)
    raise InvalidFilterError(
        f"{where} must have exactly 'field' and 'condition', or one of '$and'/'$or'; "
        f"got keys {sorted(keys, key=repr)}"  # (repr: keys of several types do not sort)
    )


def _compile_condition(field: Any, condition: Any, where: str) -> Filter:
    if not isinstance(field, str) or not field:
        raise InvalidFilterError(f"{where}.field must be a non-empty string")
    _storable(field, f"{where}.field")
    if not isinstance(condition, Mapping) or not condition:
        raise InvalidFilterError(f"{where}.condition must be an object like {{\"$eq\": \"value\"}}")
    parts: list[Filter] = []
    for op, value in condition.items():
        if op not in OPERATORS:
            raise InvalidFilterError(f"{where}: unknown operator {op!r}; use one of {' '.join(OPERATORS)}")
        operand = _operand(op, value, f"{where}.condition.{op}")
        if holds_nul(operand):
            parts.append(_Condition(field, op, _exact_operand(operand), exact=True))
        else:
            parts.append(_Condition(field, op, operand))
    return parts[0] if len(parts) == 1 else _All(tuple(parts))


def _exact_operand(operand: Any) -> Any:
    """An operand holding a NUL, made to compare exactly: numpy turns a bare ``str``
    into a fixed-width ``str_`` before comparing (dropping a trailing NUL), but
    compares a 0-d ``object`` array's string as Python does."""
    if isinstance(operand, str):  # $eq $ne
        return _object_scalar(operand)
    if isinstance(operand, tuple):  # a comparison's (text, number)
        text, number = operand
        return _object_scalar(text), number
    return operand  # $in $nin: already an object array


def _object_scalar(text: str) -> np.ndarray:
    out = np.empty((), dtype=object)
    out[()] = text
    return out


def _operand(op: str, value: Any, where: str) -> Any:
    if op in ("$in", "$nin"):
        if not isinstance(value, (list, tuple)):
            raise InvalidFilterError(f"{where} takes a list of values")
        texts = [_scalar(v, where) for v in value]
        return np.array(texts, dtype=object if holds_nul(texts) else np.str_)
    if op == "$near":
        parsed = _near(value)
        if parsed is None:
            raise InvalidFilterError(f'{where} takes "lat,lng,radius_m" with -90<=lat<=90, -180<=lng<=180, radius>=0')
        return parsed
    text = _scalar(value, where)
    if op in COMPARISONS:
        number = as_number(text)
        return text, None if math.isnan(number) else number
    return text


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidFilterError(f"{where}: values are strings (or numbers), got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidFilterError(f"{where}: {value} is not a finite number")
    if isinstance(value, int) and not _fits_float64(value):
        # (Checked before str(): an int of over 4300 digits cannot even be printed.)
        raise InvalidFilterError(f"{where}: a number in a filter is at most {sys.float_info.max:.4g} in magnitude")
    return _storable(value, where) if isinstance(value, str) else str(value)


def _storable(text: str, where: str) -> str:
    """``text``, unless it holds a lone surrogate: no document can (DocumentInfo refuses
    text SQLite cannot store), so such a filter is a mistake, not a miss (issue #8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidFilterError(f"{where}: holds a lone surrogate, which no stored value can") from exc
    return text


def _fits_float64(value: int) -> bool:
    """Whether an int is within float64's finite range (comparisons are in float64)."""
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _near(value: Any) -> tuple[float, float, float] | None:
    if not isinstance(value, str):
        return None
    lat_lng, _, radius = value.rpartition(",")
    point = as_latlng(lat_lng)
    radius_m = as_number(radius.strip())
    if point is None or math.isnan(radius_m) or radius_m < 0:
        return None
    return point[0], point[1], radius_m
