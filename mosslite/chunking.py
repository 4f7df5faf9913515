"""Splitting long texts into overlapping chunks, each one document.

A document is embedded as one vector, so a long text blurs into one average
meaning and a good passage in it is hard to find; documents are also limited
to 256 KiB. Chunks of a few hundred words, overlapping a little so a sentence
cut at a boundary is still whole in one of them, search better. Chunks never
cut a word when a boundary (paragraph, line, sentence end, space) is in reach,
and markdown chunks start at headings and carry their heading path, so a chunk
about "Refunds" under "# Billing" still says so. Example::

    from mosslite import DocumentInfo, chunk_document

    docs = chunk_document(DocumentInfo(id="guide.md", text=long_text), markdown=True)
    # -> [DocumentInfo(id="guide.md#0", metadata={"parent_id": "guide.md"}, ...), ...]
"""

from __future__ import annotations

import re
from dataclasses import replace

from .errors import InvalidArgumentError, InvalidDocumentError
from .types import DocumentInfo

#: Characters per chunk (about 200 English words) and shared between neighbours.
DEFAULT_CHUNK_SIZE = 1200
DEFAULT_CHUNK_OVERLAP = 150
#: The metadata field naming the document a chunk was cut from.
PARENT_ID_FIELD = "parent_id"

# Preferred places to cut, best first: a blank line, a line end, a sentence end, a space.
_BOUNDARIES = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"[.!?;:]\s"), re.compile(r"\s"))
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\r?\n)+")


