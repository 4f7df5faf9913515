"""Framework metadata as mosslite keeps it: strings to filter on, exact values to give back."""

from __future__ import annotations

import datetime
import math

import pytest

from mosslite.errors import InvalidDocumentError
from mosslite.filters import compile_filter
from mosslite.metadata_columns import DictColumns
from mosslite.integrations.metadata import condition, from_payload, metadata_strings, payload_json


def test_strings_stay_other_values_become_their_json_and_none_is_absent() -> None:
    metadata = {"s": "x", "i": 1, "f": 2.5, "b": True, "l": ["a", 1], "o": {"k": None}, "n": None, "u": "ü"}
    assert metadata_strings(metadata, "d") == {
        "s": "x", "i": "1", "f": "2.5", "b": "true", "l": '["a", 1]', "o": '{"k": null}', "u": "ü"}
    assert metadata_strings({}, "d") == {} and metadata_strings(None, "d") == {}  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [datetime.date(2024, 1, 1), math.nan, {1, 2}, b"bytes"])
def test_a_value_json_cannot_hold_is_a_typed_error_naming_its_key(value: object) -> None:
    with pytest.raises(InvalidDocumentError, match="'when'"):
        metadata_strings({"when": value}, "d")


def test_keys_are_strings() -> None:
    with pytest.raises(InvalidDocumentError, match="string keys"):
        metadata_strings({1: "x"}, "d")  # type: ignore[dict-item]


def test_payload_round_trip_and_foreign_payloads() -> None:
    metadata = {"i": 1, "n": None, "l": [True]}
    assert from_payload("k", payload_json("k", metadata, "d")) == metadata
    for foreign in (None, "", "payload:refund-1", "{not json", "[1]", '{"other": 1}'):
        assert from_payload("k", foreign) is None


def test_a_condition_meets_the_stored_strings() -> None:
    rows = [metadata_strings(m, "d") for m in ({"b": True, "y": 2024}, {"b": False, "y": 2019}, {})]
    columns = DictColumns(rows)

    def matches(spec: dict) -> list[bool]:
        return compile_filter(spec).mask(columns).tolist()  # type: ignore[union-attr]

    assert matches(condition("b", {"$eq": True})) == [True, False, False]
    assert matches(condition("b", {"$in": [False]})) == [False, True, False]
    assert matches(condition("y", {"$gt": 2020})) == [True, False, False]
    assert matches(condition("y", {"$eq": 2019})) == [False, True, False]


def test_a_number_has_one_text_whether_int_or_float() -> None:
    assert metadata_strings({"a": 1.0, "b": -0.0, "c": 2**53 * 1.0, "d": 0.1, "e": 1e300, "f": 3, "t": True}, "d") == {
        "a": "1", "b": "0", "c": "9007199254740992", "d": "0.1", "e": "1e+300", "f": "3", "t": "true"}
    assert metadata_strings({"big": 2.0**60}, "d") == {"big": "1.152921504606847e+18"}  # past 2**53: repr


def test_numbers_meet_as_numbers_in_equality_and_bools_only_bools() -> None:
    rows = [metadata_strings(m, "d") for m in ({"n": 1.0, "b": True}, {"n": 2, "b": 1}, {"n": 2.5})]
    columns = DictColumns(rows)

    def matches(field: str, operators: dict) -> list[bool]:
        return compile_filter(condition(field, operators)).mask(columns).tolist()  # type: ignore[union-attr]

    assert matches("n", {"$eq": 1}) == matches("n", {"$eq": 1.0}) == [True, False, False]
    assert matches("n", {"$ne": 1}) == [False, True, True]
    assert matches("n", {"$in": [2.0, 2.5]}) == matches("n", {"$in": [2, 2.5]}) == [False, True, True]
    assert matches("n", {"$nin": [1, 2.0]}) == [False, False, True]
    assert matches("n", {"$gte": 2.0}) == [False, True, True]
    assert matches("b", {"$eq": True}) == [True, False, False]  # True is not 1
    assert matches("b", {"$eq": 1}) == [False, True, False]
