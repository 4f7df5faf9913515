"""Session diffs: SQLite session-extension changesets over the ``docs`` table.

The format on the wire is a plain changeset (``sqlite3session_changeset``) of
one table, ``docs (id PRIMARY KEY, text, metadata, payload, embedding)``, in the
column order of ``schemas/session.sql``. Two rules make it safe to apply onto
*any* later version of the index, not only the one the session started from:

- **Full rows.** The session extension records an UPDATE with only its changed
  columns. ``with_full_rows`` rewrites each UPDATE so old and new carry every
  column (unchanged columns are, by definition, the row's current value), so
  the service can write the new row even where another agent deleted it.
- **Old values are kept.** They are what the session last saw; the service
  compares them with the row it holds to count what the push overwrote (last
  push wins, but the caller is told).

Example::

    blob = with_full_rows(conn, combine(pending_blobs))
    for change in decode(blob):
        print(change.id, change.old is not None, change.new is not None)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import apsw
import numpy as np

from .errors import InvalidArgumentError, InvalidDocumentError
from .rows import Row, metadata_json
from .types import DocumentInfo

TABLE = "docs"
COLUMNS = ("id", "text", "metadata", "payload", "embedding")

CURRENT_ROW_SQL = """
SELECT id, text, metadata, payload, embedding
FROM docs
WHERE id = :id
"""


@dataclass(frozen=True)
class Change:
    """One document's net change: ``old`` None = it was new, ``new`` None = it was deleted."""

    id: str
    old: Row | None
    new: Row | None

    def document(self) -> DocumentInfo:
        """The new row as a DocumentInfo carrying its embedding (validated on construction)."""
        assert self.new is not None
        text, metadata, payload, blob = self.new
        return DocumentInfo(
            id=self.id,
            text=text,
            metadata=metadata_dict(metadata, self.id),
            payload=payload,
            embedding=np.frombuffer(blob, dtype="<f4").tolist(),
        )


