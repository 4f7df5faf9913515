"""mosslite: an embedded, SQLite-backed, local-first search store.

Import everything public from here; submodules are internal.
"""

from . import errors
from .client import MossClient, SyncMossClient
from .embeddings import Embedder, get_embedder, model_ids
from .index.builder import BuildReport, build_version
from .index.format import FORMAT_VERSION, IndexMeta
from .index.reader import IndexReader
from .types import (
    DEFAULT_ALPHA,
    IndexInfo,
    Job,
    JobPhase,
    JobStatus,
    Manifest,
    MutationResult,
    DEFAULT_MODEL_ID,
    DEFAULT_TOP_K,
    DocumentInfo,
    MutationOptions,
    QueryOptions,
    QueryResultDocumentInfo,
    SearchResult,
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
    "IndexInfo",
    "IndexMeta",
    "IndexReader",
    "Job",
    "JobPhase",
    "JobStatus",
    "Manifest",
    "MossClient",
    "MutationOptions",
    "MutationResult",
    "QueryOptions",
    "QueryResultDocumentInfo",
    "SearchResult",
    "SyncMossClient",
    "Version",
    "__version__",
    "build_version",
    "errors",
    "get_embedder",
    "model_ids",
]
