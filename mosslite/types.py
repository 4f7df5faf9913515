"""Plain records shared by every layer, and the defaults in one place.

Records validate themselves on construction, so a malformed document or option
fails where the caller made it, with a typed error, long before it reaches
storage (issue #2: bad input never corrupts stored data). The rules of single
values (names, ids, storable text, vectors) are in ``validation.py``, which this
module builds on; the rules of a batch of documents (``iter_docs``,
``check_batch``) are here, beside the record they test for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from .errors import InvalidArgumentError, InvalidDocumentError, PayloadTooLargeError
from .filters import compile_filter
from .validation import check_doc_id, check_embedding, check_query_embedding, storable_utf8

DEFAULT_TOP_K = 5
DEFAULT_ALPHA = 0.8
MAX_TOP_K = 1000
DEFAULT_MODEL_ID = "moss-minilm"
# Documents larger than this are refused: an index is hydrated into memory on
# every device that loads it, so one runaway document should not bloat them all.
MAX_DOC_TEXT_BYTES = 256 * 1024
MAX_PAYLOAD_BYTES = 256 * 1024
# Largest HTTP request body the server reads (a batch of documents); larger ones get 413.
MAX_REQUEST_BYTES = 64 * 1024 * 1024
# The limits of names and ids (MAX_NAME_CHARS, MAX_ID_CHARS) sit beside their rules, in validation.py.
# A page of get_docs: this many documents at most, and it ends early once it holds
# about PAGE_BYTES, so no request makes the service hold a whole index (issue #8).
DEFAULT_PAGE_DOCS = 1000
MAX_PAGE_DOCS = 10_000
PAGE_BYTES = 8 * 1024 * 1024

class Version(int):
    """An index version number: 1, 2, 3 ... Version 0 means "none yet".

    Files are named with the zero-padded form so ``ls`` order is version order.
    """

    WIDTH = 10
    SUFFIX = ".sqlite"
    MAX = 10**WIDTH - 1  # what the file name can hold (and well inside SQLite's int64)

    def __new__(cls, value: int) -> Version:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= cls.MAX:
            raise InvalidArgumentError(f"a version is an integer from 0 to {cls.MAX}, got {value!r}")
        return super().__new__(cls, value)

    def filename(self) -> str:
        return f"{int(self):0{self.WIDTH}d}{self.SUFFIX}"

    @classmethod
    def parse_filename(cls, name: str) -> Version:
        stem, dot, ext = name.partition(".")
        # ASCII digits only: str.isdigit also accepts '²' (int() refuses it) and other
        # scripts' digits (int() reads them, so two names would be one version). Issue #8.
        if "." + ext != cls.SUFFIX or len(stem) != cls.WIDTH or not (stem.isascii() and stem.isdigit()):
            raise InvalidArgumentError(
                f"{name!r} is not a version file name: expected {cls.WIDTH} digits and {cls.SUFFIX}"
            )
        return cls(int(stem))

    def next(self) -> Version:
        return Version(int(self) + 1)


@dataclass(frozen=True, kw_only=True)
class DocumentInfo:
    """A document to index. ``metadata`` values are strings (as in Moss);
    ``embedding`` is only needed with the ``custom`` model."""

    id: str
    text: str
    metadata: Mapping[str, str] | None = None
    embedding: Sequence[float] | None = None
    payload: str | None = None

    def __post_init__(self) -> None:
        check_doc_id(self.id)
        if not isinstance(self.text, str):
            raise InvalidDocumentError(f"document {self.id!r}: text must be a string", id=self.id)
        if len(storable_utf8(self.text, "text", self.id)) > MAX_DOC_TEXT_BYTES:
            raise PayloadTooLargeError(
                f"document {self.id!r}: text is over {MAX_DOC_TEXT_BYTES} bytes",
                id=self.id,
                hint="split long texts into chunks",
            )
        if self.metadata is not None:
            if not isinstance(self.metadata, Mapping):
                raise InvalidDocumentError(f"document {self.id!r}: metadata must be a mapping of strings", id=self.id)
            for key, value in self.metadata.items():
                if not isinstance(key, str) or not isinstance(value, str):
                    raise InvalidDocumentError(
                        f"document {self.id!r}: metadata values must be strings, "
                        f"got {type(value).__name__} for {key!r}",
                        id=self.id,
                        hint='store numbers as strings, e.g. {"price": "9.99"}',
                    )
                storable_utf8(key + value, f"metadata {key!r}", self.id)
            object.__setattr__(self, "metadata", dict(self.metadata))
        if self.payload is not None:
            if not isinstance(self.payload, str):
                raise InvalidDocumentError(f"document {self.id!r}: payload must be a string or None", id=self.id)
            if len(storable_utf8(self.payload, "payload", self.id)) > MAX_PAYLOAD_BYTES:
                    raise PayloadTooLargeError(f"document {self.id!r}: payload is over {MAX_PAYLOAD_BYTES} bytes", id=self.id)
        if self.embedding is not None:
            values = check_embedding(self.embedding, f"document {self.id!r}: embedding", id=self.id)
            object.__setattr__(self, "embedding", values)


def iter_docs(docs: object) -> Iterator[DocumentInfo]:
    """``docs`` (a list, or any iterable: a generator streams) one DocumentInfo at a time.
    Passing one document, a string, a dict or None fails here, at once, typed; an item
    that is no DocumentInfo fails when it is reached."""
    if isinstance(docs, (DocumentInfo, str, bytes, Mapping)) or not isinstance(docs, Iterable):
        raise InvalidDocumentError(f"docs must be a list of DocumentInfo, got {type(docs).__name__}")
    return _checked(docs)


def _checked(docs: Iterable[object]) -> Iterator[DocumentInfo]:
    for doc in docs:
        if not isinstance(doc, DocumentInfo):
            raise InvalidDocumentError(f"expected DocumentInfo, got {type(doc).__name__}")
        yield doc


def check_batch(docs: Iterable[DocumentInfo]) -> list[DocumentInfo]:
    """``docs`` (any iterable of DocumentInfo) as a list, after the batch-level rules
    the records cannot check alone. Called where a batch enters (client, session),
    so a slip such as passing None or one document fails there, typed, and not deep
    in a worker."""
    docs = list(iter_docs(docs))
    seen: set[str] = set()
    for doc in docs:
        if doc.id in seen:
            raise InvalidDocumentError(f"duplicate document id {doc.id!r} in one batch", id=doc.id)
        seen.add(doc.id)
    return docs


@dataclass(frozen=True, kw_only=True)
class QueryOptions:
    """How to answer a query. ``alpha`` weighs semantic (1.0) against keyword (0.0)."""

    top_k: int = DEFAULT_TOP_K
    alpha: float = DEFAULT_ALPHA
    filter: Mapping[str, Any] | None = None
    embedding: Sequence[float] | None = None

    # The checked embedding as float32, so the reader does not convert the tuple back
    # (~20 us of the ~0.5 ms a vector query takes at 10k documents).
    _vector: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or not 1 <= self.top_k <= MAX_TOP_K:
            raise InvalidArgumentError(f"top_k must be an integer from 1 to {MAX_TOP_K}, got {self.top_k!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0.0 <= self.alpha <= 1.0:
            raise InvalidArgumentError(f"alpha must be a number from 0.0 to 1.0, got {self.alpha!r}")
        # A malformed filter fails here, where it was written, as an InvalidFilterError
        # (issue #8); the reader compiles it again (microseconds) against its columns.
        compile_filter(self.filter)
        if self.embedding is not None:
            values, vector = check_query_embedding(self.embedding)
            object.__setattr__(self, "embedding", values)
            object.__setattr__(self, "_vector", vector)

    @property
    def vector(self) -> np.ndarray | None:
        """``embedding`` as a float32 array (read-only use), or None."""
        return self._vector


@dataclass(frozen=True, kw_only=True)
class MutationOptions:
    """``upsert=True`` replaces documents whose id already exists; with False they are a conflict."""

    upsert: bool = True

    def __post_init__(self) -> None:
        # A truthy "no" or 0 must not pick the behaviour: only a bool does (issue #8).
        if not isinstance(self.upsert, bool):
            raise InvalidArgumentError(f"'options.upsert' must be true or false, got {self.upsert!r}")


Options = TypeVar("Options", QueryOptions, MutationOptions)


def options_or_default(options: Options | None, kind: type[Options]) -> Options:
    """``options``, or ``kind()`` for None. Anything else is a typed error: a dict
    (``{"top_k": 1}``) or a bare ``True`` for upsert are common slips, and they
    failed later as an AttributeError from inside the reader or the service."""
    if options is None:
        return kind()
    if not isinstance(options, kind):
        raise InvalidArgumentError(
            f"options must be a {kind.__name__}, got {type(options).__name__}",
            hint=f"pass {kind.__name__}(...)",
        )
    return options


@dataclass(frozen=True, kw_only=True)
class QueryResultDocumentInfo:
    id: str
    text: str
    metadata: dict[str, str] = field(default_factory=dict)
    score: float = 0.0
    payload: str | None = None
    index_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    docs: list[QueryResultDocumentInfo]
    query: str
    index_name: str | None = None
    time_taken_ms: float = 0.0


class JobStatus:
    """Job statuses, as in Moss: pending_upload -> uploading -> building -> completed | failed."""

    PENDING_UPLOAD = "pending_upload"
    UPLOADING = "uploading"
    BUILDING = "building"
    COMPLETED = "completed"
    FAILED = "failed"
    FINAL = frozenset({COMPLETED, FAILED})


class JobPhase:
    """What a building job is doing now (``Job.current_phase``)."""

    GENERATING_EMBEDDINGS = "generating_embeddings"
    BUILDING_INDEX = "building_index"
    UPLOADING = "uploading"
    PUBLISHING = "publishing"


@dataclass(frozen=True, kw_only=True)
class DocsPage:
    """One page of ``get_docs``; pass ``next_cursor`` back for the next (None: that was all)."""

    docs: list[DocumentInfo]
    next_cursor: str | None = None


@dataclass(frozen=True, kw_only=True)
class MutationResult:
    job_id: str
    index_name: str
    doc_count: int


@dataclass(frozen=True, kw_only=True)
class Job:
    job_id: str
    index_name: str
    kind: str
    status: str
    current_phase: str | None = None
    progress: float = 0.0
    error: str | None = None
    doc_count: int = 0
    version: int | None = None
    created_at: str = ""
    updated_at: str = ""
    completed_at: str | None = None

    @property
    def done(self) -> bool:
        return self.status in JobStatus.FINAL


@dataclass(frozen=True, kw_only=True)
class IndexInfo:
    name: str
    version: int
    status: str
    doc_count: int
    model: str
    dimension: int
    created_at: str
    updated_at: str
    #: Public read mode (``set_public``; issue #10): its newest versions and a manifest
    #: naming them are readable without a key, by anyone with the URL.
    public: bool = False
    #: Where devices poll that manifest, when the service knows its public URL.
    public_manifest: str | None = None


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What a client needs to fetch the newest published version of an index."""

    index_name: str
    version: int
    sha256: str
    size_bytes: int
    doc_count: int
    model_id: str
    dimension: int
    created_at: str


