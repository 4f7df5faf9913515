"""Records reject bad input where it is made, with typed errors."""

from __future__ import annotations

import numpy as np
import pytest

from mosslite import DocumentInfo, MutationOptions, QueryOptions, Version
from mosslite.errors import (
    InvalidArgumentError,
    InvalidDocumentError,
    InvalidFilterError,
    PayloadTooLargeError,
)
from mosslite.types import MAX_DOC_TEXT_BYTES, check_batch, iter_docs
from mosslite.wire import docs_from_json


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id": "", "text": "x"},
        {"id": "   ", "text": "x"},
        {"id": 7, "text": "x"},
        {"id": "a", "text": None},
        {"id": "a", "text": "x", "metadata": {"n": 1}},
        {"id": "a", "text": "x", "metadata": {"n": None}},
        {"id": "a", "text": "x", "metadata": ["n"]},
        {"id": "a", "text": "x", "payload": 3},
        {"id": "a", "text": "x", "embedding": "0.1,0.2"},
        {"id": "a", "text": "x", "embedding": []},
        {"id": "a", "text": "x", "embedding": [0.1, float("nan")]},
        {"id": "a", "text": "x", "embedding": [0.1, "x"]},
        {"id": "x" * 600, "text": "x"},
    ],
)
def test_bad_documents(kwargs: dict) -> None:
    with pytest.raises(InvalidDocumentError):
        DocumentInfo(**kwargs)


def test_oversized_document_text() -> None:
    with pytest.raises(PayloadTooLargeError, match="split long texts"):
        DocumentInfo(id="big", text="x" * (MAX_DOC_TEXT_BYTES + 1))


def test_document_normalises_containers() -> None:
    doc = DocumentInfo(id="a", text="t", metadata={"k": "v"}, embedding=[1, 2])
    assert doc.embedding == (1.0, 2.0)
    assert doc.metadata == {"k": "v"}


@pytest.mark.parametrize(
    "kwargs",
    [{"top_k": 0}, {"top_k": 1001}, {"top_k": -1}, {"top_k": 2.5}, {"top_k": True},
     {"alpha": -0.1}, {"alpha": 1.1}, {"alpha": "0.5"}, {"embedding": [float("inf")]}],
)
def test_bad_query_options(kwargs: dict) -> None:
    with pytest.raises(InvalidArgumentError):
        QueryOptions(**kwargs)


def test_query_option_bounds_are_inclusive() -> None:
    QueryOptions(top_k=1, alpha=0.0)
    QueryOptions(top_k=1000, alpha=1.0)


def test_version_filenames_sort_like_versions() -> None:
    names = [Version(v).filename() for v in (1, 2, 10, 100)]
    assert names == sorted(names)
    assert [Version.parse_filename(n) for n in names] == [1, 2, 10, 100]


