"""FolderMirror: an index that follows a folder (one pass, partial passes, watching)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from mosslite import DocumentInfo, FolderMirror, MossClient
from mosslite.client.embedded import close_embedded_services
from mosslite.folder_mirror import file_docs, plan_mirror

MODEL = "hashed-ngrams-256"


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "home"
    close_embedded_services()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# A\n\nalpha\n")
    (root / "sub" / "b.txt").write_text("bravo " * 300)
    (root / "items.json").write_text('[{"id": "1", "text": "one", "metadata": {"k": "v"}}]')
    (root / "skip.py").write_text("x = 1\n")
    (root / ".git").mkdir()
    (root / ".git" / "c.md").write_text("hidden\n")
    return root


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


async def ids_of(client: MossClient, name: str) -> set[str]:
    return {d.id for d in await client.get_docs(name)}


async def settle(client: MossClient, result) -> None:  # noqa: ANN001
    for job_id in result.job_ids:
        await client.wait_for_job(job_id)


def test_plan_mirror_is_a_pure_diff() -> None:
    old = [DocumentInfo(id="a", text="x", metadata={"path": "a"}), DocumentInfo(id="b", text="y", metadata={"path": "b"})]
    new = [DocumentInfo(id="a", text="x", metadata={"path": "a"}), DocumentInfo(id="c", text="z", metadata={"path": "c"})]
    plan = plan_mirror(new, old)
    assert ([d.id for d in plan.upserts], plan.deletes, plan.unchanged) == (["c"], ["b"], 1)
    changed = plan_mirror([DocumentInfo(id="a", text="x2", metadata={"path": "a"})], old[:1])
    assert [d.id for d in changed.upserts] == ["a"] and changed.deletes == []


def test_file_docs_ids_and_metadata(folder: Path) -> None:
    assert file_docs(folder, folder / "a.md") == [DocumentInfo(id="a.md", text="# A\n\nalpha\n", metadata={"path": "a.md"})]
    chunks = file_docs(folder, folder / "sub" / "b.txt", chunk_size=500)
    assert [d.id for d in chunks] == [f"sub/b.txt#{n}" for n in range(len(chunks))] and len(chunks) >= 3
    assert {d.metadata["parent_id"] for d in chunks} == {"sub/b.txt"}
    assert file_docs(folder, folder / "items.json") == [
        DocumentInfo(id="items.json#1", text="one", metadata={"k": "v", "path": "items.json"})
    ]


def test_sync_creates_updates_deletes_and_leaves_foreign_docs(folder: Path, home: Path) -> None:
    async def main() -> None:
        async with MossClient("p", "k", cache_path=home) as client:
            mirror = FolderMirror(client, folder, "notes", model_id=MODEL, chunk_size=500, extensions=["md", ".TXT", "json"])
            first = await mirror.sync()
            assert first.created and first.files == 3
            await settle(client, first)
            ids = await ids_of(client, "notes")
            assert "a.md" in ids and "items.json#1" in ids and not any("skip" in i or ".git" in i for i in ids)
            foreign = await client.add_docs("notes", [DocumentInfo(id="manual", text="added by hand")])
            await client.wait_for_job(foreign.job_id)

            unchanged = await mirror.sync()
            assert (unchanged.upserted, unchanged.deleted, unchanged.job_ids) == (0, 0, [])

            (folder / "a.md").write_text("# A\n\nalpha, edited\n")
            (folder / "items.json").unlink()
            (folder / "sub" / "b.txt").write_text("short now")
            second = await mirror.sync()
            await settle(client, second)
            assert await ids_of(client, "notes") == {"a.md", "sub/b.txt", "manual"}
            assert (await client.get_docs("notes", ["a.md"]))[0].text.endswith("edited\n")

            (folder / "a.md").write_bytes(b"\xff\xfe")  # unreadable: its document stays
            (folder / "new.md").write_text("new\n")
            partial = await mirror.sync([folder / "a.md", "new.md", "skip.py"])
            assert partial.files == 2 and set(partial.errors) == {"a.md"} and partial.upserted == 1
            await settle(client, partial)
            assert await ids_of(client, "notes") == {"a.md", "sub/b.txt", "manual", "new.md"}

    run(main())


def test_watch_follows_changes_until_stopped(folder: Path, home: Path) -> None:
    async def main() -> None:
        async with MossClient("p", "k", cache_path=home) as client:
            mirror = FolderMirror(client, folder, "watched", model_id=MODEL)
            stop = asyncio.Event()
            passes = []
            task = asyncio.create_task(mirror.watch(stop, passes.append, debounce_ms=100))

            async def until(expected: set[str]) -> None:
                for _ in range(100):
                    try:
                        if await ids_of(client, "watched") == expected:
                            return
                    except Exception:  # noqa: BLE001 (not created yet)
                        pass
                    await asyncio.sleep(0.1)
                raise AssertionError(f"never reached {expected}: {await ids_of(client, 'watched')}")

            await until({"a.md", "items.json#1", "sub/b.txt#0", "sub/b.txt#1"})
            (folder / "c.md").write_text("charlie\n")
            await until({"a.md", "items.json#1", "sub/b.txt#0", "sub/b.txt#1", "c.md"})
            import shutil

            shutil.rmtree(folder / "sub")  # a whole folder goes
            (folder / "a.md").unlink()
            await until({"items.json#1", "c.md"})
            stop.set()
            await asyncio.wait_for(task, 10)
            assert passes[0].created and all(p.index_name == "watched" for p in passes)

    run(main())
