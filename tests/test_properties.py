"""Properties of the pure parts under arbitrary input (issue #8: hostile input never crashes).

Each property holds for every input hypothesis makes: a typed MossliteError or a
correct answer, never another exception. Runs are derandomized and bounded so
the whole file takes a few seconds; a failure prints the smallest input found.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable
from typing import Any

import apsw
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosslite import DocumentInfo, MutationOptions, QueryOptions
from mosslite._db import read_schema
from mosslite.errors import InvalidArgumentError, InvalidFilterError, InvalidNameError, MossliteError
from mosslite.filters import EARTH_RADIUS_M, OPERATORS, compile_filter
from mosslite.metadata_columns import DictColumns, JsonColumns
from mosslite.changeset import decode, record, row_of, with_full_rows
from mosslite.validation import MAX_NAME_CHARS, validate_name
from mosslite.wire import docs_from_json

BOUNDED = settings(derandomize=True, deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(BOUNDED, max_examples=60)

# -- filters: the compiled filter agrees with an obviously correct evaluator ---------

FIELDS = ("a", "b")
# Values that collide, order and prefix each other, often: texts that differ only
# by trailing NULs (numpy's str_ cannot tell them apart), numbers as text.
colliding = st.sampled_from(["", "a", "a\x00", "a\x00\x00", "\x00", "ab", "10", "9.5", "1e400", "nan", "-0", "1_0"])
short_text = st.one_of(colliding, colliding, st.text(alphabet="ab\x00 1.-e", max_size=4), st.text(max_size=3))
numeric_text = st.one_of(st.integers(-1000, 1000), st.floats(width=32)).map(str)
lat_lng_text = st.tuples(st.floats(-90, 90), st.floats(-180, 180)).map(lambda p: f"{p[0]},{p[1]}")
doc_value = st.one_of(short_text, numeric_text, lat_lng_text)
rows_strategy = st.lists(st.dictionaries(st.sampled_from(FIELDS), doc_value, max_size=3), max_size=12)

filter_scalar = st.one_of(
    short_text, numeric_text, st.integers(-1000, 1000), st.floats(allow_nan=False, allow_infinity=False)
)
near_value = st.tuples(st.floats(-90, 90), st.floats(-180, 180), st.floats(0, 2e7)).map(
    lambda t: f"{t[0]},{t[1]},{t[2]}"
)


def operand(op: str) -> st.SearchStrategy[Any]:
    if op in ("$in", "$nin"):
        return st.lists(filter_scalar, max_size=4)
    if op == "$near":
        return near_value
    return filter_scalar


condition = st.lists(st.sampled_from(OPERATORS), min_size=1, max_size=2, unique=True).flatmap(
    lambda ops: st.fixed_dictionaries({op: operand(op) for op in ops})
)
leaf = st.fixed_dictionaries({"field": st.sampled_from(FIELDS), "condition": condition})
filters = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.fixed_dictionaries({"$and": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"$or": st.lists(inner, min_size=1, max_size=3)}),
    ),
    max_leaves=6,
)


def ref_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def ref_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def ref_point(text: str) -> tuple[float, float] | None:
    parts = text.split(",")
    if len(parts) != 2:
        return None
    lat, lng = (ref_number(p.strip()) for p in parts)
    if lat is None or lng is None or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    return lat, lng


def ref_distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dlat, dlng = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dlat / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlng / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(max(h, 0.0), 1.0)))


COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le,
}


def ref_holds(op: str, value: Any, have: str | None) -> bool:
    """The README's filter semantics, one document at a time, in plain Python."""
    if have is None:
        return op in ("$ne", "$nin")
    if op == "$eq":
        return have == ref_text(value)
    if op == "$ne":
        return have != ref_text(value)
    if op == "$in":
        return have in [ref_text(v) for v in value]
    if op == "$nin":
        return have not in [ref_text(v) for v in value]
    if op == "$near":
        where, _, radius = value.rpartition(",")
        point, centre = ref_point(have), ref_point(where)
        assert centre is not None
        return point is not None and ref_distance_m(point, centre) <= float(radius)
    text = ref_text(value)
    want = ref_number(text)
    if want is None:
        return COMPARE[op](have, text)
    got = ref_number(have)
    return got is not None and COMPARE[op](got, want)


