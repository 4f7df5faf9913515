"""read_docs / parse_docs: JSON, JSON Lines and CSV files to DocumentInfo."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mosslite import DocumentInfo, read_docs
from mosslite.docfiles import detect_format, jsonl_line, parse_docs, read_docs_with_model
from mosslite.errors import InvalidArgumentError, InvalidDocumentError

DOCS = [
    DocumentInfo(id="a", text="first", metadata={"k": "v"}),
    DocumentInfo(id="b", text="second, with \"quotes\"", payload="p"),
]


def test_json_array_and_jsonl(tmp_path: Path) -> None:
    items = [{"id": "a", "text": "first", "metadata": {"k": "v"}}, {"id": "b", "text": 'second, with "quotes"', "payload": "p"}]
    (tmp_path / "d.json").write_text(json.dumps(items))
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(i) for i in items) + "\n\n")
    assert read_docs(tmp_path / "d.json") == DOCS
    assert read_docs(tmp_path / "d.jsonl") == DOCS
    assert parse_docs(json.dumps(items)) == DOCS  # detected by content
    assert parse_docs(json.dumps(items[0])) == DOCS[:1]  # one object: JSON Lines


def test_embeddings_name_their_model_and_come_back_as_they_were(tmp_path: Path) -> None:
    """Issue #12: an exported file says which model its embeddings are of; reading it back
    gives the same documents (vectors exactly) and that model, or refuses a mix."""
    docs = [*DOCS, DocumentInfo(id="c", text="third", embedding=[0.6, 0.8000000119209290, 0.0])]
    path = tmp_path / "export.jsonl"
    path.write_text("".join(jsonl_line(d, "custom") + "\n" for d in docs))
    assert '"embedding_model": "custom"' in path.read_text().splitlines()[2]
    assert "embedding_model" not in path.read_text().splitlines()[0]  # no embedding, no model
    assert read_docs_with_model(path) == (docs, "custom")
    assert read_docs(path) == docs
    (tmp_path / "plain.json").write_text(json.dumps([{"id": "a", "text": "t", "embedding": [1.0]}]))
    assert read_docs_with_model(tmp_path / "plain.json")[1] is None
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(path.read_text() + jsonl_line(docs[2], "other") + "\n")
    with pytest.raises(InvalidDocumentError, match="line 4: embedding_model 'other' differs from 'custom'"):
        read_docs(mixed)
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "text": "t", "embedding_model": 5}\n')
    with pytest.raises(InvalidDocumentError, match="embedding_model must be a model id"):
        read_docs(tmp_path / "bad.jsonl")


def test_csv_with_metadata_payload_and_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('id,text,metadata,payload,colour\na,first,"{""k"": ""v""}",,\nb,"second, with ""quotes""",,p,red\n')
    assert read_docs(path) == [DOCS[0], DocumentInfo(id="b", text='second, with "quotes"', payload="p", metadata={"colour": "red"})]


def test_a_csv_field_as_long_as_a_document_allows_is_read(tmp_path: Path) -> None:
    # Python's csv refuses fields over 131,072 characters: a valid 200 KB text was "malformed CSV".
    text = "word " * 40_000
    path = tmp_path / "long.csv"
    path.write_text(f"id,text\nlong,{text}\n")
    assert read_docs(path)[0].text == text


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('[{"id": "a", "text": "first", "metadata": {"k": "v"}}]'))
    assert read_docs("-") == DOCS[:1]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.json", '[{"id": "a",', "x.json: line 1: malformed JSON"),
        ("x.json", '{"id": "a", "text": "t"}', "expected a JSON array"),
        ("x.jsonl", '{"id": "a", "text": "t"}\n{nope}\n', "x.jsonl: line 2: malformed JSON"),
        ("x.jsonl", '{"id": "a", "text": "t", "colour": "red"}\n', "line 1: unknown field"),
        ("x.jsonl", '{"id": "a", "text": "t", "metadata": {"n": 1}}\n', "metadata values must be strings"),
        ("x.csv", "name,body\nx,y\n", "id and text columns"),
        ("x.csv", 'id,text,metadata\na,t,{oops\n', "line 2: metadata is not JSON"),
        ("x.csv", "id,text\na,t,extra\n", "more values than header columns"),
        ("x.csv", 'id,text\na,"unterminated\n', "x.csv: line 2: malformed CSV"),
        ("x.csv", 'id,text\na,t\n\nb,"open\nstill open\n', "x.csv: line 4: malformed CSV"),
        ("x.csv", 'id,text\na,"closed"then more\n', "x.csv: line 2: malformed CSV"),
        ("x.csv", 'id,"text\na,t\n', "x.csv: line 1: malformed CSV"),
        ("x.csv", 'id,text,metadata,k\na,t,"{""k"": ""1""}",2\n', "line 2: 'k' is both a column and a key"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InvalidDocumentError) as caught:
        read_docs(path)
    assert message in str(caught.value)


