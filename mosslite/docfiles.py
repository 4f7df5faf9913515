"""Reading documents from files: a JSON array, JSON Lines, or CSV.

The CLI's ``-f FILE`` and the folder mirror both read documents through here, so
a file means the same wherever it is used. Every problem is an
InvalidDocumentError naming the file and line, never a bare parser error: not
even for JSON Python cannot hold (a number of 5,000 digits, arrays nested
100,000 deep) or a CSV header that names a column twice (issue #8).

- JSON: an array of objects with DocumentInfo's fields (``id``, ``text``,
  ``metadata``, ``payload``, ``embedding``), and beside an embedding, optionally
  ``embedding_model``: the model it came from (``mosslite index export`` writes
  it, so ``index create -f`` takes the file back with that model, not
  re-embedding; ``read_docs_with_model`` returns it). One file, one model.
- JSON Lines (``.jsonl``, ``.ndjson``): one such object per line; blank lines skipped.
- CSV: a header row with ``id`` and ``text``; optional ``metadata`` (a JSON
  object) and ``payload``; any other column becomes a metadata field.

Example::

    from mosslite import read_docs
    docs = read_docs("faq.jsonl")           # or read_docs("-") for standard input
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError, InvalidDocumentError
from ._fs import check_path
from .types import DocumentInfo
from .wire import from_dict

FORMATS = ("json", "jsonl", "csv")
#: The field beside ``embedding`` naming the model the vector came from (not a DocumentInfo field).
EMBEDDING_MODEL_FIELD = "embedding_model"
_SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
CSV_FIELDS = ("id", "text", "metadata", "payload")
#: The longest CSV field read: above every limit of a document's parts (MAX_DOC_TEXT_BYTES,
#: MAX_PAYLOAD_BYTES), so such a field is refused by DocumentInfo, saying why, not as "malformed".
CSV_FIELD_CHARS = 4 * 1024 * 1024
_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace


def detect_format(text: str, name: str = "") -> str:
    """By file suffix, else by content: ``[`` starts JSON, ``{`` JSON Lines, anything else CSV."""
    suffix = Path(name).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    head = text.lstrip()[:1]
    return "json" if head == "[" else "jsonl" if head == "{" else "csv"


class _EmbeddingModel:
    """The one model a file's embeddings name (``embedding_model``), checked item by item."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.where = ""

    def take(self, item: Any, where: str) -> Any:
        """``item`` without its ``embedding_model``, which must agree with the file's."""
        if not isinstance(item, dict) or EMBEDDING_MODEL_FIELD not in item:
            return item
        item = dict(item)
        model = item.pop(EMBEDDING_MODEL_FIELD)
        if not isinstance(model, str) or not model:
            raise InvalidDocumentError(f"{where}: {EMBEDDING_MODEL_FIELD} must be a model id, got {model!r}")
        if self.model is None:
            self.model, self.where = model, where
        elif model != self.model:
            raise InvalidDocumentError(
                f"{where}: {EMBEDDING_MODEL_FIELD} {model!r} differs from {self.model!r} ({self.where})",
                hint="one file's embeddings come from one model",
            )
        return item


#: What a document read from a file must hold, shown when one lacks it.
DOC_HINT = 'every document needs "id" and "text", e.g. {"id": "a1", "text": "Refunds take 5 days"}'


def _doc(item: Any, where: str, models: _EmbeddingModel) -> DocumentInfo:
    if isinstance(item, dict) and (missing := [f for f in ("id", "text") if f not in item]):
        # (issue #12: a bare "DocumentInfo.__init__() missing 1 required keyword-only argument")
        raise InvalidDocumentError(f"{where}: the document has no {' and no '.join(map(repr, missing))}", hint=DOC_HINT)
    try:
        return from_dict(DocumentInfo, models.take(item, where))
    except InvalidArgumentError as exc:
        raise InvalidDocumentError(f"{where}: {exc.message}", hint=exc.hint) from exc


def parse_docs(text: str, format: str | None = None, *, name: str = "<input>") -> list[DocumentInfo]:
    """Documents in ``text`` (``format`` one of json, jsonl, csv; None: detect)."""
    return _parse(text, format, name, _EmbeddingModel())


def _parse(text: str, format: str | None, name: str, models: _EmbeddingModel) -> list[DocumentInfo]:
    fmt = format or detect_format(text, name)
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"unknown document format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "json":
        items = _json_array(text, name)
        return [_doc(item, f"{name}: line {line}: document {n}", models) for n, (line, item) in enumerate(items, 1)]
    if fmt == "jsonl":
        docs = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            docs.append(_doc(_json_loads(line, name, lineno), f"{name}: line {lineno}", models))
        return docs
    return _parse_csv(text, name, models)


def _json_decode(text: str, pos: int, name: str, line: int, what: str = "malformed JSON") -> tuple[Any, int]:
    """(value, end) of the JSON value starting at ``text[pos]``, which is on ``line``.

    Invariant (issue #8): the only error is an InvalidDocumentError naming the file
    and line, also for JSON that is well formed but that Python cannot hold: an
    integer of over 4,300 digits (a ValueError) or nesting deeper than the
    recursion limit (a RecursionError)."""
    try:
        return _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        at = line + text.count("\n", pos, exc.pos)
        raise InvalidDocumentError(f"{name}: line {at}: {what}: {exc.msg}", path=name) from exc
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion: ...; use sys..."
        reason = str(exc).split(";")[0]  # (not the advice meant for Python programmers)
        raise InvalidDocumentError(
            f"{name}: line {line}: {what}: {reason}", path=name, hint="write long numbers as strings"
        ) from exc
    except RecursionError as exc:
        raise InvalidDocumentError(f"{name}: line {line}: {what}: nested too deeply", path=name) from exc


def _json_loads(text: str, name: str, line: int, what: str = "malformed JSON") -> Any:
    """The one JSON value ``text`` holds (as json.loads reads it), checked as _json_decode checks it."""
    value, end = _json_decode(text, _space_after(text, 0), name, line, what)
    end = _space_after(text, end)
    if end != len(text):
        raise InvalidDocumentError(f"{name}: line {line + text.count(chr(10), 0, end)}: {what}: Extra data", path=name)
    return value


def _json_array(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """(line, item) of each item of the JSON array ``text``, decoded one by one, so an
    error inside an item names the line where it is (issue #8). Accepts what
    json.loads accepts as an array, and nothing else."""
    pos = _space_after(text, 0)
    if not text.startswith("[", pos):
        raise InvalidDocumentError(
            f"{name}: expected a JSON array of documents, got {type(_json_loads(text, name, 1)).__name__}",
            path=name,
            hint="wrap the documents in [...] or write one per line as JSON Lines (.jsonl)",
        )
    lines = _LineCounter(text)
    pos = _space_after(text, pos + 1)
    ended = text.startswith("]", pos)
    while not ended:
        line = lines.at(pos)
        item, pos = _json_decode(text, pos, name, line)
        yield line, item
        pos = _space_after(text, pos)
        ended = text.startswith("]", pos)
        if not ended and not text.startswith(",", pos):
            raise InvalidDocumentError(f"{name}: line {lines.at(pos)}: malformed JSON: expected ',' or ']'", path=name)
        pos = pos if ended else _space_after(text, pos + 1)
    end = _space_after(text, pos + 1)
    if end != len(text):
        raise InvalidDocumentError(f"{name}: line {lines.at(end)}: malformed JSON: Extra data", path=name)


class _LineCounter:
    """Line numbers of ascending positions in one text, counting each newline once."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line = text, 0, 1

    def at(self, pos: int) -> int:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _space_after(text: str, pos: int) -> int:
    """The first position from ``pos`` that is not JSON whitespace."""
    return _SPACE.match(text, pos).end()


_DECODER = json.JSONDecoder()


def _csv_records(text: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, values) of each non-blank CSV record. ``strict`` makes Python's
    reader refuse what it would otherwise guess at: an unterminated quote silently
    swallowing the rest of the file, or text after a closing quote."""
    if csv.field_size_limit() < CSV_FIELD_CHARS:  # (the module's default, 131,072, is below a text's limit)
        csv.field_size_limit(CSV_FIELD_CHARS)
    reader = csv.reader(io.StringIO(text), strict=True)
    while True:
        line = reader.line_num + 1  # a quoted field may span lines: report where the record starts
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidDocumentError(
                f"{name}: line {line}: malformed CSV: {exc}",
                path=name,
                hint='close every quoted field with "; write a quote inside one as ""',
            ) from exc
        if values:
            yield line, values


def _csv_header(records: Iterator[tuple[int, list[str]]], name: str) -> list[str]:
    """The column names of the header record: each once (issue #8: with ``id,text,id``
    the last ``id`` silently won), and ``id`` and ``text`` among them."""
    line, columns = next(records, (1, []))
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise InvalidDocumentError(
                f"{name}: line {line}: the CSV header names column {column!r} more than once",
                path=name,
                column=column,
                hint="give each column its own name",
            )
        seen.add(column)
    if "id" not in columns or "text" not in columns:
        raise InvalidDocumentError(
            f"{name}: a CSV file needs a header row with id and text columns, got {columns}",
            path=name,
            hint="first line: id,text,metadata",
        )
    return columns


def _parse_csv(text: str, name: str, models: _EmbeddingModel) -> list[DocumentInfo]:
    records = _csv_records(text, name)
    columns = _csv_header(records, name)
    docs = []
    for line, values in records:
        where = f"{name}: line {line}"
        if len(values) > len(columns):
            raise InvalidDocumentError(f"{where}: more values than header columns", path=name)
        row: dict[str, str] = dict(zip(columns, values))
        metadata: dict[str, Any] = {}
        if row.get("metadata"):
            metadata = _json_loads(row["metadata"], name, line, "metadata is not JSON")
            if not isinstance(metadata, dict):
                raise InvalidDocumentError(f"{where}: metadata must be a JSON object", path=name)
        extra = {k: v for k, v in row.items() if k not in CSV_FIELDS and v != ""}
        if twice := sorted(set(extra) & set(metadata)):
            raise InvalidDocumentError(
                f"{where}: {twice[0]!r} is both a column and a key of the metadata column", path=name,
                hint="give each metadata field one place: a column, or a key in the metadata JSON",
            )  # fmt: skip
        metadata.update(extra)
        item = {"id": row.get("id", ""), "text": row.get("text", ""), "metadata": metadata or None, "payload": row.get("payload") or None}
        docs.append(_doc(item, where, models))
    return docs


def jsonl_line(doc: DocumentInfo, embedding_model: str | None = None) -> str:
    """``doc`` as one JSON Lines line (no newline) that ``read_docs`` reads back as it
    is: id, text, metadata, payload, then the embedding, if it has one, named as
    ``embedding_model``'s (``mosslite index export`` writes these)."""
    item: dict[str, Any] = {"id": doc.id, "text": doc.text}
    if doc.metadata:
        item["metadata"] = doc.metadata
    if doc.payload is not None:
        item["payload"] = doc.payload
    if doc.embedding is not None:
        if embedding_model:
            item[EMBEDDING_MODEL_FIELD] = embedding_model
        item["embedding"] = list(doc.embedding)  # float32 values, each written exactly
    return json.dumps(item, ensure_ascii=False)


def read_docs(path: str | Path, format: str | None = None) -> list[DocumentInfo]:
    """Documents from the file at ``path`` (``"-"``: standard input). A missing or
    unreadable file raises the OSError (FileNotFoundError ...); a ``path`` that is no
    path (None, a NUL in it) is an InvalidArgumentError."""
    return read_docs_with_model(path, format)[0]


def read_docs_with_model(path: str | Path, format: str | None = None) -> tuple[list[DocumentInfo], str | None]:
    """``read_docs``, and the model the file's embeddings came from (their
    ``embedding_model``; None if it names none), so an exported index goes back in
    with its own model and is not embedded again. Example::

        docs, model = read_docs_with_model("faq.jsonl")   # written by `mosslite index export`
        await client.create_index("faq-copy", docs, model)
    """
    if str(path) == "-":
        text, name = sys.stdin.read(), "<stdin>"
    else:
        try:
            text = check_path(path, "document file").read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidDocumentError(f"{path}: not UTF-8 text: {exc.reason}", path=str(path)) from exc
        name = str(path)
    models = _EmbeddingModel()
    docs = _parse(text, format, name, models)
    return docs, models.model


__all__ = [
    "EMBEDDING_MODEL_FIELD",
    "FORMATS",
    "detect_format",
    "jsonl_line",
    "parse_docs",
    "read_docs",
    "read_docs_with_model",
]
