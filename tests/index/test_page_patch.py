"""Page maps and page patches on real index files: a patch rebuilds the new version
byte for byte, and a malformed one is refused without touching the base."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from mosslite import DocumentInfo, Version, build_version, get_embedder
from mosslite.errors import ChecksumMismatchError, CorruptIndexError
from mosslite.index import page_patch
from mosslite.index.page_patch import PATCH_HEADER, PAGE_NUMBER, Alike, PageMap, apply_patch, patch_chunks

EMBEDDER = get_embedder("hashed-ngrams-256")


def docs(start: int, count: int, tag: str = "") -> list[DocumentInfo]:
    return [
        DocumentInfo(id=f"d{i}", text=f"note {i} about routers printers and cables {tag} " * 8, metadata={"n": str(i)})
        for i in range(start, start + count)
    ]


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """v1; v2 = v1 + 5 docs; v3 = v2 - 1 doc + 1 edited; v4 = v3 with most docs
    deleted (VACUUM: a smaller file whose pages moved)."""
    folder = tmp_path_factory.mktemp("pages")
    paths = [folder / f"v{n}.sqlite" for n in range(1, 5)]
    build_version(paths[0], embedder=EMBEDDER, index_name="p", version=Version(1), upserts=docs(0, 400))
    build_version(paths[1], embedder=EMBEDDER, index_name="p", version=Version(2), upserts=docs(400, 5), base=paths[0])
    build_version(
        paths[2], embedder=EMBEDDER, index_name="p", version=Version(3), upserts=docs(7, 1, "edited"),
        deletes=["d3"], base=paths[1],
    )
    build_version(
        paths[3], embedder=EMBEDDER, index_name="p", version=Version(4), deletes=[f"d{i}" for i in range(300)],
        base=paths[2],
    )
    return paths


def patch_file(tmp_path: Path, new: Path, base: Path, name: str = "patch.bin") -> Path:
    target, old = PageMap.of_file(new), PageMap.of_file(base)
    data = new.read_bytes()
    out = tmp_path / name
    out.write_bytes(b"".join(patch_chunks(target, target.changed_since(old), lambda a, b: data[a:b])))
    return out


def test_map_matches_the_file(versions: list[Path]) -> None:
    path = versions[0]
    data = path.read_bytes()
    mapped = PageMap.of_file(path)
    size = int.from_bytes(data[16:18], "big")  # the header's page size (index files: 4 KB)
    assert mapped.sha256 == hashlib.sha256(data).hexdigest() and mapped.size_bytes == len(data)
    assert mapped.page_size == size and mapped.page_count == len(data) // size
    assert mapped.digests[3].tobytes() == hashlib.sha256(data[3 * size : 4 * size]).digest()[:16]
    # Any chunking gives the same map; the stored form round-trips.
    odd = PageMap.of_chunks(data[i : i + 7001] for i in range(0, len(data), 7001))
    assert odd.sha256 == mapped.sha256 and np.array_equal(odd.digests, mapped.digests)
    again = PageMap.from_bytes(mapped.to_bytes())
    assert (again.sha256, again.page_size, again.size_bytes) == (mapped.sha256, size, len(data))
    assert np.array_equal(again.digests, mapped.digests)


def test_changed_pages_are_exactly_the_differing_ones(versions: list[Path]) -> None:
    for base, new in zip(versions, versions[1:]):
        a, b = base.read_bytes(), new.read_bytes()
        size = int.from_bytes(b[16:18], "big")
        pages = -(-len(b) // size)
        want = [p for p in range(pages) if a[p * size : (p + 1) * size] != b[p * size : (p + 1) * size]]
        assert PageMap.of_file(new).changed_since(PageMap.of_file(base)).tolist() == want
    small = PageMap.of_file(versions[1]).changed_since(PageMap.of_file(versions[0]))
    # 5 new docs: a few pages of each table a version touches (header, pointer map,
    # docs, its id index, FTS5, recent postings, lengths, vec0, codes, meta): at
    # this file's 200 pages about a tenth, at 10k documents well under 1%.
    assert 0 < len(small) <= 24


@pytest.mark.parametrize("pair", [(0, 1), (1, 2), (0, 2), (2, 3), (3, 0)])
def test_a_map_made_against_the_version_before_is_the_same_map(versions: list[Path], pair) -> None:
    # The builder hashes only the pages a version changed (Alike): grown, edited,
    # shrunk (v4 is smaller and its pages moved) or unrelated, the map is the same.
    base, new = versions[pair[0]], versions[pair[1]]
    data = new.read_bytes()
    with open(base, "rb") as old:
        alike = Alike(PageMap.of_file(base), old)
        against = PageMap.of_chunks((data[i : i + 7001] for i in range(0, len(data), 7001)), alike)  # odd chunks
    whole = PageMap.of_file(new)
    assert (against.sha256, against.page_size, against.size_bytes) == (whole.sha256, whole.page_size, whole.size_bytes)
    assert np.array_equal(against.digests, whole.digests)


def test_only_the_pages_that_differ_from_the_base_are_hashed(versions: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    base_map = PageMap.of_file(versions[0])
    changed = PageMap.of_file(versions[1]).changed_since(base_map)
    hashed: list[int] = []
    real = page_patch._digests
    monkeypatch.setattr(page_patch, "_digests", lambda pages: real([p for p in pages if not hashed.append(1)]))
    with open(versions[0], "rb") as old, open(versions[1], "rb") as fh:
        PageMap.of_stream(fh, Alike(base_map, old))
    assert len(hashed) == len(changed) < base_map.page_count / 5


@pytest.mark.parametrize("pair", [(0, 1), (1, 2), (0, 2), (2, 3), (3, 0)])
def test_a_patch_rebuilds_the_new_version_byte_for_byte(versions: list[Path], tmp_path: Path, pair) -> None:
    base, new = versions[pair[0]], versions[pair[1]]  # (2, 3) shrinks the file, (3, 0) grows it
    before = base.read_bytes()
    out = tmp_path / "out.sqlite"
    sha256 = apply_patch(base, patch_file(tmp_path, new, base), out)
    assert out.read_bytes() == new.read_bytes() and sha256 == hashlib.sha256(new.read_bytes()).hexdigest()
    assert base.read_bytes() == before


def test_an_empty_patch_copies_the_base(versions: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out.sqlite"
    apply_patch(versions[1], patch_file(tmp_path, versions[1], versions[1]), out)
    assert out.read_bytes() == versions[1].read_bytes()


def damaged(good: bytes, how: str) -> bytes:
    page_size, count, size = PATCH_HEADER.unpack(good[: PATCH_HEADER.size])[1:]
    first = PATCH_HEADER.size
    if how == "magic":
        return b"XXPATCH1" + good[8:]
    if how == "page size":
        return PATCH_HEADER.pack(b"MLPATCH1", 1000, count, size) + good[first:]
    if how == "truncated":
        return good[: len(good) - 100]
    if how == "trailing bytes":
        return good + b"\x00"
    if how == "past the end":
        return good[:first] + PAGE_NUMBER.pack(size // page_size + 5) + good[first + 4 :]
    if how == "out of order":  # the second record names the same page as the first
        second = first + 4 + page_size
        return good[:second] + good[first : first + 4] + good[second + 4 :]
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["magic", "page size", "truncated", "trailing bytes", "past the end", "out of order"])
def test_a_malformed_patch_is_refused(versions: list[Path], tmp_path: Path, how: str) -> None:
    good = patch_file(tmp_path, versions[1], versions[0]).read_bytes()
    bad = tmp_path / "bad.bin"
    bad.write_bytes(damaged(good, how))
    before = versions[0].read_bytes()
    with pytest.raises(ChecksumMismatchError, match="page patch"):
        apply_patch(versions[0], bad, tmp_path / "out.sqlite")
    assert versions[0].read_bytes() == before


def test_bad_maps_and_non_sqlite_files(tmp_path: Path, versions: list[Path]) -> None:
    good = PageMap.of_file(versions[0]).to_bytes()
    for bad in (b"", good[:20], b"XXPAGES1" + good[8:], good[:-1]):
        with pytest.raises(CorruptIndexError):
            PageMap.from_bytes(bad)
    with pytest.raises(CorruptIndexError):
        PageMap.of_chunks([b"not a database at all, just text"])
    with pytest.raises(CorruptIndexError):
        PageMap.of_chunks([])
