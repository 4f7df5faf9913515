"""JSON shapes of our records, shared by job requests, the HTTP API and its client.

The JSON Schemas in ``schemas/wire/`` describe these shapes; the tests validate
real messages against them. In what a caller sends, unknown fields are rejected
with InvalidArgumentError rather than silently dropped, so a typo fails loudly
(``from_dict``); in what a service answers, they are left out, so a newer
service's added fields do not break older clients (``from_answer``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from .errors import InvalidArgumentError, InvalidDocumentError
from .types import DocumentInfo, Manifest

T = TypeVar("T")

#: The bodies that are not JSON: a version file, and a page patch (index/page_patch.py).
SQLITE_MEDIA_TYPE = "application/vnd.sqlite3"
PATCH_MEDIA_TYPE = "application/vnd.mosslite.page-patch"
#: The format of a public index's manifest in the object store (service/public.py says it all).
PUBLIC_MANIFEST_FORMAT = 1
_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")  # (a name beside the manifest, never a path)


def to_dict(record: Any) -> dict[str, Any]:
    """A record as JSON-ready dict; a DocumentInfo omits its empty optional fields."""
    out = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    if isinstance(record, DocumentInfo):
        out = {k: (list(v) if k == "embedding" else v) for k, v in out.items() if v is not None}
    return out


def from_dict(cls: type[T], data: Any) -> T:
    if not isinstance(data, Mapping):
        raise InvalidArgumentError(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        # (repr: keys of several types, e.g. 1 and "x", do not sort; issue #8)
        raise InvalidArgumentError(f"unknown field(s) for {cls.__name__}: {sorted(unknown, key=repr)}")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in data and _required(f)]  # type: ignore[arg-type]
    if missing:  # (else the TypeError of __init__ would be the message; issue #12)
        raise InvalidArgumentError(f"missing field(s) for {cls.__name__}: {', '.join(map(repr, missing))}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise InvalidArgumentError(f"bad {cls.__name__}: {exc}") from exc


def from_answer(cls: type[T], data: Any) -> T:
    """A record in a service's answer: ``from_dict``, but fields this client does not
    know are left out. A service is upgraded before its devices, and a field it adds
    must not break every client of the version before (the ones a record needs must
    still be there)."""
    if isinstance(data, Mapping):
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        data = {key: value for key, value in data.items() if key in names}
    return from_dict(cls, data)


def _required(f: dataclasses.Field) -> bool:  # type: ignore[type-arg]
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def docs_from_json(items: Any, *, answer: bool = False) -> list[DocumentInfo]:
    """Documents a caller sent, or (``answer``) a service answered: see from_answer."""
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise InvalidDocumentError("docs must be a list of document objects")
    parse = from_answer if answer else from_dict
    return [parse(DocumentInfo, item) for item in items]


def docs_to_json(docs: Sequence[DocumentInfo]) -> list[dict[str, Any]]:
    return [to_dict(doc) for doc in docs]


def public_manifest_json(
    manifest: Manifest, version_file: str, page_map: str, patch: tuple[int, str] | None = None
) -> bytes:
    """A public index's manifest (service/public.py): ``format``, the Manifest's fields,
    and the names of the version file and its page map, relative to its own URL;
    ``patch``: the version a stored page patch starts from and its file's name."""
    body = {"format": PUBLIC_MANIFEST_FORMAT, **to_dict(manifest), "version_file": version_file, "page_map": page_map}
    if patch is not None:
        body["patch_from"], body["patch_file"] = patch
    return json.dumps(body, sort_keys=True).encode("utf-8")


def parse_public_manifest(data: bytes) -> tuple[Manifest, str, str, tuple[int, str] | None]:
    """(manifest, version file, page map, (patch from, patch file) or None) of
    ``public_manifest_json``'s bytes. Anything else (another format, a file name that
    would leave the manifest's folder) is an InvalidArgumentError."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgumentError(f"a public manifest is not JSON: {exc}") from exc
    if not isinstance(body, dict) or body.get("format") != PUBLIC_MANIFEST_FORMAT:
        raise InvalidArgumentError(f"not a public manifest of format {PUBLIC_MANIFEST_FORMAT}")
    names = [body.pop(field, None) for field in ("version_file", "page_map")]
    patch_from, patch_file = body.pop("patch_from", None), body.pop("patch_file", None)
    del body["format"]
    for name in names if patch_file is None else [*names, patch_file]:
        if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
            raise InvalidArgumentError(f"a public manifest names {name!r}: not a file beside it")
    if (patch_file is None) != (patch_from is None) or not (patch_from is None or _is_version(patch_from)):
        raise InvalidArgumentError(f"a public manifest names a patch from {patch_from!r}: not a version")
    patch = None if patch_file is None else (patch_from, patch_file)
    return from_answer(Manifest, body), names[0], names[1], patch


def _is_version(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
