"""The one way a version reaches this device (cache/fetch.py), on real files: a cache hit,
a page patch, a resumed download, a damaged cached file fetched again, a sha256
mismatch refused, and the folder lock (issue #4, #9)."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

import pytest

from mosslite.cache.fetch import Fetched, fetch_and_use, fetch_version
from mosslite.cache.layout import cached_versions, part_path, version_path
from mosslite.cache.lock import LOCK_NAME, index_dir_lock
from mosslite.errors import ChecksumMismatchError, UnavailableError
from mosslite.index.reader import IndexReader
from mosslite.service import Service
from mosslite.types import Manifest

from .conftest import CopyingTransport, damage_docs_page, publish, run, stored


@pytest.fixture
def transport(service: Service) -> CopyingTransport:
    return CopyingTransport(service)


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "p" / "faq"


def fetch(transport: CopyingTransport, index_dir: Path, **kwargs) -> Fetched:
    manifest = run(transport.manifest("faq"))
    return run(fetch_version(transport, "faq", index_dir, manifest, **kwargs))


def cached_path(transport: CopyingTransport, index_dir: Path) -> Path:
    """Where the cache keeps the newest published version."""
    return version_path(index_dir, run(transport.manifest("faq")))


def test_a_first_fetch_downloads_verifies_and_installs_read_only(service, transport, index_dir: Path) -> None:
    publish(service, 0, 50)
    fetched = fetch(transport, index_dir)
    assert fetched.path == cached_path(transport, index_dir) and not fetched.from_cache
    assert fetched.downloaded_bytes == stored(service, 1).stat().st_size
    assert fetched.path.read_bytes() == stored(service, 1).read_bytes()
    assert not fetched.path.stat().st_mode & 0o222  # installed files never change
    assert sorted(p.name for p in index_dir.iterdir()) == [LOCK_NAME, fetched.path.name]
    assert fetched.path.name.startswith("0000000001-") and fetched.path.suffix == ".sqlite"


def test_a_cached_version_is_used_as_it_is(service, transport, index_dir: Path) -> None:
    publish(service, 0, 50)
    fetch(transport, index_dir)
    again = fetch(transport, index_dir)
    assert again.from_cache and again.how() == "already cached"
    assert transport.downloads == [(1, 0)]


def test_an_older_cached_version_is_patched(service, transport, index_dir: Path) -> None:
    publish(service, 0, 400)
    fetch(transport, index_dir)
    publish(service, 400, 3)
    fetched = fetch(transport, index_dir)
    assert fetched.patched_from == 1 and transport.patches == [(2, 1)]
    assert transport.downloads == [(1, 0)]  # the patch, not the file
    assert 0 < fetched.downloaded_bytes < stored(service, 2).stat().st_size // 5
    assert fetched.path.read_bytes() == stored(service, 2).read_bytes()


def test_a_cut_download_resumes_where_it_stopped(service, transport, index_dir: Path) -> None:
    publish(service, 0, 50)
    transport.cut_after = 10_000
    with pytest.raises(UnavailableError):
        fetch(transport, index_dir)
    part = part_path(cached_path(transport, index_dir))
    assert part.stat().st_size == 10_000 and cached_versions(index_dir) == []  # kept, not installed
    fetched = fetch(transport, index_dir)
    size = stored(service, 1).stat().st_size
    assert transport.downloads == [(1, 0), (1, 10_000)]
    assert fetched.downloaded_bytes == size - 10_000
    assert fetched.path.read_bytes() == stored(service, 1).read_bytes() and not part.exists()


def test_a_corrupt_resumed_download_is_downloaded_again_from_the_start(service, transport, index_dir: Path) -> None:
    publish(service, 0, 50)
    index_dir.mkdir(parents=True)
    part_path(cached_path(transport, index_dir)).write_bytes(b"\x00" * 10_000)  # not the file's first bytes
    fetched = fetch(transport, index_dir)
    assert transport.downloads == [(1, 10_000), (1, 0)]
    assert fetched.path.read_bytes() == stored(service, 1).read_bytes()


def test_a_sha256_mismatch_is_refused_and_nothing_is_installed(service, transport, index_dir: Path) -> None:
    publish(service, 0, 50)
    transport.damage = True
    with pytest.raises(ChecksumMismatchError):
        fetch(transport, index_dir)
    assert sorted(p.name for p in index_dir.iterdir()) == [LOCK_NAME]  # no version, no .part


def test_a_damaged_cached_file_is_fetched_again(service, transport, index_dir: Path) -> None:
    publish(service, 0, 50)
    cached = fetch(transport, index_dir).path
    damage_docs_page(cached)  # size and meta intact: it still passes for the version

    async def open_it(manifest: Manifest, fetched: Fetched) -> int:
        reader = await asyncio.to_thread(IndexReader, fetched.path)
        reader.close()
        return reader.doc_count

    manifest = run(transport.manifest("faq"))
    assert run(fetch_and_use(transport, "faq", index_dir, manifest, open_it)) == 50
    assert transport.downloads == [(1, 0), (1, 0)]
    assert cached.read_bytes() == stored(service, 1).read_bytes()


def test_copy_to_links_the_cached_file_for_a_caller_that_keeps_its_own(service, transport, index_dir: Path, tmp_path: Path) -> None:
    publish(service, 0, 50)
    copy = tmp_path / "faq.base.sqlite"
    first = fetch(transport, index_dir, copy_to=copy)
    assert first.path == copy and os.path.samefile(copy, cached_path(transport, index_dir))
    copy.unlink()
    second = fetch(transport, index_dir, copy_to=copy)
    assert second.from_cache and copy.read_bytes() == stored(service, 1).read_bytes()
    assert transport.downloads == [(1, 0)]


def test_fetches_of_one_version_at_once_download_it_once(service, transport, index_dir: Path) -> None:
    publish(service, 0, 50)

    async def both() -> list[Fetched]:
        manifest = await transport.manifest("faq")
        return await asyncio.gather(*(fetch_version(transport, "faq", index_dir, manifest) for _ in range(2)))

    fetched = run(both())
    assert transport.downloads == [(1, 0)]  # the second waited for the lock, then found the file
    assert sorted(f.from_cache for f in fetched) == [False, True]


def test_the_folder_lock_excludes_every_other_holder(tmp_path: Path) -> None:
    index_dir = tmp_path / "cache" / "p" / "faq"

    def try_lock() -> bool:  # another holder: its own open file, as another process has
        fd = os.open(index_dir / LOCK_NAME, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    async def main() -> tuple[bool, bool]:
        async with index_dir_lock(index_dir):
            held = await asyncio.to_thread(try_lock)
        return held, await asyncio.to_thread(try_lock)

    assert run(main()) == (False, True)
