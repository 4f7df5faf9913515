"""One contract for every Storage backend (cf. Litestream's RunWithReplicaClient)."""

from __future__ import annotations

import secrets
import stat
import threading
from pathlib import Path

import pytest

from mosslite.service.storage import Storage, open_storage
from mosslite.service.storage.directory import DirectoryStorage
from mosslite.service.storage.memory import MemoryStorage
from mosslite.service.storage.s3 import S3Storage

from ..seaweedfs import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, SeaweedFS


def s3_storage(seaweedfs: SeaweedFS, endpoint: str | None = None, **options) -> S3Storage:
    """A prefix of its own in the real SeaweedFS of the run (tests/seaweedfs.py)."""
    prefix = "t-" + secrets.token_hex(6)
    return S3Storage(BUCKET, prefix, endpoint=endpoint or seaweedfs.endpoint, region=REGION,
                     credentials=(ACCESS_KEY, SECRET_KEY), **options)


@pytest.fixture(params=["directory", "memory", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "s3":
        return s3_storage(request.getfixturevalue("seaweedfs"))
    return DirectoryStorage(tmp_path / "store") if request.param == "directory" else MemoryStorage()


def source(tmp_path: Path, data: bytes, name: str = "src.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_put_read_size_list_delete(storage: Storage, tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    storage.put("p/i/0000000001.sqlite", source(tmp_path, data))
    storage.put_bytes("p/i/manifest.json", b"{}")
    storage.put_bytes("q/other.json", b"x")
    assert storage.read_bytes("p/i/0000000001.sqlite") == data
    assert storage.size("p/i/0000000001.sqlite") == len(data)
    assert storage.list("p/") == ["p/i/0000000001.sqlite", "p/i/manifest.json"]
    storage.delete("p/i/manifest.json")
    storage.delete("p/i/manifest.json")  # idempotent
    assert storage.list("p/") == ["p/i/0000000001.sqlite"]


def test_ranges(storage: Storage, tmp_path: Path) -> None:
    data = bytes(range(256)) * 10000  # several chunks
    storage.put("k", source(tmp_path, data))
    assert b"".join(storage.iter_range("k")) == data
    assert b"".join(storage.iter_range("k", 1000)) == data[1000:]
    assert b"".join(storage.iter_range("k", 5, 17)) == data[5:17]
    assert b"".join(storage.iter_range("k", len(data))) == b""


def test_missing_keys(storage: Storage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("nope")
    with pytest.raises(FileNotFoundError):
        storage.size("nope")
    with pytest.raises(FileNotFoundError):
        b"".join(storage.iter_range("nope"))
    assert storage.list("nope/") == []


def test_copy_stores_the_same_bytes_under_a_second_key_that_outlives_the_first(storage: Storage, tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    storage.put("p/i/0000000001.sqlite", source(tmp_path, data))
    storage.copy("p/i/0000000001.sqlite", "_public/p/i/0000000001.sqlite")
    storage.copy("p/i/0000000001.sqlite", "_public/p/i/0000000001.sqlite")  # again: the same object
    storage.delete("p/i/0000000001.sqlite")
    assert storage.read_bytes("_public/p/i/0000000001.sqlite") == data
    assert storage.list("_public/") == ["_public/p/i/0000000001.sqlite"]
    with pytest.raises(FileNotFoundError):
        storage.copy("p/i/0000000001.sqlite", "_public/p/i/0000000002.sqlite")
    assert storage.list("_public/") == ["_public/p/i/0000000001.sqlite"]


def test_put_move_consumes_source(storage: Storage, tmp_path: Path) -> None:
    src = source(tmp_path, b"abc")
    storage.put("k", src, move=True)
    assert not src.exists() and storage.read_bytes("k") == b"abc"


def test_replace_is_all_or_nothing_for_readers(storage: Storage, tmp_path: Path) -> None:
    old, new = b"o" * 3_000_000, b"n" * 3_000_000
    storage.put("k", source(tmp_path, old))
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            body = storage.read_bytes("k")
            seen.add(body[:1] + body[-1:])

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(5):
        storage.put("k", source(tmp_path, new if i % 2 == 0 else old, f"s{i}"))
    stop.set()
    thread.join()
    assert seen <= {b"oo", b"nn"}


def test_directory_refuses_keys_that_escape(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path / "store")
    with pytest.raises(ValueError):
        storage.put_bytes("../outside", b"x")
    assert not (tmp_path / "outside").exists()


def test_open_storage_by_scheme(tmp_path: Path) -> None:
    assert isinstance(open_storage(str(tmp_path / "a")), DirectoryStorage)
    assert isinstance(open_storage(f"file://{tmp_path / 'b'}"), DirectoryStorage)
    assert isinstance(open_storage("memory://"), MemoryStorage)
    s3 = open_storage("s3://bucket/pre/fix/", endpoint="http://127.0.0.1:1", region="eu-west-1")
    assert isinstance(s3, S3Storage) and s3.url == "s3://bucket/pre/fix"
    assert open_storage("s3://bucket", endpoint="http://127.0.0.1:1").url == "s3://bucket"
    with pytest.raises(ValueError):
        open_storage("s4://bucket")


def test_directory_objects_are_stored_without_write_bits(tmp_path: Path) -> None:
    # Stored objects never change, and the embedded client hard-links version files
    # into its cache: with write bits, sqlite3 on a cached file would edit the service's copy.
    storage = DirectoryStorage(tmp_path / "store")
    storage.put("p/i/0000000001.sqlite", source(tmp_path, b"copied"))
    storage.put("p/i/0000000002.sqlite", source(tmp_path, b"moved"), move=True)
    storage.put_bytes("p/i/manifest.json", b"{}")
    storage.put_bytes("p/i/manifest.json", b'{"v": 2}')  # replaced by a new file, not rewritten
    for key in storage.list("p/"):
        assert stat.S_IMODE(storage._path(key).stat().st_mode) & 0o222 == 0, key
    assert storage.read_bytes("p/i/manifest.json") == b'{"v": 2}'
    storage.delete("p/i/0000000001.sqlite")
    assert storage.list("p/") == ["p/i/0000000002.sqlite", "p/i/manifest.json"]
