"""The README's sqlite3 commands and CLI tour run for real, so they cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
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
    """The ids the README promises for `mosslite mirror ./notes notes` are relative to DIR."""
    from mosslite.folder_mirror import file_docs

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


#: Lines of the CLI tour that wait for a person (or need a job id from an earlier line).
WAITS_FOR_A_PERSON = ("--interactive", "JOB_ID", "--watch")


def test_the_cli_tour_runs_as_written(tmp_path: Path) -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    block = next(b for b in blocks if "mosslite init" in b)
    lines = [line for line in block.splitlines() if line.strip() and not any(w in line for w in WAITS_FOR_A_PERSON)]
    (tmp_path / "mosslite").symlink_to(README.parent / "mosslite")  # "from the repository's root"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSS_", "MOSSLITE_"))}
    env |= {"MOSSLITE_HOME": str(tmp_path / "home"), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"}
    for line in lines:
        command = ["bash", "-c", f"set -o pipefail; {line}"]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        if "doc get" in line:
            assert "Gift cards never expire." in done.stdout and "faq-returns-001" in done.stdout
