"""Every filter operator, nesting, missing fields, and malformed filters."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from mosslite.errors import CorruptIndexError, InvalidFilterError
from mosslite.filters import MAX_DEPTH, compile_filter
from mosslite.metadata_columns import Columns, DictColumns, JsonColumns

ROWS = [
    {"category": "audio", "price": "129.99", "loc": "52.5200,13.4050", "name": "b"},  # Berlin
    {"category": "audio", "price": "89", "loc": "52.5100,13.3900", "name": "a"},  # ~1.6 km away
    {"category": "shipping", "price": "4.99", "loc": "48.8566,2.3522", "name": "c"},  # Paris
    {"category": "returns", "price": "abc"},
    {},
]


ColumnsOf = Callable[[list[dict]], Columns]


@pytest.fixture(params=["dicts", "json texts"])
def columns_of(request: pytest.FixtureRequest) -> ColumnsOf:
    """Both ways rows reach a filter: a session's dicts, an index file's JSON texts."""
    if request.param == "dicts":
        return DictColumns
    return lambda rows: json_columns([json.dumps(row) for row in rows])


def json_columns(texts: list[str]) -> JsonColumns:
    """Columns over ``texts`` as a reader gives them: loaded on the first filter."""
    loads: list[int] = []
    columns = JsonColumns(len(texts), lambda: loads.append(1) or texts)
    assert not loads
    return columns


def matching(spec: dict, columns_of: ColumnsOf) -> list[int]:
    compiled = compile_filter(spec)
    assert compiled is not None
    return [i for i, hit in enumerate(compiled.mask(columns_of(ROWS))) if hit]


def cond(field: str, **ops: object) -> dict:
    return {"field": field, "condition": {"$" + k: v for k, v in ops.items()}}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (cond("category", eq="audio"), [0, 1]),
        (cond("category", ne="audio"), [2, 3, 4]),  # a missing field matches $ne
        (cond("category", **{"in": ["shipping", "returns"]}), [2, 3]),
        (cond("category", nin=["audio"]), [2, 3, 4]),
        (cond("price", gt="89"), [0]),  # numeric: 129.99 > 89 > 4.99 (as text, "4.99" > "129.99")
        (cond("price", gte=89), [0, 1]),
        (cond("price", lt="89"), [2]),
        (cond("price", lte="89"), [1, 2]),
        (cond("name", gt="a"), [0, 2]),  # both sides text: string order
        (cond("price", gte="5", lte="100"), [1]),  # several operators: all must hold
        (cond("loc", near="52.5200,13.4050,2000"), [0, 1]),
        (cond("loc", near="52.5200,13.4050,100"), [0]),
        (cond("loc", near="52.5200,13.4050,1000000"), [0, 1, 2]),
        ({"$and": [cond("category", eq="audio"), cond("price", lt="100")]}, [1]),
        ({"$or": [cond("category", eq="returns"), cond("price", gt="100")]}, [0, 3]),
        ({"$or": [{"$and": [cond("category", eq="audio"), cond("name", eq="a")]}, cond("category", eq="shipping")]}, [1, 2]),
        (cond("missing", eq="x"), []),
    ],
)
def test_operators(spec: dict, expected: list[int], columns_of: ColumnsOf) -> None:
    assert matching(spec, columns_of) == expected


def test_numeric_comparison_skips_values_that_are_not_numbers(columns_of: ColumnsOf) -> None:
    assert 3 not in matching(cond("price", gt="1"), columns_of)
    assert 3 not in matching(cond("price", lt="1"), columns_of)


def test_text_comparison_orders_iso_dates(columns_of: ColumnsOf) -> None:
    rows = [{"day": "2026-01-05"}, {"day": "2025-12-31"}]
    compiled = compile_filter(cond("day", gte="2026-01-01"))
    assert compiled is not None
    assert compiled.mask(columns_of(rows)).tolist() == [True, False]


def test_one_column_serves_text_and_number_comparisons_in_turn(columns_of: ColumnsOf) -> None:
    # A column's numbers are worked out on the first comparison with a number.
    columns = columns_of(ROWS)
    for spec, expected in [(cond("price", eq="89"), [1]), (cond("price", gt=10), [0, 1]), (cond("price", gt="5"), [0, 1])]:
        compiled = compile_filter(spec)
        assert compiled is not None
        assert [i for i, hit in enumerate(compiled.mask(columns)) if hit] == expected


def test_json_texts_give_the_values_their_dicts_hold() -> None:
    rows = [{"t": 'caf\u00e9 "quoted" \\ \n', "u": "ü"}, {"t": "[1, 2]"}, {"u": "{}"}, {}]
    texts = [json.dumps(row, ensure_ascii=i % 2 == 0) for i, row in enumerate(rows)]
    for field in ("t", "u", "absent"):
        got, want = json_columns(texts).column(field), DictColumns(rows).column(field)
        assert got.present.tolist() == want.present.tolist() and got.strings.tolist() == want.strings.tolist()


@pytest.mark.parametrize("bad", ["not json", "[1]", '"text"', '{"a": "1"}, {"b": "2"}', ""])
def test_metadata_that_is_not_a_json_object_is_a_corrupt_index(bad: str) -> None:
    columns = json_columns(['{"a": "1"}', bad])
    with pytest.raises(CorruptIndexError, match="metadata is not a JSON object"):
        columns.column("a")


def test_none_filter_is_none() -> None:
    assert compile_filter(None) is None


@pytest.mark.parametrize(
    "spec",
    [
        "category = audio",
        {},
        {"field": "category"},
        {"field": "category", "condition": {}},
        {"field": "", "condition": {"$eq": "a"}},
        {"field": "category", "condition": {"$regex": "a.*"}},
        {"field": "category", "condition": "audio"},
        {"field": "category", "condition": {"$eq": ["a"]}},
        {"field": "category", "condition": {"$eq": True}},
        {"field": "category", "condition": {"$eq": None}},
        {"field": "price", "condition": {"$gt": float("nan")}},
        {"field": "category", "condition": {"$in": "audio"}},
        {"field": "loc", "condition": {"$near": "52.5,13.4"}},
        {"field": "loc", "condition": {"$near": "91,13.4,100"}},
        {"field": "loc", "condition": {"$near": "52.5,13.4,-1"}},
        {"$and": []},
        {"$or": "x"},
        {"$and": [{"field": "a", "condition": {"$eq": "1"}}], "$or": []},
        {"$and": [{"field": "a", "condition": {"$bogus": "1"}}]},
    ],
)
def test_malformed_filters_are_typed_errors(spec: object) -> None:
    with pytest.raises(InvalidFilterError):
        compile_filter(spec)  # type: ignore[arg-type]


def test_unknown_operator_message_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidFilterError, match=r"unknown operator '\$regex'.*\$eq"):
        compile_filter({"field": "f", "condition": {"$regex": "x"}})


# -- hostile filters (issue #8) ------------------------------------------------------


def nested(depth: int) -> dict:
    spec: dict = cond("category", eq="audio")
    for i in range(depth):
        spec = {"$and" if i % 2 else "$or": [spec]}
    return spec


def test_nesting_is_bounded_before_recursion_runs_out(columns_of: ColumnsOf) -> None:
    assert matching(nested(MAX_DEPTH), columns_of) == [0, 1]
    with pytest.raises(InvalidFilterError, match=f"at most {MAX_DEPTH} levels"):
        compile_filter(nested(MAX_DEPTH + 1))
    with pytest.raises(InvalidFilterError):  # was a RecursionError
        compile_filter(nested(2000))


def test_a_filter_that_holds_itself_is_refused() -> None:
    loop: dict = {"$or": []}
    loop["$or"].append(loop)
    with pytest.raises(InvalidFilterError):
        compile_filter(loop)


@pytest.mark.parametrize(
    "number", [10**4400, 10**400, -(10**400), 2 * 10**308], ids=["1e4400", "1e400", "-1e400", "2e308"]
)
@pytest.mark.parametrize("op", ["eq", "in", "gt", "lte"])
def test_numbers_beyond_float64_are_refused(number: int, op: str) -> None:
    # 10**4400 was a ValueError (too many digits to print); 10**400 became the text
    # "1000...", compared as a string, so "5" > 10**400.
    with pytest.raises(InvalidFilterError, match="at most 1.798e"):
        compile_filter(cond("price", **{op: [number] if op == "in" else number}))


def test_the_largest_numbers_still_compare_numerically(columns_of: ColumnsOf) -> None:
    assert matching(cond("price", lt=10**308), columns_of) == [0, 1, 2]
    assert matching(cond("price", gt=-(10**308)), columns_of) == [0, 1, 2]


def test_mixed_key_types_are_a_filter_error_not_a_type_error() -> None:
    with pytest.raises(InvalidFilterError, match="got keys"):
        compile_filter({1: "x", "field": "a"})


NUL_ROWS = [{"c": "returns"}, {"c": "returns\x00"}, {"c": "returns\x00\x00"}, {"c": "a\x00b"}, {}]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"$eq": "returns\x00"}, [1]),  # matched "returns" too: numpy's str_ drops a trailing NUL
        ({"$eq": "returns"}, [0]),
        ({"$ne": "returns\x00"}, [0, 2, 3, 4]),
        ({"$in": ["returns\x00", "x"]}, [1]),
        ({"$in": ["returns"]}, [0]),
        ({"$nin": ["returns", "returns\x00"]}, [2, 3, 4]),
        ({"$lte": "returns\x00"}, [0, 1, 3]),
        ({"$gt": "returns"}, [1, 2]),
        ({"$eq": "a\x00b"}, [3]),
    ],
)
def test_a_nul_is_a_character_like_any_other(condition: dict, expected: list[int], columns_of: ColumnsOf) -> None:
    compiled = compile_filter({"field": "c", "condition": condition})
    assert compiled is not None
    assert [i for i, hit in enumerate(compiled.mask(columns_of(NUL_ROWS))) if hit] == expected


def test_a_value_with_a_nul_never_matches_a_column_without_one(columns_of: ColumnsOf) -> None:
    rows = [{"c": "returns"}, {"c": "shipping"}]
    cases = [({"$eq": "returns\x00"}, []), ({"$gte": "returns\x00"}, [1]), ({"$in": ["returns\x00"]}, [])]
    for condition, expected in cases:
        compiled = compile_filter({"field": "c", "condition": condition})
        assert compiled is not None
        assert [i for i, hit in enumerate(compiled.mask(columns_of(rows))) if hit] == expected


@pytest.mark.parametrize(
    "spec",
    [cond("c", eq="a\ud800"), cond("c", **{"in": ["ok", "\udc00"]}), cond("c\ud800", eq="a"), cond("c", lt="\ud800")],
)
def test_a_value_no_document_can_hold_is_refused(spec: dict) -> None:
    # DocumentInfo refuses a lone surrogate (SQLite cannot store it): so does a filter.
    with pytest.raises(InvalidFilterError, match="lone surrogate"):
        compile_filter(spec)
