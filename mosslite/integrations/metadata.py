"""A framework's metadata as mosslite keeps it: strings to filter on, exact values to give back.

LangChain and LlamaIndex metadata hold JSON values (strings, numbers, booleans,
None, lists, objects); mosslite's metadata holds strings. A framework store keeps
both, so a search gives back ``{"id": 1}``, not ``{"id": "1"}``:

- ``metadata_strings``: each value as the string filters compare. A string stays
  as it is; a number becomes its one text (``one_number``); any other value its
  JSON text (``True`` -> ``"true"``, ``["a"]`` -> ``'["a"]'``); a None is left out
  (the field is absent). So ``$gt: 3`` orders the numbers, as mosslite's filters do.
- ``payload_json`` / ``from_payload``: the exact values, as JSON under one key in the
  document's payload. Documents written through mosslite itself have no such
  payload, and their metadata (strings) is given back as it is.
- ``condition``: one filter condition, its values converted as ``metadata_strings``
  converts a stored one (``True`` meets ``"true"``, ``4`` meets a stored ``4.0``).

One text per number: ``$eq $ne $in $nin`` compare texts, so ``1`` and ``1.0`` must
be written alike on both sides, or ``{"price": 1}`` would miss a stored ``1.0``
(JSON's ``"1.0"``). A float that is a whole number within +-2**53 (where every
whole number is exactly a float) is written as the int's text (``1.0`` -> ``"1"``,
``-0.0`` -> ``"0"``); any other float as its shortest round-trip text (``repr``,
JSON's too: ``2.5``, ``1e+300``); an int as its digits. Past 2**53 a float is not
exact, and an int there equals no float for ``$eq``. A bool is ``"true"`` or
``"false"``, never a number's text: ``True`` does not meet ``1``. (Rewriting
numeric equality as a range was the other way; but ``$ne`` and ``$nin`` must
still match documents without the field, and one text leaves all four operators
what mosslite makes them: text equality.) The order comparisons (``$gt`` ...)
compare numbers either way.

A value JSON cannot hold (a datetime, NaN) is an InvalidDocumentError naming its key,
raised where the document is made, before any work is queued.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidDocumentError

#: Up to here every whole number is exactly a float: such a float is written as the int's text.
WHOLE_FLOATS = 2**53


def metadata_strings(metadata: Mapping[str, Any], doc_id: str) -> dict[str, str]:
    """``metadata`` as mosslite's string metadata (see the module docstring)."""
    return {key: _text(value, key, doc_id) for key, value in _checked(metadata, doc_id).items() if value is not None}


def one_number(value: float) -> int | float:
    """The number a float's one text is made from (module docstring): a whole number
    within +-2**53 as an int, any other float as it is (its ``str`` is its ``repr``)."""
    return int(value) if value.is_integer() and abs(value) <= WHOLE_FLOATS else value


def payload_json(key: str, value: Any, doc_id: str) -> str:
    """``value`` as a payload: ``{key: value}`` in JSON."""
    return _json_text({key: value}, "metadata", doc_id)


def from_payload(key: str, payload: str | None) -> Any | None:
    """What ``payload_json(key, ...)`` stored in ``payload``; None for any other payload."""
    if not payload or not payload.startswith("{"):
        return None
    try:
        found = json.loads(payload)
    except ValueError:
        return None
    return found.get(key) if isinstance(found, dict) else None


def condition(field: str, operators: Mapping[str, Any]) -> dict[str, Any]:
    """The mosslite filter on ``field``, e.g. ``condition("year", {"$gte": 2020})``."""
    return {"field": field, "condition": {op: filter_value(value) for op, value in operators.items()}}


def filter_value(value: Any) -> Any:
    """A filter's value, as stored metadata holds it: a bool as ``"true"``/``"false"``,
    a float that is a whole number within +-2**53 as that int, each item of a list so;
    strings, ints and other floats as they are (mosslite compares a number with the
    stored text ``str(number)``: an int's digits, a float's ``repr``). Anything else,
    NaN included, is left for mosslite's filter check to refuse, as an InvalidFilterError."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return one_number(value)
    if isinstance(value, (list, tuple)):
        return [filter_value(item) for item in value]
    return value


def _checked(metadata: Any, doc_id: str) -> Mapping[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(key, str) for key in metadata):
        raise InvalidDocumentError(f"document {doc_id!r}: metadata must be a mapping with string keys", id=doc_id)
    return metadata


def _text(value: Any, key: str, doc_id: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isfinite(value):  # (NaN: JSON refuses it below)
        return str(one_number(value))
    return _json_text(value, f"metadata {key!r}", doc_id)


def _json_text(value: Any, what: str, doc_id: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidDocumentError(
            f"document {doc_id!r}: {what} cannot be stored: {exc}",
            id=doc_id,
            hint="metadata values are JSON: strings, finite numbers, booleans, None, lists and objects",
        ) from exc
