"""FolderMirror: keep an index in step with a folder of files.

Each file becomes one or more documents whose ids derive from its path
(relative, with ``/``): a text or markdown file is ``{path}`` when it fits in
one chunk and ``{path}#{n}`` chunks otherwise (``parent_id`` = path, see
``mosslite.chunking``); a JSON, JSON Lines or CSV file (``mosslite.docfiles``)
gives ``{path}#{id}`` per document. Every document carries the metadata field
``path``, which is how the mirror knows which documents it owns: documents
without it (added by other means) are never touched.

Invariants:
- What to change is decided by comparing the folder with the service's own
  documents (``get_docs``), not with a local state file: the service is the
  truth, so a mirror run from another machine, after a lost state file or after
  someone edited the index by hand still converges, and nothing is written into
  the folder. The price is one ``get_docs`` per pass; while watching, only the
  changed files' documents are fetched (a ``$in`` filter on ``path``).
- A pass sends one upsert job and one delete job at most, and only documents
  whose text, metadata or payload differ: an unchanged folder sends nothing.
- A file that cannot be read or parsed is reported in ``errors`` and its
  documents on the service are left as they are (not deleted), so a half-saved
  JSON file never wipes what was indexed from it.
- While watching, each pass waits for its jobs to complete before the next
  one, so the next comparison sees what the previous pass published.

Example::

    mirror = FolderMirror(client, "notes/", "notes", model_id="hashed-ngrams-256")
    result = await mirror.sync()              # one pass
    await mirror.watch(stop_event)            # pass after pass, on every change
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chunking import DEFAULT_CHUNK_SIZE, chunk_document
from .docfiles import read_docs
from .errors import IndexNotFoundError, InvalidArgumentError, MossliteError
from .types import DocumentInfo, MutationOptions

if TYPE_CHECKING:
    from .client import MossClient

DEFAULT_EXTENSIONS = ("md", "txt", "json", "jsonl")
MARKDOWN_EXTENSIONS = frozenset({"md", "markdown"})
DOCUMENT_EXTENSIONS = frozenset({"json", "jsonl", "ndjson", "csv"})
#: The metadata field holding a document's source file, relative to the folder.
PATH_FIELD = "path"
#: How long the watcher gathers file events into one pass.
DEFAULT_DEBOUNCE_MS = 300
#: How often the watcher wakes when nothing happens (first pass, stop checks).
WATCH_TICK_MS = 200


@dataclass(frozen=True, kw_only=True)
class MirrorPlan:
    """What one pass will send."""

    upserts: list[DocumentInfo]
    deletes: list[str]
    unchanged: int


@dataclass(frozen=True, kw_only=True)
class MirrorResult:
    """What one pass did. ``job_ids`` are the jobs it started (upsert, then delete).
    ``upserted`` and ``deleted`` count documents; ``upserted_files`` and
    ``deleted_files`` name the files they came from, with how many of each file's
    documents (a file that lost one chunk and changed another is in both), and
    ``errors`` the files skipped, with why (issue #12: a pass said only counts)."""

    index_name: str
    files: int
    upserted: int
    deleted: int
    unchanged: int
    created: bool = False
    job_ids: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    upserted_files: dict[str, int] = field(default_factory=dict)
    deleted_files: dict[str, int] = field(default_factory=dict)


def plan_mirror(desired: Iterable[DocumentInfo], existing: Iterable[DocumentInfo]) -> MirrorPlan:
    """Compare the documents the files give with those on the service (pure)."""
    have = {doc.id: doc for doc in existing}
    upserts, unchanged, wanted = [], 0, set()
    for doc in desired:
        wanted.add(doc.id)
        old = have.get(doc.id)
        same = old is not None and (old.text, old.metadata or {}, old.payload) == (
            doc.text,
            doc.metadata or {},
            doc.payload,
        )
        if same:
            unchanged += 1
        else:
            upserts.append(doc)
    deletes = sorted(doc_id for doc_id in have if doc_id not in wanted)
    return MirrorPlan(upserts=upserts, deletes=deletes, unchanged=unchanged)


def per_file(docs: Iterable[DocumentInfo]) -> dict[str, int]:
    """How many of ``docs`` each file gave, by path (sorted)."""
    counts: dict[str, int] = {}
    for doc in docs:
        path = str((doc.metadata or {}).get(PATH_FIELD, ""))
        counts[path] = counts.get(path, 0) + 1
    return dict(sorted(counts.items()))


def normalize_extensions(extensions: Iterable[str]) -> frozenset[str]:
    exts = frozenset(e.strip().lower().lstrip(".") for e in extensions if e.strip())
    if not exts:
        raise InvalidArgumentError("give at least one file extension, e.g. md,txt")
    return exts


def file_docs(
    root: Path, path: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE, overlap: int | None = None
) -> list[DocumentInfo]:
    """The documents for one file of the folder (see the module docstring for ids)."""
    rel = path.relative_to(root).as_posix()
    ext = path.suffix.lower().lstrip(".")
    if ext in DOCUMENT_EXTENSIONS:
        docs = []
        for doc in read_docs(path):
            metadata = {**(doc.metadata or {}), PATH_FIELD: rel}
            named = DocumentInfo(
                id=f"{rel}#{doc.id}", text=doc.text, metadata=metadata, payload=doc.payload, embedding=doc.embedding
            )
            docs.extend(chunk_document(named, chunk_size=chunk_size, overlap=overlap))
        return docs
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(f"{rel}: not UTF-8 text: {exc.reason}", path=rel) from exc
    if not text.strip():
        return []
    doc = DocumentInfo(id=rel, text=text, metadata={PATH_FIELD: rel})
    return chunk_document(doc, chunk_size=chunk_size, overlap=overlap, markdown=ext in MARKDOWN_EXTENSIONS)


def _hidden(rel_parts: Sequence[str]) -> bool:
    return any(part.startswith(".") for part in rel_parts)


class FolderMirror:
    """Keeps index ``index_name`` in step with the files under ``root``
    (invariants in the module docstring)."""

    def __init__(
        self,
        client: MossClient,
        root: str | Path,
        index_name: str,
        *,
        extensions: Iterable[str] = DEFAULT_EXTENSIONS,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        overlap: int | None = None,
        model_id: str | None = None,
    ) -> None:
        self.client = client
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"no such folder: {root}")
        self.index_name = index_name
        self.extensions = normalize_extensions(extensions)
        self.chunk_size, self.overlap, self.model_id = chunk_size, overlap, model_id

    # -- the folder -------------------------------------------------------------

    def wanted(self, path: Path) -> bool:
        """True for a file the mirror indexes (right extension, no hidden part)."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return False
        return path.suffix.lower().lstrip(".") in self.extensions and not _hidden(rel.parts)

    def files(self) -> list[Path]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found.extend(p for name in sorted(filenames) if self.wanted(p := Path(dirpath) / name) and p.is_file())
        return found

    def read(self, paths: Iterable[Path]) -> tuple[list[DocumentInfo], dict[str, str]]:
        """Documents of ``paths`` (missing files give none), and the files that failed."""
        docs: list[DocumentInfo] = []
        errors: dict[str, str] = {}
        for path in paths:
            if not path.is_file():
                continue
            try:
                docs.extend(file_docs(self.root, path, chunk_size=self.chunk_size, overlap=self.overlap))
            except (MossliteError, OSError) as exc:
                errors[path.relative_to(self.root).as_posix()] = str(exc)
        return docs, errors

    # -- one pass -------------------------------------------------------------------

    async def sync(self, paths: Iterable[str | Path] | None = None) -> MirrorResult:
        """One pass over the whole folder, or only over ``paths`` (files that changed,
        were created or were deleted). Creates the index if it does not exist."""
        if paths is None:
            files = self.files()
            scope: list[str] | None = None
        else:
            files = [p for p in (Path(x) if Path(x).is_absolute() else self.root / x for x in paths) if self.wanted(p)]
            scope = sorted({p.relative_to(self.root).as_posix() for p in files})
            if not scope:
                return MirrorResult(index_name=self.index_name, files=0, upserted=0, deleted=0, unchanged=0)
        desired, errors = self.read(files)
        try:
            await self.client.get_index(self.index_name)
        except IndexNotFoundError:
            job = await self.client.create_index(self.index_name, desired, self.model_id)
            return MirrorResult(
                index_name=self.index_name, files=len(files), upserted=len(desired), deleted=0, unchanged=0,
                created=True, job_ids=[job.job_id], errors=errors, upserted_files=per_file(desired),
            )  # fmt: skip
        existing = await self._owned_docs(scope)
        failed = set(errors)
        existing = [d for d in existing if (d.metadata or {}).get(PATH_FIELD) not in failed]
        plan = plan_mirror(desired, existing)
        job_ids = []
        if plan.upserts:
            job_ids.append((await self.client.add_docs(self.index_name, plan.upserts, MutationOptions(upsert=True))).job_id)
        if plan.deletes:
            job_ids.append((await self.client.delete_docs(self.index_name, plan.deletes)).job_id)
        deleted = set(plan.deletes)
        return MirrorResult(
            index_name=self.index_name, files=len(files), upserted=len(plan.upserts), deleted=len(plan.deletes),
            unchanged=plan.unchanged, job_ids=job_ids, errors=errors, upserted_files=per_file(plan.upserts),
            deleted_files=per_file(d for d in existing if d.id in deleted),
        )  # fmt: skip

    async def _owned_docs(self, scope: list[str] | None) -> list[DocumentInfo]:
        if scope is None:
            docs = await self.client.get_docs(self.index_name, include_embedding=False)
        else:
            where = {"field": PATH_FIELD, "condition": {"$in": scope}}
            docs = await self.client.get_docs(self.index_name, filter=where, include_embedding=False)
        return [d for d in docs if (d.metadata or {}).get(PATH_FIELD)]

    # -- watching ------------------------------------------------------------------------

    async def watch(
        self,
        stop_event: asyncio.Event | None = None,
        on_sync: Callable[[MirrorResult], Any] | None = None,
        *,
        debounce_ms: int = DEFAULT_DEBOUNCE_MS,
    ) -> None:
        """A full pass, then one pass per batch of file events (watchfiles), each
        waiting for its jobs, until ``stop_event`` is set or the task is cancelled.
        ``on_sync`` sees every pass that changed something."""
        import watchfiles

        async def run(paths: list[str] | None) -> None:
            result = await self.sync(paths)
            for job_id in result.job_ids:
                await self.client.wait_for_job(job_id)
            if on_sync is not None and (result.upserted or result.deleted or result.errors or result.created):
                on_sync(result)

        # The full pass runs once the watcher is listening (its first yield, at the latest
        # after one timeout), so a change made during that pass is not missed.
        first = True
        async for changes in watchfiles.awatch(
            self.root,
            stop_event=stop_event,
            debounce=debounce_ms,
            step=50,
            watch_filter=None,
            rust_timeout=WATCH_TICK_MS,
            yield_on_timeout=True,
        ):
            if first:
                first = False
                await run(None)
                continue
            changed = [Path(path) for _, path in changes]
            # A folder that appears, goes or is renamed reports only itself (and files made in
            # a new folder before it is watched report nothing): that needs a full pass.
            full = any(p.is_dir() or (not p.exists() and p.suffix == "") for p in changed)
            wanted = [str(p) for p in changed if self.wanted(p)]
            if full or wanted:
                await run(None if full else wanted)


__all__ = [
    "DEFAULT_EXTENSIONS",
    "FolderMirror",
    "MirrorPlan",
    "MirrorResult",
    "file_docs",
    "plan_mirror",
]