def ref_matches(spec: dict, doc: dict[str, str]) -> bool:
    if "$and" in spec:
        return all(ref_matches(part, doc) for part in spec["$and"])
    if "$or" in spec:
        return any(ref_matches(part, doc) for part in spec["$or"])
    return all(ref_holds(op, value, doc.get(spec["field"])) for op, value in spec["condition"].items())


@BOUNDED
@given(spec=filters, rows=rows_strategy)
def test_a_compiled_filter_agrees_with_the_reference(spec: dict, rows: list[dict[str, str]]) -> None:
    assert_agrees(spec, rows)


def assert_agrees(spec: dict, rows: list[dict[str, str]]) -> None:
    """The compiled filter's mask is the reference's answer, over dicts and over JSON texts."""
    compiled = compile_filter(spec)
    assert compiled is not None
    expected = [ref_matches(spec, row) for row in rows]
    texts = [json.dumps(row) for row in rows]
    for columns in (DictColumns(rows), JsonColumns(len(texts), lambda: texts)):
        assert compiled.mask(columns).tolist() == expected


nul_text = st.text(alphabet="a\x00b", max_size=3)
text_ops = [op for op in OPERATORS if op != "$near"]


@BOUNDED
@given(
    spec=st.fixed_dictionaries(
        {
            "field": st.just("a"),
            "condition": st.dictionaries(st.sampled_from(text_ops), nul_text, min_size=1, max_size=2),
        }
    ).map(lambda s: {**s, "condition": {op: [v] if op in ("$in", "$nin") else v for op, v in s["condition"].items()}}),
    rows=st.lists(st.dictionaries(st.just("a"), nul_text), max_size=8),
)
def test_texts_that_differ_only_by_nuls_are_told_apart(spec: dict, rows: list[dict[str, str]]) -> None:
    assert_agrees(spec, rows)


json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4),
    st.sampled_from([*OPERATORS, "field", "condition", "$and", "$or", "52.5,13.4,100", 10**400]),
)
filter_keys = st.sampled_from(["field", "condition", "$and", "$or", *OPERATORS])
junk = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(filter_keys | st.text(max_size=2) | st.integers(), inner, max_size=3),
    max_leaves=12,
)


@BOUNDED
@given(spec=junk | filters, rows=rows_strategy)
def test_any_filter_compiles_or_is_an_invalid_filter(spec: Any, rows: list[dict[str, str]]) -> None:
    try:
        compiled = compile_filter(spec)
    except InvalidFilterError:
        return
    if compiled is not None:
        assert compiled.mask(DictColumns(rows)).shape == (len(rows),)


# -- names ------------------------------------------------------------------------------

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@BOUNDED
@given(
    name=st.one_of(
        st.text(),
        st.from_regex(NAME, fullmatch=True),
        st.from_regex(NAME, fullmatch=True).map(lambda n: n + "\n"),
        st.text(alphabet="aZ09._-\n\r\x00/", max_size=8),
        st.none(), st.integers(), st.binary(),
    )
)
def test_a_name_is_valid_or_an_invalid_name(name: Any) -> None:
    try:
        got = validate_name(name)
    except InvalidNameError:
        assert not (isinstance(name, str) and NAME.fullmatch(name) and ".." not in name and len(name) <= MAX_NAME_CHARS)
        return
    assert got == name and NAME.fullmatch(name) and ".." not in name and len(name) <= MAX_NAME_CHARS


# -- changesets ---------------------------------------------------------------------------

DIM = 3
ids = st.text(min_size=1, max_size=12).filter(str.strip)
documents = st.builds(
    DocumentInfo,
    id=ids,
    text=st.text(max_size=20),
    metadata=st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3),
    payload=st.none() | st.text(max_size=8),
    embedding=st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=DIM, max_size=DIM),
)
doc_lists = st.lists(documents, max_size=6, unique_by=lambda d: d.id)


def session_db(docs: list[DocumentInfo]) -> apsw.Connection:
    conn = apsw.Connection(":memory:")
    conn.execute(read_schema("session.sql"))
    write(conn, docs)
    return conn


def write(conn: apsw.Connection, docs: list[DocumentInfo]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO docs (id, text, metadata, payload, embedding) VALUES (?, ?, ?, ?, ?)",
        [(d.id, *row_of(d)) for d in docs],
    )