def _check(chunk_size: int, overlap: int | None) -> int:
    """Validate the sizes; returns the overlap (None: the default, at most a quarter chunk)."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InvalidArgumentError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if overlap is None:
        return min(DEFAULT_CHUNK_OVERLAP, chunk_size // 4)
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < chunk_size:
        raise InvalidArgumentError(f"overlap must be an integer from 0 to chunk_size - 1, got {overlap!r}")
    return overlap


def _cut(text: str, start: int, limit: int) -> int:
    """Where the chunk starting at ``start`` ends: the best boundary in the second half
    of the window, else the hard limit."""
    if limit >= len(text):
        return len(text)
    floor = start + (limit - start) // 2
    for pattern in _BOUNDARIES:
        ends = [m.end() for m in pattern.finditer(text, floor, limit)]
        if ends:
            return ends[-1]
    return limit


def _start_after(text: str, position: int, end: int) -> int:
    """Move a chunk start forward to a word start, so overlaps do not begin mid-word."""
    if position <= 0 or text[position - 1].isspace():
        return position
    match = re.compile(r"\s").search(text, position, end)
    return match.end() if match else position


def chunk_text(text: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE, overlap: int | None = None) -> list[str]:
    """Split ``text`` into chunks of at most ``chunk_size`` characters; each chunk
    repeats about the last ``overlap`` characters of the previous one (default:
    DEFAULT_CHUNK_OVERLAP, at most a quarter of ``chunk_size``). A text that
    fits is returned whole; blank chunks are dropped. Example::

        chunk_text("word " * 1000, chunk_size=500, overlap=50)   # -> 11 strings
    """
    overlap = _check(chunk_size, overlap)
    if not text.strip():
        return []
    if len(text) <= chunk_size:
        return [text.strip()]
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = _cut(text, start, min(start + chunk_size, len(text)))
        piece = text[start:end].strip()
        if piece:
            chunks.append(piece)
        if end >= len(text):
            break
        start = max(_start_after(text, end - overlap, end), start + 1)
    return chunks


def _sections(text: str) -> list[tuple[list[str], str, str]]:
    """Markdown split at headings (outside code fences): (heading path, heading line,
    body). Text before the first heading has an empty path and heading line."""
    sections: list[tuple[list[str], str, str]] = []
    path: list[tuple[int, str]] = []
    heading_line = ""
    lines: list[str] = []
    in_fence = False
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line.rstrip("\n"))
        if heading:
            if heading_line or "".join(lines).strip():
                sections.append(([h for _, h in path], heading_line, "".join(lines)))
            level = len(heading.group(1))
            path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, line.strip())]
            heading_line, lines = line, []
        else:
            lines.append(line)
    if heading_line or "".join(lines).strip():
        sections.append(([h for _, h in path], heading_line, "".join(lines)))
    return sections


def chunk_markdown(
    text: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE, overlap: int | None = None
) -> list[str]:
    """Split markdown at its headings (``#`` ... ``######``, not inside code fences).

    Every chunk starts with the heading path of the section it opens with
    (``# Guide > ## Refunds``, in place of that section's own heading line), so
    each one, not only a section's first, says where it belongs. Neighbouring
    small sections share a chunk while they fit (a later one keeps its own
    heading line); a section longer than ``chunk_size`` is cut by ``chunk_text``
    and every piece starts with its path. A heading with no text of its own
    makes no chunk when the next section lies under it: that one's path names
    it. Example::

        chunk_markdown("# A\\n\\nintro\\n\\n## B\\n\\ndetails", chunk_size=20)
        # -> ["# A\\n\\nintro", "# A > ## B\\n\\ndetails"]
    """
    overlap = _check(chunk_size, overlap)
    if len(text) <= chunk_size:
        return [text.strip()] if text.strip() else []
    chunks: list[str] = []
    pending, pending_has_text = "", False
    pending_path: list[str] = []
    for path, heading, body in _sections(text):
        if pending and len(pending) + len(heading) + len(body) <= chunk_size:
            pending += heading + body
            pending_path, pending_has_text = path, pending_has_text or bool(body.strip())
            continue
        # Headings alone are not worth a chunk when this section's path repeats them.
        if pending.strip() and (pending_has_text or path[: len(pending_path)] != pending_path):
            chunks.append(pending.strip())
        breadcrumb = " > ".join(path)
        opening = f"{breadcrumb}\n\n{_LEADING_BLANK_LINES.sub('', body)}" if breadcrumb else body
        pending, pending_path, pending_has_text = "", path, bool(body.strip())
        if len(opening) <= chunk_size:
            pending = opening
            continue
        room = chunk_size - len(breadcrumb) - 2 if breadcrumb else chunk_size
        room = max(room, overlap + 1, chunk_size // 2)
        pieces = chunk_text(body, chunk_size=room, overlap=min(overlap, room - 1))
        chunks.extend(f"{breadcrumb}\n\n{piece}" if breadcrumb else piece for piece in pieces)
    if pending.strip():
        chunks.append(pending.strip())
    return chunks


def chunk_document(
    doc: DocumentInfo,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overlap: int | None = None,
    markdown: bool = False,
) -> list[DocumentInfo]:
    """``doc`` as the documents to index: itself if it fits in one chunk, else one
    document per chunk, with id ``{doc.id}#{n}`` (n from 0), ``doc``'s metadata plus
    ``parent_id`` = ``doc.id``, and its payload. Pass the result to ``add_docs``. Example::

        await client.add_docs("guides", chunk_document(doc, chunk_size=800, markdown=True))
    """
    overlap = _check(chunk_size, overlap)
    if len(doc.text) <= chunk_size:
        return [doc]
    if doc.embedding is not None:
        raise InvalidDocumentError(
            f"document {doc.id!r} carries its own embedding and cannot be chunked",
            id=doc.id,
            hint="chunk the text first and embed each chunk",
        )
    split = chunk_markdown if markdown else chunk_text
    texts = split(doc.text, chunk_size=chunk_size, overlap=overlap)
    if len(texts) == 1:
        return [replace(doc, text=texts[0])]
    metadata = {**(doc.metadata or {}), PARENT_ID_FIELD: doc.id}
    return [
        DocumentInfo(id=f"{doc.id}#{n}", text=text, metadata=metadata, payload=doc.payload)
        for n, text in enumerate(texts)
    ]


__all__ = [
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_SIZE",
    "PARENT_ID_FIELD",
    "chunk_document",
    "chunk_markdown",
    "chunk_text",
]
