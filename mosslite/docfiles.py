"""Reading documents from files: a JSON array, JSON Lines, or CSV.

The CLI's ``-f FILE`` and the folder mirror both read documents through here, so
a file means the same wherever it is used. Every problem is an
InvalidDocumentError naming the file and line, never a bare parser error.

- JSON: an array of objects with DocumentInfo's fields (``id``, ``text``,
  ``metadata``, ``payload``, ``embedding``).
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
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError, InvalidDocumentError
from .types import DocumentInfo
from .wire import from_dict

FORMATS = ("json", "jsonl", "csv")
_SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
CSV_FIELDS = ("id", "text", "metadata", "payload")


def detect_format(text: str, name: str = "") -> str:
    """By file suffix, else by content: ``[`` starts JSON, ``{`` JSON Lines, anything else CSV."""
    suffix = Path(name).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    head = text.lstrip()[:1]
    return "json" if head == "[" else "jsonl" if head == "{" else "csv"


def _doc(item: Any, where: str) -> DocumentInfo:
    try:
        return from_dict(DocumentInfo, item)
    except InvalidArgumentError as exc:
        raise InvalidDocumentError(f"{where}: {exc.message}", hint=exc.hint) from exc


def parse_docs(text: str, format: str | None = None, *, name: str = "<input>") -> list[DocumentInfo]:
    """Documents in ``text`` (``format`` one of json, jsonl, csv; None: detect)."""
    fmt = format or detect_format(text, name)
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"unknown document format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidDocumentError(f"{name}: line {exc.lineno}: malformed JSON: {exc.msg}", path=name) from exc
        if not isinstance(items, list):
            raise InvalidDocumentError(
                f"{name}: expected a JSON array of documents, got {type(items).__name__}",
                path=name,
                hint="wrap the documents in [...] or write one per line as JSON Lines (.jsonl)",
            )
        return [_doc(item, f"{name}: document {n}") for n, item in enumerate(items, 1)]
    if fmt == "jsonl":
        docs = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidDocumentError(f"{name}: line {lineno}: malformed JSON: {exc.msg}", path=name) from exc
            docs.append(_doc(item, f"{name}: line {lineno}"))
        return docs
    return _parse_csv(text, name)


def _csv_records(text: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, values) of each non-blank CSV record. ``strict`` makes Python's
    reader refuse what it would otherwise guess at: an unterminated quote silently
    swallowing the rest of the file, or text after a closing quote."""
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


def _parse_csv(text: str, name: str) -> list[DocumentInfo]:
    records = _csv_records(text, name)
    _, columns = next(records, (1, []))
    if "id" not in columns or "text" not in columns:
        raise InvalidDocumentError(
            f"{name}: a CSV file needs a header row with id and text columns, got {columns}",
            path=name,
            hint="first line: id,text,metadata",
        )
    docs = []
    for line, values in records:
        where = f"{name}: line {line}"
        if len(values) > len(columns):
            raise InvalidDocumentError(f"{where}: more values than header columns", path=name)
        row: dict[str, str] = dict(zip(columns, values))
        metadata: dict[str, Any] = {}
        if row.get("metadata"):
            try:
                metadata = json.loads(row["metadata"])
            except json.JSONDecodeError as exc:
                raise InvalidDocumentError(f"{where}: metadata is not JSON: {exc.msg}", path=name) from exc
            if not isinstance(metadata, dict):
                raise InvalidDocumentError(f"{where}: metadata must be a JSON object", path=name)
        metadata.update({k: v for k, v in row.items() if k not in CSV_FIELDS and v != ""})
        item = {"id": row.get("id", ""), "text": row.get("text", ""), "metadata": metadata or None, "payload": row.get("payload") or None}
        docs.append(_doc(item, where))
    return docs


def read_docs(path: str | Path, format: str | None = None) -> list[DocumentInfo]:
    """Documents from the file at ``path`` (``"-"``: standard input). A missing or
    unreadable file raises the OSError (FileNotFoundError ...)."""
    if str(path) == "-":
        return parse_docs(sys.stdin.read(), format, name="<stdin>")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidDocumentError(f"{path}: not UTF-8 text: {exc.reason}", path=str(path)) from exc
    return parse_docs(text, format, name=str(path))


__all__ = ["FORMATS", "detect_format", "parse_docs", "read_docs"]
