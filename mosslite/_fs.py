"""Durable file replacement, written once and used by every writer.

Temp file beside the target, write, fsync, close, rename, fsync the directory:
after a crash the target is either the old file or the new one, never a torn
mix (cf. Litestream's WriteLTXFile). Checksums are verified before the rename.
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import shutil
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from ._background import lower_priority
from .errors import InvalidArgumentError

T = TypeVar("T")

TEMP_MARKER = ".tmp-"
CHUNK_BYTES = 1 << 20


def temp_path_for(target: Path) -> Path:
    """A unique temp name in the target's directory (same filesystem, so rename is atomic)."""
    return target.with_name(f"{target.name}{TEMP_MARKER}{secrets.token_hex(6)}")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: copy_written_back copies and writes back this many bytes at a time.
WRITE_BACK_BYTES = 8 << 20
_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4  # sync_file_range(2)'s flags


def copy_written_back(source: Path, dest: Path, *, piece_bytes: int = WRITE_BACK_BYTES) -> bool:
    """Copy ``source`` to a new file ``dest`` a piece at a time, each piece on disk
    before the next is copied (Linux), and return True; elsewhere copy it whole and
    return False (the caller flushes it). A filesystem with reflinks may share the
    bytes instead (copy_file_range), leaving nothing to write.

    Why: a version of 100k documents (228 MB) copied in one go moves its bytes
    through memory in ~65 ms and leaves them all to one flush. Queries in the same
    machine stall meanwhile: a copy + fsync every 2 s raised their p99 1.41-1.50x, a
    copy written back in 2, 8 or 32 MB pieces 1.24-1.28x, in the same wall time
    (~0.6 s; benchmarks/hot_swap.py's interferers). Writing back after the whole copy
    did not help (1.46x): the burst of the copy is what the queries feel, and waiting
    for each piece's write paces it."""
    sync_range = _sync_file_range()
    if sync_range is None:
        shutil.copyfile(source, dest)
        return False
    with open(source, "rb") as src, open(dest, "wb") as dst:
        size = os.fstat(src.fileno()).st_size
        for start in range(0, size, piece_bytes):
            length = min(piece_bytes, size - start)
            _copy_range(src.fileno(), dst.fileno(), start, length)
            if sync_range(dst.fileno(), start, length, _WAIT_BEFORE | _WRITE | _WAIT_AFTER) != 0:
                raise OSError(_errno(), f"sync_file_range of {dest} failed")
    return True


def _copy_range(src: int, dst: int, start: int, length: int) -> None:
    """Bytes ``start`` to ``start + length`` of ``src`` to the same place in ``dst``."""
    done = 0
    while done < length:
        try:
            copied = os.copy_file_range(src, dst, length - done, start + done, start + done)
        except OSError:  # (a kernel or filesystem without it)
            copied = os.pwrite(dst, os.pread(src, length - done, start + done), start + done)
        if copied == 0:
            raise OSError(f"the file being copied ended at byte {start + done}, before its size")
        done += copied


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """glibc's sync_file_range (Python's os does not offer it), or None. (ctypes is
    imported here: ~2 ms that ``import mosslite`` need not pay.)"""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_read_only(path: Path) -> None:
    """Clear a file's write bits. For files that must never change once installed
    (published versions and their copies): the sqlite3 shell, or any other tool,
    then opens them read-only instead of editing bytes the service and its clients
    have checksummed and built on. (root is not stopped by the bits.)"""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o222:
        try:
            os.chmod(path, mode & ~0o222)
        except PermissionError:  # another user's file, hard-linked (a shared, older folder): best effort
            pass


def install(
    temp: Path, target: Path, *, digest: Callable[[BinaryIO], T] | None = None, replace: bool = True
) -> T | None:
    """Make a fully written temp file the target, durably and atomically.

    With ``digest`` also return ``digest(file)`` (a checksum of its bytes), read
    from the page cache on another thread while fsync writes the file out:
    hashing is CPU and fsync is I/O, so they overlap (a 400 MB version: ~0.35 s
    off publishing it). ``replace=False``: if anything is at ``target`` (even
    created a moment ago), raise FileExistsError and leave it and ``temp`` be."""
    if digest is None:
        _place_durably(temp, target, replace)
        return None
    with open(temp, "rb") as fh:
        result = in_background(digest, fh, low_priority=True)  # the open handle survives the rename
        _place_durably(temp, target, replace)
        return result()