@BOUNDED
@given(before=doc_lists, after=doc_lists, data=st.data())
def test_a_diff_round_trips(before: list[DocumentInfo], after: list[DocumentInfo], data: st.DataObject) -> None:
    conn = session_db(before)
    deleted = data.draw(st.sets(st.sampled_from([d.id for d in before])) if before else st.just(set()))
    recorder = record(conn)
    conn.executemany("DELETE FROM docs WHERE id = ?", [(i,) for i in deleted])
    write(conn, after)
    changeset = with_full_rows(conn, recorder.changeset())
    recorder.close()
    was = {d.id: d for d in before}
    now = {**{i: d for i, d in was.items() if i not in deleted}, **{d.id: d for d in after}}
    changed = {i for i in was.keys() | now.keys() if row(was.get(i)) != row(now.get(i))}
    changes = decode(changeset) if changeset else []
    assert {c.id for c in changes} == changed
    for change in changes:
        assert change.old == row(was.get(change.id)) and change.new == row(now.get(change.id))
        if change.new is not None:
            assert change.document() == now[change.id]


def row(doc: DocumentInfo | None) -> tuple | None:
    return None if doc is None else row_of(doc)


def a_valid_diff() -> bytes:
    conn = session_db([])
    recorder = record(conn)
    docs = [DocumentInfo(id=f"d{i}", text=f"text {i}", metadata={"k": str(i)}, embedding=[0.5, i, 1.0]) for i in range(3)]
    write(conn, docs)
    return recorder.changeset()


BASE_DIFF = a_valid_diff()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    blob = bytearray(BASE_DIFF)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(len(blob) - 1, 0)))
        if kind == "flip" and blob:
            blob[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del blob[at:]
        elif kind == "insert":
            blob[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif blob:
            del blob[at : at + draw(st.integers(1, 8))]
    return bytes(blob)


@BOUNDED
@given(blob=mutated() | st.binary(max_size=64))
def test_any_bytes_decode_or_are_an_invalid_argument(blob: bytes) -> None:
    try:
        changes = decode(blob)
    except InvalidArgumentError:
        return
    for change in changes:  # what decode accepts, the service can apply
        if change.new is not None:
            change.document()


hostile_sql_value = st.one_of(
    st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=6), st.binary(max_size=8),
    st.binary(max_size=6).map(lambda b: ("text", b)),  # bytes stored as TEXT: maybe not UTF-8
    st.sampled_from(['{"k": "v"}', '{"k": 1e999}', '{"\\ud800": "x"}', '{"k": ' + "[" * 3000 + "]" * 3000 + "}", "[]"]),
    st.lists(st.floats(width=32), min_size=1, max_size=3).map(lambda v: np.asarray(v, dtype="<f4").tobytes()),
)


@QUICK
@given(values=st.lists(st.tuples(*[hostile_sql_value] * 5), min_size=1, max_size=3))
def test_hostile_rows_decode_or_are_an_invalid_argument(values: list[tuple]) -> None:
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE TABLE docs (id PRIMARY KEY, text, metadata, payload, embedding)")  # no type checks
    recorder = record(conn)
    for row_values in values:
        sql_values = ", ".join("CAST(? AS TEXT)" if isinstance(v, tuple) else "?" for v in row_values)
        params = [v[1] if isinstance(v, tuple) else v for v in row_values]
        conn.execute(f"INSERT OR REPLACE INTO docs VALUES ({sql_values})", params)
    changeset = recorder.changeset()
    if not changeset:
        return
    try:
        changes = decode(changeset)
    except InvalidArgumentError:
        return
    for change in changes:
        if change.new is not None:
            change.document()


# -- records ------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5), st.binary(max_size=5),
    st.sampled_from([10**400, float("nan"), 1e39, np.float32(0.5), np.int64(3), np.bool_(True), 1 + 2j, "a\ud800"]),
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3),
    max_leaves=8,
)
arrays = st.sampled_from(
    [np.array([0.5, 1.0]), np.array([1, 2], dtype=np.int8), np.array([True]), np.array(["0.5"]), np.array([[0.5]]),
     np.array([], dtype=np.float64), np.array(0.5), np.array([0.5, None], dtype=object), np.array([np.nan])]
)
vectors = st.one_of(
    anything,
    arrays,
    st.lists(st.one_of(st.floats(), st.integers(), st.booleans(), st.text(max_size=2)), min_size=1, max_size=6),
)


