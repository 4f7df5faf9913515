"""The index file format: its version, its `meta` facts, and how to check a file.

The DDL itself lives in ``schemas/index.sql``; this module applies it and reads
back what it stores, refusing files that are not ours or are from the future.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import apsw

from .._db import read_schema, translating_sqlite_errors
from ..errors import CorruptIndexError, UnsupportedFormatError
from ..types import Version

FORMAT_VERSION = 3
#: Slots per chunk of the vec0 table (its ``chunk_size``). A chunk's vectors are
#: allocated whole (448 x 384 dims: 688 KB, at most that much unused in a small
#: index), and its row of rowids (8 bytes a slot) fills most of a 4 KB page: with
#: 256 slots half of each such page was empty. A multiple of TILE_SLOTS
#: (vectors/stored_codes.py).
CHUNK_SLOTS = 448
SCHEMA_FILE = "index.sql"

READ_META_SQL = """
SELECT key, value
FROM meta
"""

WRITE_META_SQL = """
INSERT INTO meta (key, value)
VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value
"""

COUNT_DOCS_SQL = """
SELECT count(*)
FROM docs
"""


@dataclass(frozen=True, kw_only=True)
class IndexMeta:
    """What the ``meta`` table says about one version file."""

    index_name: str
    version: Version
    model_id: str
    dimension: int
    doc_count: int
    created_at: str
    format_version: int = FORMAT_VERSION

    def as_rows(self) -> list[dict[str, str]]:
        return [{"key": k, "value": str(v)} for k, v in asdict(self).items()]


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def index_ddl(dimension: int) -> str:
    """schemas/index.sql with the vector width and chunk size filled in (checked to be ints first)."""
    if isinstance(dimension, bool) or not isinstance(dimension, int) or not 1 <= dimension <= 8192:
        raise ValueError(f"dimension must be an integer from 1 to 8192, got {dimension!r}")
    return read_schema(SCHEMA_FILE).replace(":dimension", str(dimension)).replace(":chunk_size", str(CHUNK_SLOTS))


def create_schema(conn: apsw.Connection, dimension: int) -> None:
    conn.execute(index_ddl(dimension))


def write_meta(conn: apsw.Connection, meta: IndexMeta) -> None:
    conn.executemany(WRITE_META_SQL, meta.as_rows())


def read_meta(conn: apsw.Connection, path: Path | str) -> IndexMeta:
    """Check the file is a mosslite index of a format we read, then return its facts."""
    with translating_sqlite_errors(path):
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
        if user_version > FORMAT_VERSION:
            raise UnsupportedFormatError(
                f"{path} has index format {user_version}; this mosslite reads up to {FORMAT_VERSION}",
                path=str(path),
                format_version=user_version,
            )
        if 1 <= user_version < FORMAT_VERSION:
            raise UnsupportedFormatError(
                f"{path} has index format {user_version}, from before this mosslite's {FORMAT_VERSION}",
                path=str(path),
                format_version=user_version,
                hint="rebuild it from its documents (format 3 stores each vector once and the search codes)",
            )
        if user_version != FORMAT_VERSION:
            raise CorruptIndexError(f"{path} is not a mosslite index (user_version {user_version})", path=str(path))
        raw = dict(conn.execute(READ_META_SQL).fetchall())
    try:
        return IndexMeta(
            index_name=raw["index_name"],
            version=Version(int(raw["version"])),
            model_id=raw["model_id"],
            dimension=int(raw["dimension"]),
            doc_count=int(raw["doc_count"]),
            created_at=raw["created_at"],
            format_version=int(raw["format_version"]),
        )
    except (KeyError, ValueError) as exc:
        raise CorruptIndexError(f"{path} has an incomplete meta table: {exc!r}", path=str(path)) from exc