@dataclass(frozen=True, kw_only=True)
class DownloadLinks:
    """Where a client fetches a manifest's version straight from the object store
    (``mosslite serve --storage s3://...``; issue #10): presigned GET URLs of the
    version file and of its page map, each opening that one object only, until
    ``expires_at`` (Unix seconds). Sent in the manifest's answer as ``download``.
    ``patch_url``: the page patch from version ``patch_from`` (the one before) to this
    one, which the service stores at publish when one is worth it (else the link
    answers 404): a device holding ``patch_from`` fetches the change in one request
    (index/page_patch.py has its format)."""

    version_url: str
    pages_url: str
    expires_at: int
    patch_url: str | None = None
    patch_from: int | None = None


@dataclass(frozen=True, kw_only=True)
class VersionInfo:
    """One published version of an index, as ``list_versions`` reports it (newest first).
    ``kept``: whether the service still keeps its file; it keeps the newest
    DEFAULT_KEEP_VERSIONS (``mosslite serve --keep-versions``) and prunes older ones."""

    index_name: str
    version: int
    size_bytes: int
    doc_count: int
    model_id: str
    dimension: int
    sha256: str
    created_at: str
    kept: bool


#: How often a loaded index with auto_refresh asks for a newer version.
DEFAULT_POLLING_INTERVAL_S = 600.0
#: The same, for a process that serves a loaded index while it runs (the query shell,
#: ``mosslite mcp``, the LangChain and LlamaIndex stores): the embedded service's
#: versions arrive at once whatever it is, a server's within this.
DEFAULT_LIVE_POLLING_INTERVAL_S = 5.0
#: wait_for_job's pause between two job checks, and how long it waits in all.
DEFAULT_JOB_POLL_S = 0.25
DEFAULT_JOB_TIMEOUT_S = 600.0
#: Version files the service keeps per index (the newest ones); older files are deleted.
DEFAULT_KEEP_VERSIONS = 3
#: Page maps kept per index: a client up to this many versions behind still gets a patch.
DEFAULT_KEEP_PAGE_MAPS = 50
#: How long a manifest's download links (presigned URLs) work (``mosslite serve --link-lifetime``).
DEFAULT_LINK_LIFETIME_S = 900
#: The longest a CDN may answer a public manifest without asking the bucket again
#: (``mosslite serve --public-max-age``): a day.
MAX_MANIFEST_AGE_S = 86_400
#: Threads that run a service's jobs, shared by every index. Builds are CPU- and
#: IO-bound and already parallel where it counts (the embedder): more only slows each.
DEFAULT_JOB_WORKERS = 4


