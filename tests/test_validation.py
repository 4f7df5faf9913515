"""Input rules (validation.py): names, ids, storable text and vectors, each refused with
a typed error that names the rule it breaks."""

from __future__ import annotations

import numpy as np
import pytest

from mosslite import DocumentInfo
from mosslite.errors import InvalidArgumentError, InvalidDocumentError, InvalidNameError
from mosslite.validation import (
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    check_doc_id,
    check_embedding,
    check_ids,
    check_query_embedding,
    storable_utf8,
    validate_name,
)

# -- names ---------------------------------------------------------------------------


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


@pytest.mark.parametrize("name", ["faq\n", "a\n", "v1.2\n", "faq\r\n", "\nfaq"])
def test_a_name_with_a_newline_is_refused(name: str) -> None:
    # "$" in the old pattern matched before a final "\n": "faq\n" passed.
    with pytest.raises(InvalidNameError):
        validate_name(name)


# -- ids -----------------------------------------------------------------------------


def test_check_ids_takes_a_list_or_tuple_only() -> None:
    # A bare string is a sequence of one-letter ids: refused, not split.
    for bad in ("d1", None, {"d1"}, {"d1": 1}):
        with pytest.raises(InvalidArgumentError, match="ids must be a list of strings"):
            check_ids(bad)  # type: ignore[arg-type]
    assert check_ids(("a", "b")) == ["a", "b"] and check_ids([]) == []


def test_one_id_rule_with_the_error_of_the_caller() -> None:
    # Documents get an InvalidDocumentError, deletes and lookups an InvalidArgumentError
    # (its base): the same rule either way.
    with pytest.raises(InvalidDocumentError):
        check_doc_id(" ")
    with pytest.raises(InvalidArgumentError) as info:
        check_doc_id(" ", InvalidArgumentError)
    assert type(info.value) is InvalidArgumentError
    assert check_doc_id("x" * MAX_ID_CHARS) == "x" * MAX_ID_CHARS


def test_storable_text_is_utf8_and_a_lone_surrogate_is_refused_by_name() -> None:
    assert storable_utf8("ü", "text", "d1") == "ü".encode()
    with pytest.raises(InvalidDocumentError, match="document 'd1': payload holds text SQLite cannot store") as info:
        storable_utf8("a\ud800", "payload", "d1")
    assert info.value.id == "d1"


@pytest.mark.parametrize(
    "doc_id", ["a", "x" * MAX_ID_CHARS, "x" * (MAX_ID_CHARS + 1), "x" * 600, "\ud800", "a\udc00b", "", "  ", "\t\n", "ü-ok"]
)
def test_check_ids_accepts_exactly_the_ids_a_document_can_have(doc_id: str) -> None:
    # An id no document can have was queued for deletion (600 chars) or answered
    # "nothing" by a lookup while a delete refused it (a lone surrogate). Issue #8.
    try:
        DocumentInfo(id=doc_id, text="t")
    except InvalidArgumentError:
        with pytest.raises(InvalidArgumentError):
            check_ids([doc_id])
    else:
        assert check_ids([doc_id]) == [doc_id]


def test_check_ids_names_the_rule_broken() -> None:
    with pytest.raises(InvalidArgumentError, match=f"longer than {MAX_ID_CHARS}"):
        check_ids(["ok", "x" * 600])
    with pytest.raises(InvalidArgumentError, match="lone surrogate"):
        check_ids(("ok", "\ud800"))
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        check_ids([" "])


# -- vectors -------------------------------------------------------------------------


def test_both_ways_of_checking_an_embedding_give_the_same_floats() -> None:
    # Plain lists take the path without numpy; anything else goes through numpy.
    plain = check_embedding([0.5, 2, -1.25], "embedding")
    assert plain == check_embedding(np.array([0.5, 2, -1.25]), "embedding") == (0.5, 2.0, -1.25)
    assert all(type(v) is float for v in plain)
    assert check_embedding([3e38, 3e38], "embedding") == (3e38, 3e38)  # each within float32, the length not


def test_a_refused_embedding_names_what_and_carries_the_fields() -> None:
    with pytest.raises(InvalidDocumentError, match="my vector contains NaN") as info:
        check_embedding([0.1, float("nan")], "my vector", id="d9")
    assert info.value.id == "d9"


def test_a_query_embedding_comes_back_as_a_tuple_and_its_own_float32_copy() -> None:
    given = np.array([0.5, -1.0], dtype=np.float64)
    values, vector = check_query_embedding(given)
    given[0] = 9.0
    assert values == (0.5, -1.0) and vector.dtype == np.float32 and vector.tolist() == [0.5, -1.0]
    with pytest.raises(InvalidArgumentError, match="query embedding"):
        check_query_embedding(["0.5"])
