"""Records reject bad input where it is made, with typed errors."""

from __future__ import annotations

import numpy as np
import pytest

from mosslite import DocumentInfo, QueryOptions, Version
from mosslite.errors import InvalidArgumentError, InvalidDocumentError, InvalidNameError, PayloadTooLargeError
from mosslite.types import MAX_DOC_TEXT_BYTES, MAX_NAME_CHARS, validate_name


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


@pytest.mark.parametrize(
    "name",
    ["", "a/b", "..", "a..b", "../etc", "a\\b", "a\nb", "a\x00b", ".hidden", "-x", "x" * (MAX_NAME_CHARS + 1), None, 3],
)
def test_bad_names(name: object) -> None:
    with pytest.raises(InvalidNameError):
        validate_name(name)


@pytest.mark.parametrize("name", ["faq", "support-faqs", "call_123", "v1.2", "A" * MAX_NAME_CHARS])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name


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
