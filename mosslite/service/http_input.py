"""What a client sends over HTTP, read and checked before the service sees it: the
body (within a byte limit, as strict JSON), numbers sent as text, and the
``Range`` and ``If-None-Match`` headers.

Invariants (issue #8):
- A request body is never read past ``limit``: a declared ``Content-Length``
  over the limit is refused before reading, and the bytes are counted while
  reading, so a lying or chunked client cannot exceed it.
- Numbers from the client (path versions, ``?from=``, ``Content-Length``,
  ``Range``, JSON numbers) are checked as text before ``int()`` sees them:
  ASCII digits only (``str.isdigit`` also accepts '²'), a bounded length;
  JSON integers fit in 64 bits, and NaN/Infinity (not JSON) are refused.
  Hostile input is a typed 4xx (``InvalidArgumentError``, ``PayloadTooLargeError``),
  never an exception that reaches the boundary; a Range that cannot be served is
  a ValueError, which http.py answers 416.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Set
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from ..errors import InvalidArgumentError, PayloadTooLargeError
from ..types import MutationOptions, Version
from ..wire import from_dict

_RANGE_RE = re.compile(r"^bytes=([0-9]{0,19})-([0-9]{0,19})$")  # 19 digits: int64, and int() stays cheap
#: JSON integers in a request fit in 64 bits (what SQLite and numpy hold); longer text is refused unread.
_MAX_JSON_INT_CHARS = 20


# -- request bodies ---------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    too_large = PayloadTooLargeError(
        f"the request body is over {limit} bytes", hint="send the documents in smaller batches"
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        if not _is_digits(declared):
            raise InvalidArgumentError(f"bad Content-Length header {declared[:40]!r}")
        significant = declared.lstrip("0")
        if len(significant) > len(str(limit)) or int(significant or "0") > limit:
            raise too_large
    parts: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise too_large
            parts.append(chunk)
    except ClientDisconnect as exc:  # nobody will read the answer; just do not log it as ours
        raise InvalidArgumentError("the client disconnected while sending the body") from exc
    return b"".join(parts)


async def read_json(
    request: Request, limit: int, *, required: Set[str] = frozenset(), optional: Set[str] = frozenset()
) -> dict[str, Any]:
    """The body as a JSON object with exactly the allowed fields."""
    raw = await read_body(request, limit)
    try:
        body = await run_in_threadpool(_loads, raw)  # up to the limit: keep it off the event loop
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidArgumentError(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidArgumentError(f"the request body must be a JSON object, got {type(body).__name__}")
    unknown = set(body) - set(required) - set(optional)
    if unknown:
        raise InvalidArgumentError(f"unknown field(s) in the request body: {sorted(unknown)}")
    missing = set(required) - set(body)
    if missing:
        raise InvalidArgumentError(f"missing field(s) in the request body: {sorted(missing)}")
    return body


def _json_int(text: str) -> int:
    if len(text) > _MAX_JSON_INT_CHARS or not -(2**63) <= (value := int(text)) < 2**63:
        shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
        raise InvalidArgumentError(f"the request body holds an integer out of the 64-bit range: {shown}")
    return value


def _json_constant(name: str) -> Any:
    raise InvalidArgumentError(f"the request body is not valid JSON: {name} is not a JSON number")


#: json.loads, strict about numbers: Python's own raises ValueError on an integer past 4,300
#: digits, and takes NaN and Infinity, which JSON has not. Floats keep the C parser's fast path
#: (a hook would cost ~35% on a body of embeddings); 1e400 is inf, which documents refuse.
_loads = functools.partial(json.loads, parse_int=_json_int, parse_constant=_json_constant)


def _is_digits(text: str) -> bool:
    """Only ASCII 0-9: ``str.isdigit`` also accepts '²' and other digits ``int`` refuses."""
    return text.isascii() and text.isdigit()


def version_number(text: str, message: str) -> Version:
    """A version number sent as text: at most Version.WIDTH ASCII digits, checked before int()."""
    if not (_is_digits(text) and len(text) <= Version.WIDTH):
        raise InvalidArgumentError(f"{message}: an integer from 0 to {Version.MAX}, got {text[:40]!r}")
    return Version(int(text))


def version_param(request: Request) -> Version:
    return version_number(request.path_params["version"], "the path's version is not a version number")


def optional(body: dict[str, Any], field: str, kind: type) -> Any:
    value = body.get(field)
    if value is not None and not isinstance(value, kind):
        raise InvalidArgumentError(f"{field!r} must be {_json_type(kind)} or null, got {type(value).__name__}")
    return value


def id_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise InvalidArgumentError(f"'ids' must be an array of strings, got {type(value).__name__}")
    return value


def mutation_options(value: Any) -> MutationOptions:
    if value is None:
        return MutationOptions()
    return from_dict(MutationOptions, value)  # (MutationOptions checks upsert itself)


def _json_type(kind: type) -> str:
    return {str: "a string", dict: "an object", list: "an array"}.get(kind, kind.__name__)


# -- conditional and range requests -----------------------------------------------


def etag_matches(request: Request, sha256: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or f'"{sha256}"' in tags


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of one ``bytes=`` range, or None for the whole file.

    Units other than bytes are ignored (RFC 9110 section 14.2); a bytes range we
    cannot serve (past the end, reversed, several ranges) raises ValueError: a 416.
    """
    if header is None or not header.strip().lower().startswith("bytes="):
        return None
    match = _RANGE_RE.match(header.strip().lower().replace(" ", ""))
    if match is None or match.groups() == ("", ""):
        raise ValueError(f"unsupported range {header!r}: send one range, bytes=<start>-[<end>]")
    first, last = match.groups()
    if first == "":  # a suffix: the last N bytes
        if int(last) == 0:
            raise ValueError(f"range {header!r} asks for no bytes")
        return max(0, size - int(last)), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or start >= end:
        raise ValueError(f"range {header!r} is not within the file's {size} bytes")
    return start, end