def metadata_dict(text: str, doc_id: str) -> dict[str, str]:
    """A diff row's metadata JSON as the flat object of strings it must be, every
    string one SQLite can store. Anything else (not JSON, a number too long to read,
    nesting deep enough to exhaust the parser's stack, a lone surrogate escaped as
    ``\\ud800``) is an InvalidDocumentError naming the document (issue #8)."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError) as exc:  # (ValueError: also a JSON int of over 4300 digits)
        raise InvalidDocumentError(f"document {doc_id!r}: metadata in the diff is not JSON: {exc}", id=doc_id) from exc
    if not isinstance(parsed, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()):
        raise InvalidDocumentError(
            f"document {doc_id!r}: metadata in the diff is not a JSON object of strings", id=doc_id
        )
    if "\\u" in text:  # the text itself is valid UTF-8: only an escape can make a lone surrogate
        try:
            metadata_json(parsed).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidDocumentError(
                f"document {doc_id!r}: metadata in the diff holds text SQLite cannot store: {exc}", id=doc_id
            ) from exc
    return parsed


def record(conn: apsw.Connection) -> apsw.Session:
    """A session-extension recorder on ``docs`` only: FTS5 shadow tables and our own
    bookkeeping tables are never part of a diff."""
    session = apsw.Session(conn, "main")
    session.attach(TABLE)
    return session


def combine(blobs: Iterable[bytes]) -> bytes:
    """One changeset with one net change per id (``sqlite3changegroup``): an insert
    then a delete cancel out, two updates merge."""
    builder = apsw.ChangesetBuilder()
    try:
        for blob in blobs:
            builder.add(blob)
        return builder.output()
    finally:
        builder.close()


def with_full_rows(conn: apsw.Connection, changeset: bytes) -> bytes:
    """``changeset`` with every UPDATE carrying all columns in old and new (see the
    module docstring). Runs against the session database that recorded it."""
    if not changeset:
        return b""
    builder = apsw.ChangesetBuilder()
    try:
        builder.schema(conn, "main")
        for change in apsw.Changeset.iter(changeset):
            if change.op != "UPDATE":
                builder.add_change(change)
                continue
            pk = change.old[0]
            current = conn.execute(CURRENT_ROW_SQL, {"id": pk}).fetchone()
            if current is None:  # cannot happen: an UPDATE's net result is a present row
                raise InvalidArgumentError(f"document {pk!r} changed but is not in the session")
            old = tuple(cur if value is apsw.no_change else value for value, cur in zip(change.old, current))
            new = (apsw.no_change, *current[1:])
            builder.add_update(TABLE, False, old, new)
        return builder.output()
    finally:
        builder.close()


def decode(changeset: bytes) -> list[Change]:
    """The changes of a pushed diff, checked: one table ``docs`` of our shape, full rows,
    each id once. Anything else is an InvalidArgumentError (the bytes came from outside).

    Invariant (issue #8): every check the service's push needs runs here, before
    it writes anything: a text that is not valid UTF-8, metadata that is not a
    flat JSON object of storable strings (a huge number, deep nesting, an escaped
    lone surrogate), a new row DocumentInfo refuses (id, text or payload size) or
    an embedding holding NaN or infinity is an InvalidArgumentError (an
    InvalidDocumentError for one document's content), never another exception."""
    if not isinstance(changeset, (bytes, bytearray, memoryview)) or not changeset:
        raise InvalidArgumentError("a push needs a non-empty changeset")
    out: list[Change] = []
    seen: set[str] = set()
    try:
        for change in apsw.Changeset.iter(bytes(changeset)):
            out.append(_change(change, seen))
    except apsw.Error as exc:
        raise InvalidArgumentError(f"the push body is not a valid SQLite changeset: {exc}") from exc
    except UnicodeDecodeError as exc:  # apsw decodes TEXT values strictly: no lone surrogate gets past
        raise InvalidArgumentError(f"a text in the diff is not valid UTF-8: {exc}") from exc
    _check_finite([c for c in out if c.new is not None])
    return out


def _change(change: apsw.TableChange, seen: set[str]) -> Change:
    """One change of ``decode``, checked; ``seen`` collects the ids so far."""
    if change.name != TABLE or change.column_count != len(COLUMNS) or tuple(change.pk_columns) != (0,):
        raise InvalidArgumentError(
            f"a session diff changes only table {TABLE!r} with columns {COLUMNS}, got {change.name!r}"
        )
    op = change.op
    old = _row(change.old, "old") if op in ("UPDATE", "DELETE") else None
    new = _row(change.new, "new") if op in ("UPDATE", "INSERT") else None
    doc_id = (change.old if op == "DELETE" or op == "UPDATE" else change.new)[0]
    if not isinstance(doc_id, str) or not doc_id:
        raise InvalidArgumentError(f"a document id in the diff is not a non-empty string: {doc_id!r}")
    if doc_id in seen:
        raise InvalidArgumentError(f"document {doc_id!r} appears twice in one diff", id=doc_id)
    seen.add(doc_id)
    if old is not None:
        metadata_dict(old[1], doc_id)  # the build compares it with the row it holds
    if new is not None:
        _check_new_row(doc_id, new)
    return Change(id=doc_id, old=old, new=new)


def _check_new_row(doc_id: str, row: Row) -> None:
    """What ``Change.document()`` would refuse, found now, but its embedding (a tuple
    of Python floats per document would double decode's cost): see ``_check_finite``."""
    text, metadata, payload, _ = row
    DocumentInfo(id=doc_id, text=text, metadata=metadata_dict(metadata, doc_id), payload=payload)


def _check_finite(changes: Sequence[Change]) -> None:
    """Every new row's embedding holds only finite numbers: one numpy pass over all
    of them (~3 ms at 10k x 384), then one per row only to name the first bad one."""
    blobs = [c.new[3] for c in changes]  # type: ignore[index]
    if not blobs or np.isfinite(np.frombuffer(b"".join(blobs), dtype="<f4")).all():
        return
    bad = next(c for c, blob in zip(changes, blobs) if not np.isfinite(np.frombuffer(blob, dtype="<f4")).all())
    raise InvalidDocumentError(f"document {bad.id!r}: embedding contains NaN or infinity", id=bad.id)


def _row(values: Sequence[object] | None, which: str) -> Row:
    if values is None or any(v is apsw.no_change for v in values[1:]):
        raise InvalidArgumentError(f"every change of a session diff carries full {which} rows")
    _, text, metadata, payload, embedding = values
    if not isinstance(text, str) or not isinstance(metadata, str) or not isinstance(embedding, bytes):
        raise InvalidArgumentError("a diff row needs text and metadata as text and the embedding as a blob")
    if payload is not None and not isinstance(payload, str):
        raise InvalidArgumentError("a diff row's payload is text or NULL")
    if len(embedding) == 0 or len(embedding) % 4:
        raise InvalidArgumentError("a diff row's embedding is not a float32 vector")
    return (text, metadata, payload, embedding)


def row_of(doc: DocumentInfo) -> Row:
    """The stored form of a document that carries its embedding."""
    assert doc.embedding is not None
    return (
        doc.text,
        metadata_json(doc.metadata),
        doc.payload,
        np.asarray(doc.embedding, dtype="<f4").tobytes(),
    )


__all__ = [
    "COLUMNS",
    "Change",
    "TABLE",
    "combine",
    "decode",
    "record",
    "row_of",
    "with_full_rows",
]
