"""get_docs in pages (issue #8): the service never holds a whole index for one request.
Run over both transports (embedded and a real HTTP server)."""

from __future__ import annotations

import pytest

from mosslite import DocumentInfo, MutationOptions
from mosslite.errors import ConflictError, InvalidArgumentError
from mosslite.types import DEFAULT_PAGE_DOCS, MAX_PAGE_DOCS, PAGE_BYTES

MODEL = "hashed-ngrams-256"


def docs(n: int, start: int = 0, text: str = "doc") -> list[DocumentInfo]:
    return [DocumentInfo(id=f"d{i}", text=f"{text} {i}", metadata={"odd": str(i % 2)}) for i in range(start, start + n)]


def wait(client, result) -> None:
    job = client.wait_for_job(result.job_id, poll_interval_seconds=0.02, timeout_seconds=60)
    assert job.status == "completed", job


def walk(client, name: str, **request) -> list[list[str]]:
    """The ids of each page, first to last."""
    pages, cursor = [], None
    while True:
        page = client.get_docs_page(name, **request, cursor=cursor)
        pages.append([d.id for d in page.docs])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_pages_cover_every_document_once_in_order(client) -> None:
    wait(client, client.create_index("big", docs(2_345), model_id=MODEL))
    pages = walk(client, "big", include_embedding=False)
    assert [len(p) for p in pages] == [DEFAULT_PAGE_DOCS, DEFAULT_PAGE_DOCS, 345]
    assert sum(pages, []) == [f"d{i}" for i in range(2_345)]
    assert [len(p) for p in walk(client, "big", limit=700)] == [700, 700, 700, 245]
    odd = walk(client, "big", filter={"field": "odd", "condition": {"$eq": "1"}}, limit=500, include_embedding=False)
    assert sum(odd, []) == [f"d{i}" for i in range(1, 2_345, 2)] and len(odd) == 3
    asked = ["d7", "missing", "d3", "d2000", "d3", "d1"]
    assert walk(client, "big", ids=asked, limit=2) == [["d7", "d3"], ["d2000", "d1"]]  # in the order asked
    assert len(client.get_docs("big", include_embedding=False)) == 2_345  # all of it, page by page


def test_a_page_ends_early_once_it_holds_its_bytes(client) -> None:
    big_text = "x" * (200 * 1024)
    wait(client, client.create_index("fat", docs(60, text=big_text), model_id=MODEL))
    first = client.get_docs_page("fat", include_embedding=False, limit=MAX_PAGE_DOCS)
    assert 0 < len(first.docs) <= PAGE_BYTES // len(big_text) + 1 and first.next_cursor
    assert len(client.get_docs("fat", include_embedding=False)) == 60


def test_a_walk_reads_one_version_until_it_is_gone(client) -> None:
    wait(client, client.create_index("moving", docs(30), model_id=MODEL))
    first = client.get_docs_page("moving", limit=10)
    wait(client, client.add_docs("moving", docs(5, start=100), MutationOptions()))
    second = client.get_docs_page("moving", limit=10, cursor=first.next_cursor)
    third = client.get_docs_page("moving", limit=10, cursor=second.next_cursor)
    assert [d.id for d in first.docs + second.docs + third.docs] == [f"d{i}" for i in range(30)]  # v1 throughout
    for i in range(3):  # three more versions: v1 is pruned (the service keeps three)
        wait(client, client.add_docs("moving", docs(1, start=200 + i), MutationOptions()))
    with pytest.raises(ConflictError, match="start the listing again"):
        client.get_docs_page("moving", limit=10, cursor=first.next_cursor)


def test_bad_paging_requests_are_refused_before_any_work(client) -> None:
    wait(client, client.create_index("faq", docs(5), model_id=MODEL))
    page = client.get_docs_page("faq", limit=2)
    with pytest.raises(InvalidArgumentError, match="another get_docs request"):
        client.get_docs_page("faq", limit=2, include_embedding=False, cursor=page.next_cursor)
    with pytest.raises(InvalidArgumentError, match="another get_docs request"):
        client.get_docs_page("faq", ids=["d1"], cursor=page.next_cursor)
    for cursor in ("", "nonsense", "1.2", "1.2.zz", page.next_cursor + "\n", "9" * 5000):
        with pytest.raises(InvalidArgumentError, match="cursor"):
            client.get_docs_page("faq", limit=2, cursor=cursor)
    for limit in (0, -1, MAX_PAGE_DOCS + 1, True, 2.5, "10"):
        with pytest.raises(InvalidArgumentError, match="limit"):
            client.get_docs_page("faq", limit=limit)


def test_a_bad_filter_is_refused_before_it_is_hashed_into_a_cursor(client) -> None:
    # json.dumps(sort_keys=True) of the request raised ValueError / TypeError first (issue #8).
    wait(client, client.create_index("faq", docs(5), model_id=MODEL))
    for bad in ({"field": "odd", "condition": {"$lt": 10**5000}}, {"field": "odd", "condition": {"$eq": "1"}, 1: 2}):
        with pytest.raises(InvalidArgumentError):
            client.get_docs_page("faq", filter=bad)