def in_background(fn: Callable[..., T], *args: Any, low_priority: bool = False) -> Callable[[], T]:
    """Run ``fn(*args)`` on a new thread; the returned function joins it and returns
    its result (or raises its error). A plain thread, not an executor: jobs may run
    while the interpreter shuts down, when executors refuse new work.

    ``low_priority``: the thread runs at a lower scheduling priority (Linux: its own
    nice value), so hashing and flushing hundreds of MB for a build yield the cores
    to queries in the same process or machine. Only for work that starts no thread
    pool of its own (onnxruntime's would inherit the priority)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            if low_priority:
                lower_priority()
            outcome["value"] = fn(*args)
        except BaseException as exc:  # handed to whoever joins
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"mosslite-{getattr(fn, '__name__', 'io')}", daemon=True)
    thread.start()

    def join() -> T:
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return join


def _place_durably(temp: Path, target: Path, replace: bool) -> None:
    fsync_file(temp)
    if replace:
        os.replace(temp, target)
    else:  # link(2) fails if the name exists, atomically: no check-then-rename race
        os.link(temp, target)
        os.unlink(temp)
    fsync_dir(target.parent)


@contextmanager
def atomic_path(target: Path, *, read_only: bool = False) -> Iterator[Path]:
    """Yield a temp path to fill; on success it replaces ``target`` (without write
    bits if ``read_only``), on error it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(target)
    try:
        yield temp
        if read_only:
            make_read_only(temp)
        install(temp, target)
    finally:
        if temp.exists():
            temp.unlink()


def atomic_write_bytes(target: Path, data: bytes, *, read_only: bool = False) -> None:
    with atomic_path(target, read_only=read_only) as temp:
        temp.write_bytes(data)


def sha256_of(path: Path) -> hashlib._Hash:
    """A running sha256 of the file's bytes so far (none if it does not exist),
    so a resumed download continues the digest instead of re-reading at the end."""
    if not path.exists():
        return hashlib.sha256()
    with open(path, "rb") as fh:
        return _sha256_stream(fh)


def _sha256_stream(fh: BinaryIO) -> hashlib._Hash:
    digest = hashlib.sha256()
    while chunk := fh.read(CHUNK_BYTES):
        digest.update(chunk)  # releases the GIL for large updates
    return digest


def sha256_file(path: Path) -> str:
    return sha256_of(path).hexdigest()


def remove_stale_temps(directory: Path) -> list[Path]:
    """Delete temp files a crashed writer left behind; returns what was removed."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        if TEMP_MARKER in entry.name and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def remove_empty_folders(folder: Path, root: Path) -> None:
    """rmdir ``folder`` and its parents up to (not including) ``root`` while they are empty."""
    root = root.resolve()
    folder = folder.resolve()
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): stop
            return
        folder = folder.parent


def check_path(value: Any, what: str) -> Path:
    """``value`` (a str or os.PathLike naming a file) as a Path, or an InvalidArgumentError:
    not a TypeError for 5 or None, nor a ValueError for a NUL, which no OS path holds."""
    try:
        path = Path(value)
    except TypeError as exc:
        raise InvalidArgumentError(f"{what} must be a path (str or Path), got {type(value).__name__}") from exc
    if "\x00" in str(path):
        raise InvalidArgumentError(f"{what} {str(path)!r} holds a NUL character, which no file name can")
    return path


def user_path(value: object, what: str) -> Path:
    """A folder the caller named (``cache_path``, ``$MOSSLITE_HOME``) as a Path, ``~``
    expanded; the disk is not touched.

    Invariant (issue #8): only a non-empty str (or os.PathLike of one) without NUL
    whose ``~`` can be expanded becomes a Path; anything else (bytes, a number, an
    unknown ``~user``) is an InvalidArgumentError, never a TypeError, ValueError or
    RuntimeError from pathlib."""
    if isinstance(value, str) and not value:  # (Path("") is the current folder: a slip, not a choice)
        raise InvalidArgumentError(f"{what} must name a folder, got ''", hint="e.g. cache_path=Path.home() / 'mosslite'")
    path = check_path(value, what)
    try:
        return path.expanduser()
    except RuntimeError as exc:  # "~nouser": no such user, or no home directory to expand
        raise InvalidArgumentError(f"{what} {str(path)[:80]!r}: {exc}", hint="spell the folder out in full") from exc


def usable_dir(path: Path, what: str) -> Path:
    """``path``, created (with its parents) if missing. Invariant (issue #8): returned
    only once it is a folder this process can write into; a file, a path that
    cannot be created (under /proc, under a file, no permission) is an
    InvalidArgumentError naming it, before anything is written there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            reason = "it, or a folder it would be in, is a file"
        else:
            reason = exc.strerror or str(exc)
        raise InvalidArgumentError(
            f"{what} {str(path)!r} is not a usable folder: {reason}",
            path=str(path),
            hint="give a folder this process can create and write",
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise InvalidArgumentError(
            f"{what} {str(path)!r} is not a usable folder: not writable", path=str(path),
            hint="give a folder this process can create and write",
        )  # fmt: skip
    return path
