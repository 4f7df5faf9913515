"""The README's sqlite3 commands run against a real index, so they cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mosslite import FORMAT_VERSION, Version, build_version, get_embedder
from mosslite._db import connect
from mosslite.demo import load_sample

README = Path(__file__).resolve().parent.parent / "README.md"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def sql_blocks(title: str) -> list[str]:
    return re.findall(r"```sql\n(.*?)```", section(title), re.S)


def statements(block: str) -> list[str]:
    return [s.strip() for s in block.split(";") if s.strip()]


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("readme") / Version(1).filename()
    build_version(path, embedder=get_embedder("hashed-ngrams-256"), index_name="sample", version=Version(1), upserts=load_sample())
    return path


def test_readme_has_the_blocks() -> None:
    assert len(sql_blocks("Inspect an index with sqlite3")) == 4


def test_plain_sql_needs_no_extension(sample_index: Path) -> None:
    conn = connect(sample_index, readonly=True)  # vec0 deliberately not loaded
    plain, keyword, postings, _knn = sql_blocks("Inspect an index with sqlite3")
    for statement in statements(plain) + statements(keyword) + statements(postings):
        rows = conn.execute(statement).fetchall()
        assert rows, statement
    meta = dict(conn.execute(statements(plain)[0]).fetchall())
    assert meta["index_name"] == "sample" and meta["format_version"] == str(FORMAT_VERSION)
    conn.close()


def test_knn_after_loading_vec0(sample_index: Path) -> None:
    conn = connect(sample_index, readonly=True, vec=True)
    (knn,) = statements(sql_blocks("Inspect an index with sqlite3")[-1])
    rows = conn.execute(knn).fetchall()
    assert len(rows) == 5
    assert rows[0][0] == "faq-returns-001" and rows[0][1] == pytest.approx(0.0, abs=1e-5)


def test_quick_start_is_on_the_first_screen() -> None:
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:40])
    assert "make demo" in first_screen and "make test" in first_screen


def test_folder_sync_ids_are_what_the_mirror_makes(tmp_path: Path) -> None:
    """The ids the README promises for `mosslite sync ./notes notes` are relative to DIR."""
    from mosslite.folders import file_docs

    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "a.md").write_text("# A\n\nalpha\n")
    (notes / "sub" / "b.txt").write_text("bravo\n")
    (notes / "guide.md").write_text("# Guide\n\n" + "Refunds take five days. " * 200)
    (notes / "items.jsonl").write_text('{"id": "x", "text": "one"}\n')
    docs = [d for name in ("a.md", "sub/b.txt", "guide.md", "items.jsonl") for d in file_docs(notes, notes / name)]
    text = section("Command line")
    for doc in docs[:4]:  # a.md, sub/b.txt, guide.md#0, guide.md#1
        assert f"`{doc.id}`" in text, doc.id
    assert "`parent_id=guide.md`" in text and docs[2].metadata["parent_id"] == "guide.md"
    assert docs[-1].id == "items.jsonl#x" and "`items.jsonl#<its id>`" in text
    assert "`notes/" not in text
