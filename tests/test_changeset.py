"""Session changesets (mosslite/changeset.py): recorded on a session's ``docs`` table,
combined to one net change per id, given full rows, and decoded (checked) by the
service before anything is written. Real SQLite databases of the session schema."""

from __future__ import annotations

import json

import apsw
import numpy as np
import pytest

from mosslite import DocumentInfo
from mosslite._db import read_schema
from mosslite.changeset import combine, decode, record, row_of, with_full_rows
from mosslite.errors import InvalidArgumentError

# -- hostile diffs (issue #8) --------------------------------------------------------

VECTOR = np.ones(4, dtype="<f4").tobytes()
INSERT_SQL = "INSERT INTO docs (id, text, metadata, payload, embedding) VALUES ({}, {}, {}, NULL, {})"


def diff_of(*inserts: tuple[str, str, str, str], **params: object) -> bytes:
    """A changeset of a session's ``docs`` table (the real schema) inserting rows given
    as SQL expressions (id, text, metadata, embedding), with ``:vector`` and ``params``
    bound: bytes a session cannot write, such as invalid UTF-8, come from CAST(x'..' AS TEXT)."""
    conn = apsw.Connection(":memory:")
    conn.execute(read_schema("session.sql"))
    recorder = record(conn)
    for row in inserts:
        conn.execute(INSERT_SQL.format(*row), {"vector": VECTOR, **params})
    changeset = recorder.changeset()
    recorder.close()
    conn.close()
    return changeset


def sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


GOOD = ("'good'", "'fine'", "'{}'", ":vector")
HOSTILE_DIFFS = {
    "a huge number in metadata": ("'d'", "'t'", sql_text('{"n": ' + "9" * 5000 + "}"), ":vector"),
    "an infinite number in metadata": ("'d'", "'t'", sql_text('{"n": 1e99999}'), ":vector"),
    "deeply nested metadata": ("'d'", "'t'", sql_text('{"n": ' + "[" * 50_000 + "]" * 50_000 + "}"), ":vector"),
    "metadata that is not an object": ("'d'", "'t'", sql_text('["a"]'), ":vector"),
    "metadata that is not JSON": ("'d'", "'t'", sql_text("{nope"), ":vector"),
    "invalid UTF-8 in a text": ("'d'", "CAST(x'ff61' AS TEXT)", "'{}'", ":vector"),
    "invalid UTF-8 in an id": ("CAST(x'61ff' AS TEXT)", "'t'", "'{}'", ":vector"),
    "invalid UTF-8 in metadata": ("'d'", "'t'", "CAST(x'7b2261223a2022ff227d' AS TEXT)", ":vector"),
    "a lone surrogate in a text": ("'d'", "CAST(x'eda080' AS TEXT)", "'{}'", ":vector"),
    "a lone surrogate in an id": ("CAST(x'eda080' AS TEXT)", "'t'", "'{}'", ":vector"),
    "an escaped lone surrogate as a metadata key": ("'d'", "'t'", sql_text('{"\\ud800": "x"}'), ":vector"),
    "an escaped lone surrogate as a metadata value": ("'d'", "'t'", sql_text('{"k": "a\\udc00"}'), ":vector"),
    "a NaN in the embedding": ("'d'", "'t'", "'{}'", "x'" + np.full(4, np.nan, dtype="<f4").tobytes().hex() + "'"),
    "an id DocumentInfo refuses": ("'   '", "'t'", "'{}'", ":vector"),
    "a text over the size limit": ("'d'", "printf('%.*c', 300000, 'x')", "'{}'", ":vector"),
}


@pytest.mark.parametrize("hostile", HOSTILE_DIFFS.values(), ids=HOSTILE_DIFFS.keys())
def test_a_hostile_diff_is_refused_when_decoded(hostile: tuple[str, str, str, str]) -> None:
    # Each was a UnicodeDecodeError, ValueError or RecursionError, or passed decode and
    # failed later (a 500, or a job that failed) instead of a 400.
    with pytest.raises(InvalidArgumentError):
        decode(diff_of(GOOD, hostile))


def test_what_decode_accepts_makes_documents() -> None:
    metadata = json.dumps({"k": "v\x00", "ü": "\U0001f600"}, ensure_ascii=False)
    [change] = decode(diff_of(("'d'", ":text", ":metadata", ":vector"), text="a\x00b \U0001f600", metadata=metadata))
    doc = change.document()
    assert (doc.id, doc.text, doc.embedding) == ("d", "a\x00b \U0001f600", (1.0,) * 4)
    assert doc.metadata == {"k": "v\x00", "ü": "\U0001f600"}


def session_db() -> apsw.Connection:
    conn = apsw.Connection(":memory:")
    conn.execute(read_schema("session.sql"))
    return conn


def recorded(conn: apsw.Connection, sql: str, **params: object) -> bytes:
    recorder = record(conn)
    conn.execute(sql, {"vector": VECTOR, **params})
    changeset = recorder.changeset()
    recorder.close()
    return changeset


def test_an_insert_then_a_delete_combine_to_nothing_and_two_updates_to_one() -> None:
    conn = session_db()
    conn.execute(INSERT_SQL.format(*GOOD), {"vector": VECTOR})
    inserted = recorded(conn, INSERT_SQL.format("'new'", "'t'", "'{}'", ":vector"))
    deleted = recorded(conn, "DELETE FROM docs WHERE id = 'new'")
    first = recorded(conn, "UPDATE docs SET text = 'one' WHERE id = 'good'")
    second = recorded(conn, "UPDATE docs SET text = 'two' WHERE id = 'good'")
    net = with_full_rows(conn, combine([inserted, deleted, first, second]))
    [change] = decode(net)
    assert change.id == "good" and change.old[0] == "fine" and change.new[0] == "two"  # type: ignore[index]


def test_an_update_decodes_only_with_full_rows() -> None:
    conn = session_db()
    conn.execute(INSERT_SQL.format(*GOOD), {"vector": VECTOR})
    changed = recorded(conn, "UPDATE docs SET text = 'edited' WHERE id = 'good'")
    with pytest.raises(InvalidArgumentError, match="full old rows"):
        decode(changed)  # the recorder keeps only the changed column
    [change] = decode(with_full_rows(conn, changed))
    assert change.old == ("fine", "{}", None, VECTOR) and change.new == ("edited", "{}", None, VECTOR)


def test_a_document_round_trips_through_its_row() -> None:
    doc = DocumentInfo(id="d", text="t", metadata={"k": "v"}, payload="p", embedding=[0.5, -1.0])
    text, metadata, payload, embedding = row_of(doc)
    sql = "INSERT INTO docs (id, text, metadata, payload, embedding) VALUES ('d', :text, :metadata, :payload, :embedding)"
    [change] = decode(recorded(session_db(), sql, text=text, metadata=metadata, payload=payload, embedding=embedding))
    assert change.document() == doc


def test_a_changeset_that_is_not_one_is_refused() -> None:
    for blob in (b"", b"junk", json.dumps({"docs": []}).encode()):
        with pytest.raises(InvalidArgumentError):
            decode(blob)
