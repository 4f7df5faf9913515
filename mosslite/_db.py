"""Opening SQLite connections the way mosslite needs them.

Each set-up step is a small named function saying why (cf. apsw's
bestpractice module). Foreign sqlite errors are translated to our error tree at
one boundary, ``translating_sqlite_errors``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import apsw
import sqlite_vec

from .errors import CorruptIndexError, MossliteError

Tracer = Callable[[str, object], None]

_SCHEMA_DIRS = (
    Path(__file__).resolve().parent / "schemas",  # inside an installed wheel
    Path(__file__).resolve().parent.parent / "schemas",  # a source checkout
)


def schema_path(name: str) -> Path:
    """``schemas/<name>`` (a file or a folder): the wheel's copy, else the checkout's."""
    for directory in _SCHEMA_DIRS:
        candidate = directory / name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"schema {name!r} not found in {[str(d) for d in _SCHEMA_DIRS]}")


def read_schema(name: str) -> str:
    """The DDL of ``schemas/<name>``: the one canonical copy, never pasted into code."""
    return schema_path(name).read_text(encoding="utf-8")


def vec_extension_path() -> str:
    """Path of the sqlite-vec loadable extension, for `.load` in the sqlite3 shell."""
    return sqlite_vec.loadable_path()


def load_vec(conn: apsw.Connection) -> None:
    """vec0 is needed to write docs (the triggers feed docs_vec) and for SQL KNN."""
    conn.enable_load_extension(True)
    conn.load_extension(vec_extension_path())
    conn.enable_load_extension(False)


def map_whole_file(conn: apsw.Connection) -> None:
    """Read an immutable file through mmap: no read() copies into the page cache's
    twin (hydration of 100k docs measured 400 -> 222 ms)."""
    conn.execute("PRAGMA mmap_size = 4294967296")


def set_busy_timeout(conn: apsw.Connection, ms: int = 10_000) -> None:
    """Writers from several threads or processes wait for each other instead of failing."""
    conn.set_busy_timeout(ms)


def use_wal(conn: apsw.Connection) -> None:
    """Readers never block the writer and commits cost one fsync of the WAL."""
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")


def bound_wal(conn: apsw.Connection, pages: int = 128) -> None:
    """Checkpoint every ``pages`` pages and truncate the WAL file then: a long-lived
    database with small writes (the catalog) otherwise keeps a WAL of its largest
    size beside it for good (SQLite's default: 1000 pages, 4 MB)."""
    conn.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")
    conn.execute(f"PRAGMA journal_size_limit = {int(pages) * 4096}")


def enforce_foreign_keys(conn: apsw.Connection) -> None:
    conn.execute("PRAGMA foreign_keys = ON")


def attach_tracer(conn: apsw.Connection, tracer: Tracer | None) -> None:
    """Let callers see every statement (``--sql`` flags, tests, debugging)."""
    if tracer is None:
        return

    def exec_trace(cursor: apsw.Cursor, sql: str, bindings: object) -> bool:
        tracer(sql, bindings)
        return True

    conn.exec_trace = exec_trace


def connect(
    path: Path | str,
    *,
    readonly: bool = False,
    immutable: bool = False,
    mmap: bool = True,
    vec: bool = False,
    tracer: Tracer | None = None,
) -> apsw.Connection:
    """Open ``path``. ``immutable`` is for published index files: they never change
    after publication, so SQLite may skip locking and change detection entirely;
    they are memory-mapped unless ``mmap`` is False."""
    if immutable:
        uri = Path(path).resolve().as_uri() + "?immutable=1"
        flags = apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
        conn = apsw.Connection(uri, flags=flags)
        if mmap:
            map_whole_file(conn)
    elif readonly:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    else:
        conn = apsw.Connection(str(path))
    if vec:
        load_vec(conn)
    set_busy_timeout(conn)
    attach_tracer(conn, tracer)
    return conn


@functools.lru_cache(maxsize=2048)  # counts up to 500 terms, or MAX_TOP_K result rows
def with_parameters(sql: str, count: int) -> str:
    """``sql`` with its ``{parameters}`` replaced by ``count`` placeholders, for
    ``IN ({parameters})``: binding a short list this way is a third faster than
    passing it as JSON through json_each (a query's terms, its result rows)."""
    return sql.format(parameters=", ".join("?" * count))


class translating_sqlite_errors:  # (lower case: used as a function, ``with translating_sqlite_errors(path):``)
    """Turn apsw's exceptions about a damaged or foreign file into CorruptIndexError.

    A class, not a ``@contextmanager`` generator: entering and leaving costs ~0.4 us
    instead of ~1.8, and a query's row fetch passes through it (index/reader.py)."""

    __slots__ = ("path", "what")

    def __init__(self, path: Path | str, what: str = "index file") -> None:
        self.path = path
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or isinstance(exc, MossliteError):
            return False
        path, what = self.path, self.what
        if isinstance(exc, (apsw.NotADBError, apsw.CorruptError)):
            raise CorruptIndexError(f"{path} is not a valid {what}: {exc}", path=str(path)) from exc
        if isinstance(exc, apsw.SQLError):
            raise CorruptIndexError(f"{path} is not a mosslite {what}: {exc}", path=str(path)) from exc
        if isinstance(exc, apsw.CantOpenError):
            raise CorruptIndexError(f"cannot open {path}: {exc}", path=str(path)) from exc
        return False


__all__ = [
    "Tracer",
    "connect",
    "read_schema",
    "translating_sqlite_errors",
    "vec_extension_path",
    "with_parameters",
]