@pytest.mark.parametrize("bad", ["1.sqlite", "000000000x.sqlite", "0000000001.db", "0000000001"])
def test_version_parse_names_the_rule(bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match="10 digits"):
        Version.parse_filename(bad)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_bad_versions(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        Version(bad)  # type: ignore[arg-type]


def test_query_embedding_is_a_tuple_with_a_float32_copy() -> None:
    given = np.array([0.5, -1.0, 2.0], dtype=np.float64)
    a, b = QueryOptions(embedding=given), QueryOptions(embedding=[0.5, -1, 2])
    assert a.embedding == (0.5, -1.0, 2.0) and a == b and hash(a) == hash(b)
    assert a.vector.dtype == np.float32 and a.vector.tolist() == [0.5, -1.0, 2.0]
    given[0] = 9.0  # the options keep their own copy
    assert a.embedding[0] == 0.5 and a.vector[0] == 0.5
    assert QueryOptions().vector is None


# -- hostile input (issue #8) --------------------------------------------------------


@pytest.mark.parametrize(
    "embedding",
    [
        ["0.1", 0.2],
        [0.1, "0.2"],
        [True, 0.5],
        [0.5, False],  # numpy alone reads this as float64 [0.5, 0.0]
        [1, True],
        [True, False],
        np.array([True, False]),
        np.array(["0.1", "0.2"]),
        np.array([0.1, "x"], dtype=object),
        [1 + 2j],
        [[0.1, 0.2]],
        [None, 0.1],
        [10**400],  # was an OverflowError
        [1e308, float("inf")],
        [0.5, 1e39],  # float32 holds at most ~3.4e38: this was stored as infinity
        bytearray(b"\x01\x02"),
        np.array([0.5, np.nan], dtype=np.float32),  # (float32 arrays are checked apart)
        np.array([-np.inf, 0.5], dtype=np.float32),
        np.array([[0.5, 0.5]], dtype=np.float32),
    ],
    ids=repr,
)
def test_an_embedding_holds_only_numbers(embedding: object) -> None:
    with pytest.raises(InvalidDocumentError, match="document 'd7': embedding") as info:
        DocumentInfo(id="d7", text="x", embedding=embedding)
    assert info.value.id == "d7"
    with pytest.raises(InvalidArgumentError, match="query embedding"):
        QueryOptions(embedding=embedding)


@pytest.mark.parametrize(
    ("embedding", "expected"),
    [
        ([0.5, -1.0], (0.5, -1.0)),
        ([1, 2], (1.0, 2.0)),
        ((0.5, 2), (0.5, 2.0)),
        ([3e38, 3e38], (3e38, 3e38)),  # longer than the float32 limit, but every element is within
        ([np.float32(0.5), np.int64(2)], (0.5, 2.0)),
        (np.array([1, 2], dtype=np.uint8), (1.0, 2.0)),
        (np.array([0.5, 1.5], dtype=np.float16), (0.5, 1.5)),
        (np.array([0.5, -2.0], dtype=np.float32), (0.5, -2.0)),
        (np.array([3e38, -3e38], dtype=np.float32), (float(np.float32(3e38)), float(np.float32(-3e38)))),
        (np.array([0.5, 2], dtype=object), (0.5, 2.0)),
    ],
    ids=repr,
)
def test_numbers_of_every_real_kind_are_floats(embedding: object, expected: tuple[float, ...]) -> None:
    doc = DocumentInfo(id="a", text="x", embedding=embedding)
    assert doc.embedding == expected and all(type(v) is float for v in doc.embedding)
    options = QueryOptions(embedding=embedding)
    assert options.embedding == expected and options.vector.tolist() == list(np.float32(expected))


def test_wire_documents_refuse_strings_and_booleans_as_embeddings() -> None:
    good = {"id": "ok", "text": "t", "embedding": [0.1, 0.2]}
    assert docs_from_json([good])[0].embedding == (0.1, 0.2)
    for embedding in (["0.1", "0.2"], [True, 0.2], [0.1, None]):
        with pytest.raises(InvalidDocumentError, match="document 'bad'") as info:
            docs_from_json([good, {"id": "bad", "text": "t", "embedding": embedding}])
        assert info.value.id == "bad"


def test_unknown_fields_of_mixed_key_types_are_an_argument_error() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown field"):
        docs_from_json([{"id": "a", "text": "t", 1: "x", "extra": 2}])


def test_query_options_refuse_a_malformed_filter_where_they_are_made() -> None:
    with pytest.raises(InvalidFilterError):
        QueryOptions(filter={"field": "a"})
    with pytest.raises(InvalidFilterError):
        QueryOptions(filter="category = audio")  # type: ignore[arg-type]
    spec = {"field": "a", "condition": {"$eq": "b"}}
    assert QueryOptions(filter=spec).filter == spec


@pytest.mark.parametrize("upsert", ["no", 0, 1, None])
def test_upsert_is_a_bool(upsert: object) -> None:
    with pytest.raises(InvalidArgumentError, match="upsert"):
        MutationOptions(upsert=upsert)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["000000000\u00b2.sqlite", "\u0660" * 9 + "\u0661.sqlite"])
def test_version_names_are_ascii_digits(bad: str) -> None:
    # '²' passed str.isdigit and then int() raised a ValueError; Arabic-Indic digits
    # were read as version 1.
    with pytest.raises(InvalidArgumentError, match="10 digits"):
        Version.parse_filename(bad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id": "a\ud800", "text": "t"},
        {"id": "a", "text": "lone \udc00"},
        {"id": "a", "text": "t", "metadata": {"k\ud800": "v"}},
        {"id": "a", "text": "t", "metadata": {"k": "v\ud800"}},
        {"id": "a", "text": "t", "payload": "\ud800"},
    ],
)
def test_text_sqlite_cannot_store_is_refused_where_the_document_is_made(kwargs: dict) -> None:
    # Was accepted, then refused by a batch but a raw UnicodeEncodeError in a session.
    with pytest.raises(InvalidDocumentError, match="text SQLite cannot store"):
        DocumentInfo(**kwargs)


# -- batches of documents ------------------------------------------------------------


def test_a_batch_with_an_id_twice_is_refused_where_it_enters() -> None:
    docs = [DocumentInfo(id="a", text="1"), DocumentInfo(id="b", text="2"), DocumentInfo(id="a", text="3")]
    with pytest.raises(InvalidDocumentError, match="duplicate document id 'a' in one batch") as info:
        check_batch(docs)
    assert info.value.id == "a"
    assert check_batch(iter(docs[:2])) == docs[:2]  # any iterable, as a list


@pytest.mark.parametrize("docs", [DocumentInfo(id="a", text="t"), "a", b"a", {"id": "a"}, None, 3])
def test_one_document_a_string_a_dict_or_none_is_not_a_batch(docs: object) -> None:
    with pytest.raises(InvalidDocumentError, match="docs must be a list of DocumentInfo"):
        iter_docs(docs)
    with pytest.raises(InvalidDocumentError, match="docs must be a list of DocumentInfo"):
        check_batch(docs)  # type: ignore[arg-type]


def test_an_item_that_is_no_document_fails_when_it_is_reached() -> None:
    # A generator streams: the items before the bad one are handed on first.
    items = iter_docs(d for d in [DocumentInfo(id="a", text="t"), {"id": "b", "text": "t"}])
    assert next(items).id == "a"
    with pytest.raises(InvalidDocumentError, match="expected DocumentInfo, got dict"):
        next(items)
