"""SessionStore (session/store.py) on a real SQLite file: writes durable with the
changesets that record them, diffs stored before they are sent and forgotten only
once applied, a mirror of the service that is never pushed back (issue #5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mosslite.changeset import Row, decode
from mosslite.errors import ConflictError
from mosslite.session.store import SessionStore


def row(text: str, seed: int = 0) -> Row:
    vector = np.random.default_rng(seed).normal(size=4).astype("<f4")
    return (text, '{"k": "v"}', None, vector.tobytes())


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "call-123.sqlite"


def test_a_write_and_the_changeset_recording_it_survive_a_reopen(path: Path) -> None:
    store = SessionStore(path)
    written = store.upsert([("a", row("alpha")), ("b", row("beta"))], upsert=True)
    assert (written.added, written.updated) == (2, 0) and [i for i, _ in written.stored] == ["a", "b"]
    store.delete(["b", "missing"])
    store.close()
    reopened = SessionStore(path)
    assert [r[0] for r in reopened.rows_by_id(None)] == ["a"]
    assert reopened.pending_count() == 2  # one changeset per call
    assert {c.id: c.new is None for c in decode(reopened.outgoing().changeset)} == {"a": False}  # b: added, then gone
    reopened.close()


def test_an_insert_of_an_existing_id_is_a_conflict_and_writes_nothing(path: Path) -> None:
    store = SessionStore(path)
    store.upsert([("a", row("alpha"))], upsert=True)
    with pytest.raises(ConflictError, match="already exist"):
        store.upsert([("new", row("new")), ("a", row("again"))], upsert=False)
    assert [r[0] for r in store.rows_by_id(None)] == ["a"] and store.pending_count() == 1
    updated = store.upsert([("a", row("alpha, edited"))], upsert=True)
    assert (updated.added, updated.updated) == (0, 1)
    assert store.existing(["a", "zzz"]) == {"a": ("alpha, edited", row("alpha, edited")[3])}
    store.close()


def test_a_diff_is_stored_before_it_is_sent_and_resent_until_applied(path: Path) -> None:
    store = SessionStore(path)
    store.upsert([("a", row("alpha"))], upsert=True)
    first = store.outgoing()
    store.upsert([("b", row("beta"))], upsert=True)  # written while the first diff is out
    store.close()
    store = SessionStore(path)  # as after a crash mid-push
    again = store.outgoing()
    assert again == first  # the same diff id and bytes: the service applies it once
    store.pushed(again, 1, "2024-01-01T00:00:00Z")
    assert store.pending_count() == 1  # b's change is still to go
    assert store.meta()["base_version"] == "1" and store.meta()["index_created_at"] == "2024-01-01T00:00:00Z"
    second = store.outgoing()
    assert second.diff_id != first.diff_id and [c.id for c in decode(second.changeset)] == ["b"]
    store.pushed(second, 3, "2024-01-01T00:00:00Z")  # someone else published v2 in between
    assert store.meta()["base_version"] == "1"  # so the next load merges their change
    assert store.outgoing() is None and store.pending_count() == 0
    store.close()


def test_changes_that_cancel_out_send_nothing(path: Path) -> None:
    store = SessionStore(path)
    store.upsert([("a", row("alpha"))], upsert=True)
    store.delete(["a"])
    assert store.outgoing() is None and store.pending_count() == 0
    store.close()


def test_a_backlog_is_recorded_and_sent_in_pieces_in_order(path: Path) -> None:
    store = SessionStore(path, changeset_bytes=200, push_bytes=600)
    store.upsert([(f"d{i:02d}", row(f"document {i} " * 5, i)) for i in range(30)], upsert=True)
    assert store.pending_count() > 5
    pieces: list[list[str]] = []
    while (outgoing := store.outgoing()) is not None:
        pieces.append(sorted(c.id for c in decode(outgoing.changeset)))
        store.pushed(outgoing, None, "")
    assert len(pieces) > 1 and sum(pieces, []) == [f"d{i:02d}" for i in range(30)]  # each once, oldest first
    store.close()


def test_a_merged_base_is_not_recorded_and_local_changes_stay_on_top(path: Path) -> None:
    store = SessionStore(path)
    store.merge_base({"a": row("alpha v1"), "b": row("beta v1")}, 1, "2024-01-01T00:00:00Z")
    assert store.pending_count() == 0  # the mirror is never pushed back
    store.upsert([("a", row("alpha, mine"))], upsert=True)
    written, removed = store.merge_base({"a": row("alpha v2"), "c": row("gamma v2")}, 2, "2024-01-01T00:00:00Z")
    assert (written, removed) == (1, 1)  # c comes in, b (gone from the service) goes; a is ours
    assert {r[0]: r[1] for r in store.rows_by_id(None)} == {"a": "alpha, mine", "c": "gamma v2"}
    assert store.meta()["base_version"] == "2" and store.pending_count() == 1
    store.close()


def test_keyword_hits_and_rows_by_rowid_read_the_stored_documents(path: Path) -> None:
    store = SessionStore(path)
    written = store.upsert([("a", row("refund for a damaged parcel")), ("b", row("shipping times"))], upsert=True)
    rowids = dict(written.stored)
    hits = store.keyword('"refund"', 10)
    assert [rowid for rowid, _ in hits] == [rowids["a"]] and hits[0][1] > 0
    assert [r[0] for r in store.rows_by_rowid([rowids["b"], rowids["a"]])] == ["b", "a"]  # in the order asked
    store.close()
