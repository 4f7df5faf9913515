"""Cursors of ``get_docs`` pages: where the next page starts, in which version, for which request.

Invariants (issue #8):
- A cursor is opaque to clients: ``<version>.<after>.<request digest>``. Every
  page of one listing reads the version its first page read, so a listing is
  one snapshot even while new versions are published; once that version is
  pruned, the cursor is refused (409) and the caller starts again.
- A cursor only continues the request that made it: the digest covers the ids,
  the filter and ``include_embedding``; another request with it is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgumentError
from ..types import DEFAULT_PAGE_DOCS, MAX_PAGE_DOCS, Version

#: (18 digits: every ``after`` fits SQLite's int64, whatever a client sends.)
_CURSOR_RE = re.compile(r"([0-9]{1,10})\.([0-9]{1,18})\.([0-9a-f]{16})")


@dataclass(frozen=True)
class Cursor:
    version: int
    after: int
    digest: str

    def encode(self) -> str:
        return f"{self.version}.{self.after}.{self.digest}"


def request_digest(ids: Sequence[str] | None, filter: dict[str, Any] | None, include_embedding: bool) -> str:
    request = json.dumps([ids, filter, include_embedding], sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.sha256(request.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def parse_cursor(cursor: object, digest: str) -> Cursor:
    """The cursor a previous page of this very request returned."""
    match = _CURSOR_RE.fullmatch(cursor) if isinstance(cursor, str) else None
    if match is None:
        raise InvalidArgumentError(
            f"not a get_docs cursor: {cursor!r}", hint="pass back the next_cursor of the previous page, unchanged"
        )
    version, after, made_for = match.groups()
    if made_for != digest:
        raise InvalidArgumentError(
            "this cursor belongs to another get_docs request (other ids, filter or include_embedding)",
            hint="send the same request as for the first page, with its next_cursor",
        )
    return Cursor(Version(int(version)), int(after), made_for)


def page_limit(limit: object) -> int:
    if limit is None:
        return DEFAULT_PAGE_DOCS
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_DOCS:
        raise InvalidArgumentError(f"limit must be an integer from 1 to {MAX_PAGE_DOCS}, got {limit!r}")
    return limit