def test_csv_quoted_newlines_and_line_numbers_after_them(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('id,text,metadata\na,"two\nlines",\n\nb,t,{oops\n')
    with pytest.raises(InvalidDocumentError, match="line 5: metadata is not JSON"):
        read_docs(path)
    path.write_text('id,text\na,"two\nlines"\nb,t\n')
    assert [d.text for d in read_docs(path)] == ["two\nlines", "t"]


def test_missing_file_is_an_os_error_and_binary_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_docs(tmp_path / "missing.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidDocumentError, match="not UTF-8"):
        read_docs(tmp_path / "bin.json")
    with pytest.raises(InvalidArgumentError, match="unknown document format"):
        parse_docs("[]", "xml")


def test_detect_format() -> None:
    assert detect_format("", "a.NDJSON") == "jsonl"
    assert (detect_format(" [", "x"), detect_format("{", "x"), detect_format("id,text", "x")) == ("json", "jsonl", "csv")


# -- hostile files (issue #8): typed errors naming the file and line, never a raw one -----

HUGE = "1" + "0" * 5000  # past Python's 4,300-digit limit for int(): json.loads raised ValueError
DEEP = "[" * 100_000 + "]" * 100_000  # json.loads raised RecursionError


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.json", '[\n{"id": "a", "text": "t"},\n{"id": "b", "text": "t", "metadata": {"k": ' + HUGE + "}}\n]", "x.json: line 3: "),
        ("x.json", '[{"id": "a", "text": "t", "embedding": [' + HUGE + "]}]", "x.json: line 1: "),
        ("x.json", '[{"id": "a", "text": "t"},\n {"id": "b", "text": "t", "metadata": ' + DEEP + "}]", "x.json: line 2: "),
        ("x.jsonl", '{"id": "a", "text": "t"}\n{"id": "b", "text": "t", "metadata": {"k": ' + HUGE + "}}\n", "x.jsonl: line 2: "),
        ("x.jsonl", '{"id": "a", "text": "t", "embedding": [' + HUGE + "]}\n", "x.jsonl: line 1: "),
        ("x.jsonl", '{"id": "a", "text": "t", "metadata": ' + DEEP + "}\n", "x.jsonl: line 1: "),
        ("x.csv", 'id,text,metadata\na,t,\nb,t,"{""k"": ' + HUGE + '}"\n', "x.csv: line 3: metadata is not JSON"),
        ("x.csv", "id,text,metadata\na,t," + "[" * 100_000 + "\n", "x.csv: line 2: metadata is not JSON"),
    ],
)
def test_json_python_cannot_hold_is_a_typed_error(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InvalidDocumentError) as caught:
        read_docs(path)
    assert message in str(caught.value) and caught.value.path == str(path)
    assert "set_int_max_str_digits" not in str(caught.value)  # (advice for Python programmers, not users)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"id": "a", "text": "t"},]', "line 1: malformed JSON"),  # json.loads refuses a trailing comma too
        ('[{"id": "a", "text": "t"}] x', "line 1: malformed JSON"),
        ('[{"id": "a", "text": "t"}\n\n{"id": "b", "text": "t"}]', "line 3: malformed JSON"),
        ('[{"id": "a", "text": "t"},\n{"id": "b",\n "text": 5}]', "line 2: document 2: "),
        ("[", "line 1: malformed JSON"),
        ("", "line 1: malformed JSON"),
        ("7", "expected a JSON array of documents, got int"),
    ],
)
def test_json_arrays_are_read_as_json_loads_reads_them(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(InvalidDocumentError, match=message):
        read_docs(path)


def test_json_arrays_with_any_spacing(tmp_path: Path) -> None:
    items = [{"id": "a", "text": "first", "metadata": {"k": "v"}}, {"id": "b", "text": 'second, with "quotes"', "payload": "p"}]
    for text in (json.dumps(items, indent=2), " \n[ " + " ,\r\n ".join(json.dumps(i) for i in items) + " ]\n\t", "[]", " [ ] "):
        assert parse_docs(text, "json") == (DOCS if "first" in text else [])


@pytest.mark.parametrize("header", ["id,text,id", "id,text,colour,colour", "id,text,metadata,metadata"])
def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path: Path, header: str) -> None:
    # With id,text,id the last id silently won (issue #8).
    path = tmp_path / "d.csv"
    path.write_text(header + "\n" + ",".join(["a", "t", "b", "c"][: header.count(",") + 1]) + "\n")
    twice = header.split(",")[-1]
    with pytest.raises(InvalidDocumentError, match=f"line 1: the CSV header names column '{twice}' more than once") as caught:
        read_docs(path)
    assert caught.value.column == twice


@pytest.mark.parametrize("path", ["a\x00b.json", None, 5])
def test_a_path_that_is_no_path_is_a_typed_error(path: object) -> None:
    with pytest.raises(InvalidArgumentError):
        read_docs(path)  # type: ignore[arg-type]
