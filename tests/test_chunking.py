"""chunk_text, chunk_markdown, chunk_document."""

from __future__ import annotations

import pytest

from mosslite import DocumentInfo, chunk_document, chunk_markdown, chunk_text
from mosslite.errors import InvalidArgumentError, InvalidDocumentError

SENTENCES = " ".join(f"Sentence number {i} says something about refunds." for i in range(200))


def test_short_text_is_one_chunk_and_blank_text_none() -> None:
    assert chunk_text("  hello world \n") == ["hello world"]
    assert chunk_text(" \n\t") == []
    assert chunk_markdown("") == []


def test_chunks_respect_size_overlap_and_word_boundaries() -> None:
    chunks = chunk_text(SENTENCES, chunk_size=300, overlap=60)
    assert len(chunks) > 10
    assert all(len(c) <= 300 for c in chunks)
    words = set(SENTENCES.split())
    for chunk in chunks:
        assert set(chunk.split()) <= words, "a chunk cut a word"
        assert chunk.endswith(".")  # a sentence end was in reach every time
    for left, right in zip(chunks, chunks[1:]):
        assert right.split()[0] in left.split()[-12:], "neighbours overlap"
    # Nothing is lost: every sentence appears in some chunk.
    for i in range(200):
        assert any(f"number {i} says" in c for c in chunks)


def test_no_overlap_and_unbreakable_text() -> None:
    chunks = chunk_text("x" * 1000, chunk_size=300, overlap=0)
    assert chunks == ["x" * 300] * 3 + ["x" * 100]
    assert "".join(chunk_text(SENTENCES, chunk_size=500, overlap=0)).replace(" ", "") == SENTENCES.replace(" ", "")


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, -1), (True, 0), (100, 1.5)])
def test_bad_sizes_are_invalid_arguments(size: object, overlap: object) -> None:
    with pytest.raises(InvalidArgumentError):
        chunk_text("text", chunk_size=size, overlap=overlap)  # type: ignore[arg-type]


def test_default_overlap_fits_small_chunks() -> None:
    assert chunk_text("word " * 100, chunk_size=40)


MARKDOWN = """# Guide

Welcome.

## Refunds

""" + "Refunds take five days to reach your account. " * 30 + """

## Shipping

Fast.

```python
# not a heading
print("x")
```

### Express

Next day.
"""


def test_markdown_chunks_start_at_headings_and_keep_their_path() -> None:
    chunks = chunk_markdown(MARKDOWN, chunk_size=400, overlap=50)
    assert chunks[0] == "# Guide\n\nWelcome."
    refunds = [c for c in chunks if "Refunds take" in c]
    assert len(refunds) > 2
    # Every chunk of the section, the first one too, carries the whole path, once.
    assert all(c.startswith("# Guide > ## Refunds\n\nRefunds take") and c.count("## Refunds") == 1 for c in refunds)
    assert all(len(c) <= 400 for c in chunks)
    shipping = [c for c in chunks if "## Shipping" in c]
    assert len(shipping) == 1 and shipping[0].startswith("# Guide > ## Shipping\n\nFast.")
    assert "# not a heading" in shipping[0] and "### Express" in shipping[0]  # small sections share a chunk


def test_every_markdown_chunk_starts_with_the_path_of_its_section() -> None:
    para = "Words about this part of the guide go on for a while here. " * 12
    text = f"Preamble before any heading.\n\n# A\n\n{para}\n\n## B\n\n### C\n\n{para}\n\n# D\n\nshort\n"
    chunks = chunk_markdown(text, chunk_size=300, overlap=30)
    assert chunks[0].startswith("Preamble")  # no heading above it: no path
    starts = [c.split("\n\n", 1)[0] for c in chunks[1:]]
    assert set(starts) == {"# A", "# A > ## B > ### C", "# D"}, starts  # ## B has no text: C's chunks say it
    assert starts.count("# A") > 1 and starts.count("# A > ## B > ### C") > 1


def test_chunk_document_ids_metadata_and_payload() -> None:
    doc = DocumentInfo(id="guide.md", text=MARKDOWN, metadata={"kind": "guide"}, payload="p")
    docs = chunk_document(doc, chunk_size=400, overlap=50, markdown=True)
    assert [d.id for d in docs] == [f"guide.md#{n}" for n in range(len(docs))]
    assert all(d.metadata == {"kind": "guide", "parent_id": "guide.md"} and d.payload == "p" for d in docs)
    short = DocumentInfo(id="s", text="short")
    assert chunk_document(short) == [short]
    with pytest.raises(InvalidDocumentError):
        chunk_document(DocumentInfo(id="v", text="x " * 1000, embedding=[1.0, 0.0]), chunk_size=100)
