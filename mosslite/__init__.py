"""mosslite: an embedded, SQLite-backed, local-first search store.

Import everything public from here; submodules are internal. Names load on first
use (PEP 562): ``import mosslite`` costs a few milliseconds, and a script that
only queries a file never loads the service, the builder or a model runtime.
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING

from . import errors

__version__ = "0.1.0"

#: Each public name, and the module that defines it.
_EXPORTS = {
    "BuildReport": ".index.builder",
    "DEFAULT_ALPHA": ".types",
    "DEFAULT_MODEL_ID": ".types",
    "DEFAULT_TOP_K": ".types",
    "DocsPage": ".types",
    "DocumentInfo": ".types",
    "Embedder": ".embeddings",
    "FORMAT_VERSION": ".index.format",
    "FolderMirror": ".folder_mirror",
    "IndexInfo": ".types",
    "IndexMeta": ".index.format",
    "IndexReader": ".index.reader",
    "Job": ".types",
    "JobPhase": ".types",
    "JobStatus": ".types",
    "LoadIndexesResult": ".types",
    "LoadedIndexInfo": ".types",
    "Manifest": ".types",
    "MirrorResult": ".folder_mirror",
    "MossClient": ".client",
    "MutationOptions": ".types",
    "MutationResult": ".types",
    "PushIndexResult": ".types",
    "QueryOptions": ".types",
    "QueryResultDocumentInfo": ".types",
    "SearchResult": ".types",
    "Session": ".session",
    "SwapEvent": ".types",
    "SyncMossClient": ".client",
    "Version": ".types",
    "VersionInfo": ".types",
    "build_version": ".index.builder",
    "chunk_document": ".chunking",
    "chunk_markdown": ".chunking",
    "chunk_text": ".chunking",
    "get_embedder": ".embeddings",
    "model_ids": ".embeddings",
    "read_docs": ".docfiles",
}

__all__ = sorted([*_EXPORTS, "__version__", "errors"])

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads them
    from .chunking import chunk_document, chunk_markdown, chunk_text
    from .client import MossClient, SyncMossClient
    from .docfiles import read_docs
    from .embeddings import Embedder, get_embedder, model_ids
    from .folder_mirror import FolderMirror, MirrorResult
    from .index.builder import BuildReport, build_version
    from .index.format import FORMAT_VERSION, IndexMeta
    from .index.reader import IndexReader
    from .session import Session
    from .types import (
        DEFAULT_ALPHA,
        DEFAULT_MODEL_ID,
        DEFAULT_TOP_K,
        DocsPage,
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
        VersionInfo,
    )
del TYPE_CHECKING  # (named so that tools see the block above as type checking only)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mosslite' has no attribute {name!r}")
    value = getattr(_import_module(module, __name__), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