@dataclass(frozen=True, kw_only=True)
class SwapEvent:
    """Emitted on every hot swap of a loaded index."""

    index_name: str
    old_version: int
    new_version: int
    duration_ms: float
    #: Bytes fetched from the service for it: a page patch, the whole file, or 0 (already cached).
    downloaded_bytes: int = 0
    #: The cached version the new one was patched from; None when the whole file came down.
    patched_from: int | None = None


@dataclass(frozen=True, kw_only=True)
class LoadedIndexInfo:
    """What a client is serving locally for one index."""

    index_name: str
    version: int
    doc_count: int
    model_id: str
    path: str
    stale: bool
    auto_refresh: bool
    polling_interval_s: float


@dataclass(frozen=True, kw_only=True)
class LoadIndexesResult:
    loaded: list[str]
    failed: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class PushIndexResult:
    """What ``Session.push_index()`` handed to the service (issue #5).

    ``doc_count`` is the number of documents the diff changed (added, updated or
    deleted), as ``MutationResult.doc_count`` counts a mutation's documents.
    ``overwritten`` counts documents whose row on the service was not the one
    the session had last seen (another agent changed it meanwhile) and that this
    push replaced, last push wins; None until the job has applied the diff.
    ``job_id`` is "" when there was nothing to push.
    """

    job_id: str
    index_name: str
    doc_count: int
    status: str
    diff_id: str = ""
    overwritten: int | None = None
    version: int | None = None
