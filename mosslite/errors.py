"""Every error mosslite raises, grouped by what the caller can do about it.

    MossliteError                    base: catch this to catch everything of ours
    ├── InvalidArgumentError         the request is wrong; fix it and retry
    │   ├── InvalidDocumentError     a document (id, text, metadata, embedding) is malformed
    │   ├── InvalidFilterError       a metadata filter is malformed or uses an unknown operator
    │   ├── InvalidNameError         an index or session name breaks the naming rule
    │   ├── DimensionMismatchError   an embedding's length is not the index's dimension
    │   └── PayloadTooLargeError     a document or request is over the size limit
    ├── NotFoundError                the thing does not exist (or is not yours to see)
    │   ├── IndexNotFoundError
    │   ├── ProjectNotFoundError     the service has no such project: create a key for it first
    │   ├── IndexNotLoadedError      the index exists, but call load_index() first
    │   ├── JobNotFoundError
    │   ├── ModelNotFoundError       no embedder is registered under that model id
    │   └── PatchUnavailableError    no page patch from the version you hold; download the whole file
    ├── UnauthorizedError            the project key is missing or wrong
    ├── ConflictError                the request contradicts stored state (existing id without upsert, ...)
    ├── UnavailableError             the service cannot be reached; retrying later may work
    │   └── TimeoutError_            a wait ran out of time (named so it does not shadow the builtin)
    ├── IntegrityError               stored bytes are not what they claim to be
    │   ├── CorruptIndexError        not a mosslite index, or damaged
    │   ├── UnsupportedFormatError   a newer (or unknown) index format version
    │   └── ChecksumMismatchError    a download's sha256 differs from the manifest
    ├── ClosedError                  an object was used after close()
    └── JobFailedError               a mutation job ended in `failed`

Each error carries the fields that locate the problem (``index``, ``path``,
``version`` ...) and a ``hint`` that says what to do next, so a message read in
a log is actionable without the source. Foreign exceptions (apsw, OS, httpx) are
translated at their boundary and chained with ``from``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ChecksumMismatchError",
    "ClosedError",
    "ConflictError",
    "CorruptIndexError",
    "DimensionMismatchError",
    "IndexNotFoundError",
    "IndexNotLoadedError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidDocumentError",
    "InvalidFilterError",
    "InvalidNameError",
    "JobFailedError",
    "JobNotFoundError",
    "ModelNotFoundError",
    "MossliteError",
    "NotFoundError",
    "PatchUnavailableError",
    "PayloadTooLargeError",
    "ProjectNotFoundError",
    "TimeoutError_",
    "UnauthorizedError",
    "UnavailableError",
    "UnsupportedFormatError",
]


class MossliteError(Exception):
    """Base of the tree. ``code`` is the stable name used on the wire."""

    code = "error"
    default_hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None, **fields: Any) -> None:
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of an error on the wire; ``from_dict`` is its inverse."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        extra = {k: v for k, v in self.fields.items() if isinstance(v, (str, int, float, bool))}
        if extra:
            body["fields"] = extra
        return body


class InvalidArgumentError(MossliteError):
    code = "invalid_argument"


class InvalidDocumentError(InvalidArgumentError):
    code = "invalid_document"


class InvalidFilterError(InvalidArgumentError):
    code = "invalid_filter"
    default_hint = 'filters look like {"field": "f", "condition": {"$eq": "v"}}, combined with {"$and": [...]} or {"$or": [...]}'


class InvalidNameError(InvalidArgumentError):
    code = "invalid_name"


class DimensionMismatchError(InvalidArgumentError):
    code = "dimension_mismatch"


class PayloadTooLargeError(InvalidArgumentError):
    code = "payload_too_large"


class NotFoundError(MossliteError):
    code = "not_found"


class IndexNotFoundError(NotFoundError):
    code = "index_not_found"

    @classmethod
    def version_gone(cls, index: str, version: int) -> IndexNotFoundError:
        """For a version the catalog named whose file has since been deleted (the
        service keeps only the newest few)."""
        return cls(
            f"index {index!r} no longer has version {version}",
            index=index,
            version=version,
            hint="a newer version replaced it: fetch the manifest again",
        )


class ProjectNotFoundError(NotFoundError):
    code = "project_not_found"
    default_hint = "a project exists once it has a key: Service.create_key(project) or `mosslite keys create`"


class IndexNotLoadedError(NotFoundError):
    code = "index_not_loaded"
    default_hint = "call load_index(name) before querying it locally"


class JobNotFoundError(NotFoundError):
    code = "job_not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class PatchUnavailableError(NotFoundError):
    code = "patch_unavailable"
    default_hint = "download the whole version"


class UnauthorizedError(MossliteError):
    code = "unauthorized"
    default_hint = "check the project id and key (mosslite keys create makes a new key)"


class ConflictError(MossliteError):
    code = "conflict"


class UnavailableError(MossliteError):
    code = "unavailable"
    default_hint = "the service could not be reached; retry later"


class TimeoutError_(UnavailableError):
    code = "timeout"


class IntegrityError(MossliteError):
    code = "integrity"


class CorruptIndexError(IntegrityError):
    code = "corrupt_index"


class UnsupportedFormatError(IntegrityError):
    code = "unsupported_format"
    default_hint = "upgrade mosslite to read this index file"


class ChecksumMismatchError(IntegrityError):
    code = "checksum_mismatch"


class ClosedError(MossliteError):
    code = "closed"


class JobFailedError(MossliteError):
    code = "job_failed"


def _all_error_classes() -> dict[str, type[MossliteError]]:
    found: dict[str, type[MossliteError]] = {}
    stack: list[type[MossliteError]] = [MossliteError]
    while stack:
        cls = stack.pop()
        found[cls.code] = cls
        stack.extend(cls.__subclasses__())
    return found


def from_dict(body: dict[str, Any]) -> MossliteError:
    """Rebuild an error sent by ``to_dict`` (the HTTP transport uses this)."""
    cls = _all_error_classes().get(str(body.get("code")), MossliteError)
    return cls(str(body.get("message", "")), hint=body.get("hint"), **(body.get("fields") or {}))