def real_numbers(values: Any) -> bool:
    """Whether ``values`` holds only real numbers (no str, bool, complex, ...)."""
    if isinstance(values, np.ndarray):
        return values.dtype.kind in "fiu" or (values.dtype == object and real_numbers(values.ravel().tolist()))
    return all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in values
    )


def check_document(doc: DocumentInfo) -> None:
    assert isinstance(doc.id, str) and doc.id.strip() and isinstance(doc.text, str)
    texts = [doc.id, doc.text, doc.payload or "", *(doc.metadata or {}).keys(), *(doc.metadata or {}).values()]
    assert all(isinstance(t, str) for t in texts)
    "".join(texts).encode("utf-8")  # SQLite can store every text of an accepted document
    assert doc.metadata is None or all(isinstance(k, str) and isinstance(v, str) for k, v in doc.metadata.items())
    assert doc.payload is None or isinstance(doc.payload, str)
    if doc.embedding is not None:
        assert isinstance(doc.embedding, tuple) and doc.embedding
        assert all(type(v) is float and math.isfinite(v) and abs(v) <= 3.5e38 for v in doc.embedding)


@BOUNDED
@given(
    kwargs=st.fixed_dictionaries(
        {"id": st.text(max_size=4) | anything, "text": st.text(max_size=4) | anything},
        optional={
            "metadata": anything | st.dictionaries(st.text(max_size=3), st.text(max_size=3) | scalars, max_size=3),
            "embedding": vectors,
            "payload": anything,
        },
    )
)
def test_a_document_is_valid_or_a_typed_error(kwargs: dict) -> None:
    try:
        doc = DocumentInfo(**kwargs)
    except MossliteError:
        return
    check_document(doc)
    if kwargs.get("embedding") is not None:  # nothing was coerced into a number
        assert real_numbers(kwargs["embedding"])


# The arguments DocumentInfo's type hints allow (st.from_type(DocumentInfo) would call
# it inside the strategy, where a typed error is not the test's to catch).
hinted = st.fixed_dictionaries(
    {"id": st.from_type(str), "text": st.from_type(str)},
    optional={
        "metadata": st.from_type(dict[str, str] | None),
        "embedding": st.from_type(list[float] | tuple[float, ...] | None),
        "payload": st.from_type(str | None),
    },
)


@QUICK
@given(kwargs=hinted)
def test_a_document_of_its_hinted_types_is_valid_or_a_typed_error(kwargs: dict) -> None:
    try:
        doc = DocumentInfo(**kwargs)
    except MossliteError:
        return
    check_document(doc)


@BOUNDED
@given(
    kwargs=st.fixed_dictionaries(
        {},
        optional={
            "top_k": st.integers() | anything,
            "alpha": st.floats() | anything,
            "filter": junk | filters,
            "embedding": vectors,
        },
    )
)
def test_query_options_are_valid_or_a_typed_error(kwargs: dict) -> None:
    try:
        options = QueryOptions(**kwargs)
    except MossliteError:
        return
    assert isinstance(options.top_k, int) and not isinstance(options.top_k, bool) and 1 <= options.top_k <= 1000
    assert 0.0 <= options.alpha <= 1.0
    if options.embedding is not None:
        assert real_numbers(kwargs["embedding"])
        assert options.vector is not None and options.vector.dtype == np.float32
        assert np.isfinite(options.vector).all() and len(options.vector) == len(options.embedding)


@QUICK
@given(upsert=anything)
def test_mutation_options_are_valid_or_a_typed_error(upsert: Any) -> None:
    try:
        options = MutationOptions(upsert=upsert)
    except MossliteError:
        return
    assert isinstance(options.upsert, bool)


@BOUNDED
@given(
    items=anything
    | st.lists(
        st.dictionaries(st.sampled_from(["id", "text", "metadata", "embedding", "payload", "x"]), anything, max_size=5),
        max_size=3,
    )
)
def test_wire_documents_are_valid_or_a_typed_error(items: Any) -> None:
    try:
        docs = docs_from_json(items)
    except MossliteError:
        return
    for doc, item in zip(docs, items):
        check_document(doc)
        if doc.embedding is not None:
            assert real_numbers(item["embedding"])


@pytest.mark.parametrize("bad", [object(), Ellipsis])
def test_odd_objects_in_a_filter_are_invalid(bad: object) -> None:
    with pytest.raises(InvalidFilterError):
        compile_filter({"field": "a", "condition": {"$eq": bad}})
