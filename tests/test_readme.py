"""The README's Python blocks, sqlite3 commands and CLI tour run for real, so they cannot rot."""

from __future__ import annotations

import ast
import io
import os
import re
import shlex
import subprocess
import sys
import threading
import tokenize
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


def sh_block(starting: str) -> str:
    """The one ```sh block of the README that starts with ``starting``."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (found,) = [b for b in blocks if b.startswith(starting)]
    return found


def shell_env(home: Path) -> dict[str, str]:
    """A reader's shell: no mosslite variables of ours, the venv's `mosslite` on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSS_", "MOSSLITE_"))}
    return env | {"MOSSLITE_HOME": str(home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"}


def sh(script: str, folder: Path, home: Path) -> subprocess.CompletedProcess:
    command = ["bash", "-c", f"set -e -o pipefail; {script}"]
    done = subprocess.run(command, cwd=folder, env=shell_env(home), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{script}\n{done.stderr}"
    return done


def python_tour(folder: Path, home: Path) -> None:
    for heading in GROUPS["tour then sessions, one home"]:
        run_block(heading, folder, home)


def cli_tour(folder: Path, home: Path) -> None:
    """The CLI tour, line by line, as written."""
    lines = [line for line in sh_block("mosslite init").splitlines() if line.strip()]
    for line in lines:
        if not any(w in line for w in WAITS_FOR_A_PERSON):
            done = sh(line, folder, home)
            if "doc get" in line:
                assert "Gift cards never expire." in done.stdout and "faq-returns-001" in done.stdout


def server_tour(folder: Path, home: Path) -> None:
    """`mosslite serve` as written (on a free port), then the other terminal's block in one shell."""
    (serve,) = sh_block("mosslite serve --data ./srv --host").strip().splitlines()
    command = shlex.split(serve.split("#")[0].replace("--port 8700", "--port 0"))
    server = subprocess.Popen([Path(sys.executable).parent / command[0], *command[1:]], cwd=folder,
                              env=shell_env(home), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = server.stdout.readline().split()[2]  # "mosslite serving URL (data: ...)"
        threading.Thread(target=server.stdout.read, daemon=True).start()  # the access log, drained
        done = sh(sh_block("export MOSS_URL=").replace("http://127.0.0.1:8700", url), folder, home)
        assert "faq-refunds-002" in done.stdout and url in done.stdout  # the query's answer; info's URL
    finally:
        server.terminate()
        server.wait(30)


TOURS = {"python": python_tour, "cli": cli_tour, "server": server_tour}


@pytest.mark.parametrize("order", [("python", "cli", "server"), ("server", "cli", "python")], ids="-then-".join)
def test_the_readme_s_tours_run_as_written_in_one_home_in_either_order(order: tuple[str, ...], tmp_path: Path) -> None:
    """A newcomer follows the Python tour, the CLI tour and the server tour in one home and
    one folder ("from the repository's root"), in either order; each works as written."""
    (tmp_path / "mosslite").symlink_to(README.parent / "mosslite")
    for tour in order:
        TOURS[tour](tmp_path, tmp_path / "home")


# -- every Python block, run verbatim ----------------------------------------------------

#: Every ```python block of the README, by the heading it sits under, in README order
#: (test_every_python_block_is_listed fails on a block added, moved or removed). Each one
#: runs verbatim as a script of its own, in a fresh MOSSLITE_HOME and working folder.
PYTHON_BLOCKS = (
    "Five-minute tour of the Python API",
    "Sessions: local, durable, pushed as diffs",
    "Build and query an index file directly",
    "Metadata filters",
    "Mirroring a folder: `mosslite mirror`",
    "MCP server",
    "LangChain",
    "LlamaIndex",
)
#: Blocks that run one after the other in one home, in this order. No block needs
#: another's data; a reader still runs the tour and then the sessions in one home
#: (~/.mosslite, the same project and key), and they must get along there too.
GROUPS = {
    "tour then sessions, one home": ("Five-minute tour of the Python API", "Sessions: local, durable, pushed as diffs"),
}
#: A decimal number in a printed-output comment stands for any decimal (scores, timings);
#: every other character, whole numbers included, must be printed as written.
DECIMAL = re.compile(r"-?\d+\.\d+")
README_ENV = ("MOSS_PROJECT_ID", "MOSS_PROJECT_KEY", "MOSS_URL", "MOSSLITE_CONFIG", "MOSSLITE_DATA", "MOSSLITE_HOME")


def python_blocks() -> list[tuple[str, str]]:
    """(heading, code) of every ```python block, in order; the heading is the nearest
    ``##``/``###`` line above the block."""
    text = README.read_text(encoding="utf-8")
    found, heading = [], ""
    for match in re.finditer(r"^#{2,3} ([^\n]+)$|^```(\w*)\n(.*?)^```$", text, re.M | re.S):
        if match.group(1) is not None:
            heading = match.group(1)
        elif match.group(2) == "python":
            found.append((heading, match.group(3)))
    return found


def block(heading: str) -> str:
    (code,) = [code for h, code in python_blocks() if h == heading]
    return code


def printed_as_written(code: str) -> list[str]:
    """What the block says it prints: for each ``print(...)`` line, its closing comment,
    or else the comment line right under it."""
    lines = code.splitlines()
    comments = {
        token.start[0]: token.string[1:].strip()
        for token in tokenize.generate_tokens(io.StringIO(code).readline)
        if token.type == tokenize.COMMENT
    }
    written = []
    for number, line in enumerate(lines, 1):
        if not line.lstrip().startswith("print("):
            continue
        if number in comments:
            written.append(comments[number])
        elif number + 1 in comments and lines[number].lstrip().startswith("#"):
            written.append(comments[number + 1])
    return written


def matches(written: str, printed: str) -> bool:
    parts = re.split(f"({DECIMAL.pattern})", written)
    pattern = "".join(DECIMAL.pattern if DECIMAL.fullmatch(part) else re.escape(part) for part in parts)
    return re.fullmatch(pattern, printed) is not None


def run_block(heading: str, folder: Path, home: Path) -> subprocess.CompletedProcess:
    """Run the block as a script named after it, as a reader pasting it into a file would."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / (re.sub(r"\W+", "_", heading.lower()).strip("_")[:40] + ".py")
    script.write_text(block(heading), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in README_ENV} | {"MOSSLITE_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, script.name], cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"the README block under {heading!r} failed:\n{done.stderr}"
    written = printed_as_written(block(heading))
    if written:
        printed = done.stdout.splitlines()
        assert len(printed) == len(written) and all(map(matches, written, printed)), (
            f"the README block under {heading!r} prints\n{done.stdout}\nnot what it says:\n" + "\n".join(written)
        )
    elif "print(" in block(heading):
        assert done.stdout.strip(), f"the README block under {heading!r} printed nothing"
    return done


def test_every_python_block_is_listed() -> None:
    assert [h for h, _ in python_blocks()] == list(PYTHON_BLOCKS)
    for members in GROUPS.values():
        assert [h for h in PYTHON_BLOCKS if h in members] == list(members), "a group runs in README order"


@pytest.mark.parametrize("heading", PYTHON_BLOCKS)
def test_python_block_runs_as_written(heading: str, tmp_path: Path) -> None:
    run_block(heading, tmp_path / "work", tmp_path / "home")


def test_the_filter_examples_are_filters() -> None:
    """The filter block's expressions are not only Python: each one compiles as a filter."""
    from mosslite.filters import compile_filter

    statements = ast.parse(block("Metadata filters")).body
    assert len(statements) == 2
    for statement in statements:
        assert isinstance(statement, ast.Expr)
        assert compile_filter(ast.literal_eval(statement.value)) is not None
