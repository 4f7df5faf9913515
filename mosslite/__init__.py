"""mosslite: an embedded, SQLite-backed, local-first search store.

Import everything public from here; submodules are internal.
"""

from . import errors
from .client import MossClient, SyncMossClient
from .chunking import chunk_document, chunk_markdown, chunk_text
from .docfiles import read_docs
from .embeddings import Embedder, get_embedder, model_ids
from .folders import FolderMirror, MirrorResult
from .index.builder import BuildReport, build_version
from .index.format import FORMAT_VERSION, IndexMeta
from .index.reader import IndexReader
from .session import Session
from .types import (
    DEFAULT_ALPHA,
    DEFAULT_MODEL_ID,
    DEFAULT_TOP_K,
    DocumentInfo,
    IndexInfo,
    Job,
    JobPhase,
    JobStatus,
    LoadedIndexInfo,
    LoadIndexesResult,
    Manifest,
    MutationOptions,
    MutationResult,
    PushIndexResult,
    QueryOptions,
    QueryResultDocumentInfo,
    SearchResult,
    SwapEvent,
    Version,
)

__version__ = "0.1.0"

__all__ = [
    "BuildReport",
    "DEFAULT_ALPHA",
    "DEFAULT_MODEL_ID",
    "DEFAULT_TOP_K",
    "DocumentInfo",
    "Embedder",
    "FORMAT_VERSION",
    "FolderMirror",
    "IndexInfo",
    "IndexMeta",
    "IndexReader",
    "Job",
    "JobPhase",
    "JobStatus",
    "LoadIndexesResult",
    "LoadedIndexInfo",
    "Manifest",
    "MirrorResult",
    "MossClient",
    "MutationOptions",
    "MutationResult",
    "PushIndexResult",
    "QueryOptions",
    "QueryResultDocumentInfo",
    "SearchResult",
    "Session",
    "SwapEvent",
    "SyncMossClient",
    "Version",
    "__version__",
    "build_version",
    "chunk_document",
    "chunk_markdown",
    "chunk_text",
    "errors",
    "get_embedder",
    "model_ids",
    "read_docs",
]
