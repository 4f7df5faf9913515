"""Sessions over both transports: lifecycle, local queries, diffs, idempotent and
offline pushes, conflicts, cross-agent resume, and bad input (issue #5)."""

from __future__ import annotations

import apsw
import numpy as np
import pytest

from mosslite import DocumentInfo, MutationOptions, PushIndexResult, QueryOptions, Session
from mosslite.errors import (
    ClosedError,
    ConflictError,
    CorruptIndexError,
    DimensionMismatchError,
    InvalidArgumentError,
    InvalidDocumentError,
    InvalidNameError,
    UnavailableError,
)
from mosslite.changeset import decode

from .conftest import MODEL, Target

pytestmark = pytest.mark.anyio

FAQ = [
    ("refund-1", "How do I get a refund for a damaged product?", {"category": "returns", "price": "0"}),
    ("refund-2", "Getting your money back: returns are accepted within 30 days.", {"category": "returns", "price": "5"}),
    ("ship-1", "Standard shipping takes three to five business days.", {"category": "shipping", "price": "4.99"}),
    ("ship-2", "Express delivery arrives the next day if ordered before noon.", {"category": "shipping", "price": "14.99"}),
    ("bt-1", "Pair your headphones over Bluetooth by holding the power button.", {"category": "audio", "price": "129.99"}),
    ("bt-2", "Speakers reconnect automatically to the last paired phone.", {"category": "audio", "price": "89"}),
]


def faq() -> list[DocumentInfo]:
    return [DocumentInfo(id=i, text=t, metadata=m, payload=f"p:{i}") for i, t, m in FAQ]


def unit(dim: int, seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=dim)
    return (v / np.linalg.norm(v)).tolist()


class FlakyTransport:
    """Wraps a transport; ``push`` fails before sending ("down") or after the
    service took it, losing the answer ("lost")."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.mode: str | None = None
        self.pushes: list[str] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def push(self, name, diff_id, changeset, model_id, dimension):
        self.pushes.append(diff_id)
        if self.mode == "down":
            raise UnavailableError("simulated: service unreachable")
        result = await self.inner.push(name, diff_id, changeset, model_id, dimension)
        if self.mode == "lost":
            raise UnavailableError("simulated: answer lost")
        return result


# -- lifecycle ------------------------------------------------------------------------


async def test_lifecycle_open_add_query_push_resume(clients, target: Target) -> None:
    a = clients("a")
    session = await a.session("call-1", model_id=MODEL)
    assert (session.name, session.model_id, session.doc_count) == ("call-1", MODEL, 0)
    assert await session.add_docs(faq()) == (6, 0)
    res = await session.query("refund money back", QueryOptions(top_k=2))
    assert res.docs[0].id.startswith("refund") and res.index_name == "call-1"
    result = await session.push_index()
    assert isinstance(result, PushIndexResult)
    assert (result.index_name, result.doc_count, result.status, result.overwritten) == ("call-1", 6, "completed", 0)
    info = await a.get_index("call-1")
    assert (info.version, info.doc_count, info.model) == (1, 6, MODEL)

    # Agent B, on another device, resumes the session, adds, pushes.
    b = clients("b")
    other = await b.session("call-1")
    assert other.model_id == MODEL and other.doc_count == 6
    assert other.pending_changes() == 0  # hydrated rows are not changes to push back
    await other.add_docs([DocumentInfo(id="note-b", text="Agent B: caller wants express refund")])
    assert (await other.push_index()).doc_count == 1
    await other.close()

    # A sees B's document on its next load, and on its next session.
    assert await session.load() == 2  # version 1 (A's push), 2 (B's)
    assert "note-b" in {d.id for d in await session.get_docs()}
    await session.close()
    again = await a.session("call-1")
    assert again.doc_count == 7 and again.pending_changes() == 0
    await again.close()


async def test_add_delete_get(clients) -> None:
    session = await clients("a").session("notes", model_id=MODEL)
    assert await session.add_docs(faq()[:3]) == (3, 0)
    assert await session.add_docs([DocumentInfo(id="refund-1", text="changed"), DocumentInfo(id="x", text="new")]) == (1, 1)
    with pytest.raises(ConflictError):
        await session.add_docs([DocumentInfo(id="x", text="again")], MutationOptions(upsert=False))
    assert await session.delete_docs(["x", "missing"]) == 1
    assert session.doc_count == 3
    docs = await session.get_docs(ids=["refund-1", "nope", "ship-1"])
    assert [d.id for d in docs] == ["refund-1", "ship-1"] and docs[0].text == "changed"
    assert len(docs[0].embedding) == 256
    only = await session.get_docs(filter={"field": "category", "condition": {"$eq": "shipping"}})
    assert [d.id for d in only] == ["ship-1"]
    res = await session.query("changed", QueryOptions(alpha=0.0))
    assert res.docs[0].id == "refund-1"
    assert "x" not in {d.id for d in (await session.query("new", QueryOptions(top_k=10))).docs}
    await session.close()


async def test_session_queries_match_the_index_reader(clients) -> None:
    client = clients("a")
    session = await client.session("same", model_id=MODEL)
    await session.add_docs(faq())
    await session.add_docs([DocumentInfo(id="bt-2", text="Speakers pair with the last phone automatically.")])
    await session.delete_docs(["ship-2"])
    await session.push_index()
    await client.load_index("same")
    cases = [
        ("refund for headphones", QueryOptions(top_k=5)),
        ("refund for headphones", QueryOptions(top_k=3, alpha=0.0)),
        ("delivery days", QueryOptions(top_k=4, alpha=1.0)),
        ("returns shipping", QueryOptions(top_k=5, alpha=0.5, filter={"field": "price", "condition": {"$lt": 10}})),
    ]
    for text, options in cases:
        local = await session.query(text, options)
        served = await client.query("same", text, options)
        assert [d.id for d in local.docs] == [d.id for d in served.docs], (text, options)
        assert [round(d.score, 5) for d in local.docs] == [round(d.score, 5) for d in served.docs]
        assert [(d.text, d.metadata, d.payload) for d in local.docs] == [(d.text, d.metadata, d.payload) for d in served.docs]
    await session.close()


async def test_a_query_with_nothing_to_search_by_finds_nothing(clients) -> None:
    """Issue #12: "?!" returned 5 arbitrary documents at score 0. Sessions and loaded
    indexes alike answer a query with no word (and no vector, or a zero one) with none."""
    client = clients("a")
    session = await client.session("nothing", model_id=MODEL)
    await session.add_docs(faq())
    await session.push_index()
    await client.load_index("nothing")
    for text in ("?!", "...", " -- "):
        for alpha in (0.0, 0.5, 1.0):
            options = QueryOptions(top_k=5, alpha=alpha)
            assert (await session.query(text, options)).docs == [], (text, alpha)
            assert (await client.query("nothing", text, options)).docs == [], (text, alpha)
    zero = QueryOptions(top_k=5, alpha=1.0, embedding=[0.0] * 256)
    assert (await session.query("", zero)).docs == [] and (await client.query("nothing", "", zero)).docs == []
    # A word among the punctuation is something to search by.
    assert (await session.query("refund?!", QueryOptions(top_k=1))).docs[0].id == "refund-1"
    assert (await client.query("nothing", "refund?!", QueryOptions(top_k=1))).docs[0].id == "refund-1"
    await session.close()


# -- pushes ---------------------------------------------------------------------------


async def test_push_sends_only_what_changed(clients) -> None:
    session = await clients("a").session("diffs", model_id=MODEL)
    await session.add_docs(faq())
    await session.push_index()
    assert (await session.push_index()).doc_count == 0  # nothing new: nothing sent
    await session.add_docs([DocumentInfo(id="ship-1", text="Shipping now takes two days.")])
    await session.add_docs([DocumentInfo(id="tmp", text="scratch")])
    await session.delete_docs(["tmp", "bt-1"])  # tmp cancels out
    outgoing = session._store.outgoing()
    changes = {c.id: c for c in decode(outgoing.changeset)}
    assert set(changes) == {"ship-1", "bt-1"}
    assert changes["ship-1"].new[0] == "Shipping now takes two days." and changes["bt-1"].new is None
    result = await session.push_index()
    assert result.doc_count == 2 and result.diff_id == outgoing.diff_id
    assert result.version == 2
    await session.close()


async def test_push_lost_answer_is_not_applied_twice(clients, target: Target) -> None:
    client = clients("a")
    flaky = FlakyTransport(client.transport)
    client.transport = flaky
    session = await client.session("idem", model_id=MODEL)
    await session.add_docs(faq()[:2])
    flaky.mode = "lost"
    with pytest.raises(UnavailableError):
        await session.push_index()
    assert session.pending_changes() == 1
    flaky.mode = None
    result = await session.push_index()
    assert flaky.pushes[0] == flaky.pushes[1] == result.diff_id  # the same diff, resent
    info = await client.get_index("idem")
    assert (info.version, info.doc_count) == (1, 2)  # applied once
    assert session.pending_changes() == 0
    await session.close()


async def test_repeated_diff_id_returns_the_first_job(clients) -> None:
    client = clients("a")
    session = await client.session("idem2", model_id=MODEL)
    await session.add_docs(faq()[:2])
    outgoing = session._store.outgoing()
    first = await client.transport.push("idem2", outgoing.diff_id, outgoing.changeset, MODEL, 256)
    second = await client.transport.push("idem2", outgoing.diff_id, outgoing.changeset, MODEL, 256)
    assert first.job_id == second.job_id
    await client.wait_for_job(first.job_id)
    done = await client.transport.get_push("idem2", outgoing.diff_id)
    assert (done.status, done.version, done.overwritten, done.doc_count) == ("completed", 1, 0, 2)
    await session.close()


async def test_a_large_backlog_goes_as_several_diffs_in_order(clients, target: Target) -> None:
    """One diff of everything could exceed what the service accepts per request;
    budgets shrunk here so a few dozen documents need many pieces."""
    client = clients("a")
    session = await client.session("bulk", model_id=MODEL)
    session._store.changeset_bytes, session._store.push_bytes = 4_000, 10_000
    docs = [DocumentInfo(id=f"d{i:03d}", text=f"bulk document {i} " * 10) for i in range(60)]
    assert await session.add_docs(docs) == (60, 0)
    assert session.pending_changes() > 5  # one call, recorded in pieces
    await session.delete_docs(["d000"])
    await session.add_docs([DocumentInfo(id="d001", text="rewritten after the bulk add")])
    pushed = []
    inner = client.transport.push

    async def counting_push(*args, **kwargs):
        pushed.append(len(args[2]))  # changeset bytes of each diff
        return await inner(*args, **kwargs)

    client.transport.push = counting_push
    result = await session.push_index()
    assert len(pushed) > 3 and max(pushed) < 4 * 10_000 and session.pending_changes() == 0
    assert result.status == "completed" and result.version == len(pushed)
    info = await client.get_index("bulk")
    assert (info.version, info.doc_count) == (len(pushed), 59)
    fresh = await clients("b").session("bulk")  # what any agent now resumes
    got = {d.id: d.text for d in await fresh.get_docs()}
    assert len(got) == 59 and "d000" not in got and got["d001"] == "rewritten after the bulk add"
    await fresh.close()
    await session.close()


async def test_offline_push_loses_nothing(clients) -> None:
    client = clients("a")
    flaky = FlakyTransport(client.transport)
    client.transport = flaky
    session = await client.session("offline", model_id=MODEL)
    await session.add_docs(faq()[:3])
    flaky.mode = "down"
    with pytest.raises(UnavailableError):
        await session.push_index()
    await session.add_docs([DocumentInfo(id="later", text="added while offline")])
    with pytest.raises(UnavailableError):
        await session.push_index()
    await session.close()
    flaky.mode = None
    session = await client.session("offline")  # the index does not exist yet: starts from the local file
    assert session.doc_count == 4 and session.pending_changes() == 2
    first = await session.push_index()  # the stored diff (3 docs), then the rest (1 doc)
    assert first.doc_count == 4
    info = await client.get_index("offline")
    assert info.doc_count == 4 and info.version == 2
    await session.close()


async def test_unreachable_service_at_open_serves_the_local_file(clients, target: Target) -> None:
    client = clients("a")
    session = await client.session("local-first", model_id=MODEL)
    await session.add_docs(faq()[:2])
    await session.close()
    flaky = FlakyTransport(client.transport)

    async def down(*args, **kwargs):
        raise UnavailableError("simulated")

    flaky.get_index = down  # type: ignore[method-assign]
    client.transport = flaky
    session = await client.session("local-first")
    assert session.stale and session.doc_count == 2 and session.model_id == MODEL
    await session.close()


async def test_conflicts_resolve_last_push_wins_and_are_counted(clients) -> None:
    a, b = clients("a"), clients("b")
    sa = await a.session("shared", model_id=MODEL)
    await sa.add_docs(faq())
    await sa.push_index()
    sb = await b.session("shared")  # both now hold version 1
    await sa.add_docs([DocumentInfo(id="ship-1", text="A: shipping takes a week")])
    assert (await sa.push_index()).overwritten == 0
    await sb.add_docs([DocumentInfo(id="ship-1", text="B: shipping takes a day"), DocumentInfo(id="b-only", text="B")])
    result = await sb.push_index()
    assert (result.doc_count, result.overwritten) == (2, 1)  # B replaced A's ship-1, which it had not seen
    docs = {d.id: d.text for d in await a.get_docs("shared")}
    assert docs["ship-1"] == "B: shipping takes a day" and "b-only" in docs and len(docs) == 7
    await sa.load()
    assert (await sa.get_docs(ids=["ship-1"]))[0].text == "B: shipping takes a day"
    await sa.close()
    await sb.close()


async def test_local_changes_survive_a_load(clients) -> None:
    a, b = clients("a"), clients("b")
    sa = await a.session("merge", model_id=MODEL)
    await sa.add_docs(faq()[:3])
    await sa.push_index()
    sb = await b.session("merge")
    await sb.add_docs([DocumentInfo(id="from-b", text="b")])
    await sb.delete_docs(["refund-2"])
    await sb.push_index()
    await sa.add_docs([DocumentInfo(id="refund-1", text="A's unpushed edit")])
    await sa.delete_docs(["ship-1"])
    await sa.load()  # B's changes come in; A's unpushed edits stay on top
    docs = {d.id: d.text for d in await sa.get_docs()}
    assert docs == {"refund-1": "A's unpushed edit", "from-b": "b"}
    assert sa.pending_changes() == 2
    res = await sa.query("b", QueryOptions(alpha=0.0))
    assert [d.id for d in res.docs] == ["from-b"]
    await sa.push_index()
    assert {d.id for d in await b.get_docs("merge")} == {"refund-1", "from-b"}
    await sa.close()
    await sb.close()


async def test_custom_model_first_push_creates_the_index(clients) -> None:
    client = clients("a")
    session = await client.session("vectors", model_id="custom")
    assert session.dimension is None
    docs = [DocumentInfo(id=f"v{i}", text=f"vector {i}", embedding=unit(8, i)) for i in range(5)]
    assert await session.add_docs(docs) == (5, 0)
    assert session.dimension == 8
    res = await session.query("", QueryOptions(top_k=1, alpha=1.0, embedding=unit(8, 3)))
    assert res.docs[0].id == "v3" and res.docs[0].score == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(DimensionMismatchError):
        await session.add_docs([DocumentInfo(id="bad", text="x", embedding=unit(9, 1))])
    with pytest.raises(InvalidDocumentError):
        await session.add_docs([DocumentInfo(id="none", text="no vector")])
    with pytest.raises(InvalidArgumentError, match="session 'vectors' uses the custom model"):
        await session.query("text only")
    result = await session.push_index()
    info = await client.get_index("vectors")
    assert (info.model, info.dimension, info.doc_count, result.version) == ("custom", 8, 5, 1)
    served = {d.id: d.embedding for d in await client.get_docs("vectors")}
    assert np.allclose(served["v2"], unit(8, 2), atol=1e-6)  # pushed vectors, not re-embedded
    await session.close()


async def test_session_adopts_the_index_model(clients) -> None:
    client = clients("a")
    job = await client.create_index("existing", faq(), model_id=MODEL)
    await client.wait_for_job(job.job_id)
    session = await client.session("existing")
    assert session.model_id == MODEL and session.doc_count == 6
    hydrated = {d.id: d.embedding for d in await session.get_docs()}
    served = {d.id: d.embedding for d in await client.get_docs("existing")}
    assert all(np.array_equal(hydrated[k], served[k]) for k in served)  # copied, not re-embedded
    await session.close()
    with pytest.raises(InvalidArgumentError):
        await client.session("existing", model_id="custom")
    fresh = await client.session("fresh", auto_load_on_init=False)
    assert fresh.model_id == "moss-minilm" and fresh.doc_count == 0
    await fresh.close()


# -- bad input ------------------------------------------------------------------------


async def test_bad_inputs(clients) -> None:
    client = clients("a")
    for bad in ["", "../etc", "has space", "a" * 200, "-dash"]:
        with pytest.raises(InvalidNameError):
            await client.session(bad)
    session = await client.session("bad-input", model_id=MODEL)
    with pytest.raises(InvalidDocumentError):
        await session.add_docs([DocumentInfo(id="d", text="one"), DocumentInfo(id="d", text="two")])
    with pytest.raises(DimensionMismatchError):
        await session.add_docs([DocumentInfo(id="d", text="x", embedding=[1.0, 0.0])])
    with pytest.raises(InvalidDocumentError):
        await session.add_docs(DocumentInfo(id="d", text="not a list"))  # type: ignore[arg-type]
    with pytest.raises(InvalidDocumentError):
        await session.add_docs(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="MutationOptions"):
        await session.add_docs([DocumentInfo(id="d", text="x")], True)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="QueryOptions"):
        await session.query("x", {"top_k": 1})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        await session.delete_docs("d")  # type: ignore[arg-type]
    assert session.doc_count == 0 and session.pending_changes() == 0  # nothing half-written
    with pytest.raises(ConflictError):
        await client.session("bad-input")  # already open
    await session.close()
    await session.close()  # twice is fine
    for call in (session.push_index(), session.add_docs([]), session.query("x"), session.get_docs(), session.load()):
        with pytest.raises(ClosedError):
            await call
    with pytest.raises(ClosedError):
        session.pending_changes()


async def test_service_refuses_malformed_diffs(clients) -> None:
    client = clients("a")
    for changeset in [b"not a changeset", b"\x00" * 40]:
        with pytest.raises(InvalidArgumentError):
            await client.transport.push("malformed", "diff_0123456789", changeset, MODEL, 256)
    with pytest.raises(InvalidArgumentError):
        await client.transport.push("malformed", "bad id!", b"x", MODEL, 256)
    # A changeset of another table is refused too.
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE TABLE other (id TEXT PRIMARY KEY, v)")
    recorder = apsw.Session(conn, "main")
    recorder.attach()
    conn.execute("INSERT INTO other VALUES ('a', 1)")
    with pytest.raises(InvalidArgumentError):
        await client.transport.push("malformed", "diff_0123456789", recorder.changeset(), MODEL, 256)
    # A diff whose vectors do not fit the index.
    session = await client.session("dims", model_id="custom")
    await session.add_docs([DocumentInfo(id="a", text="a", embedding=unit(4, 1))])
    await session.push_index()
    await session.add_docs([DocumentInfo(id="b", text="b", embedding=unit(4, 2))])
    outgoing = session._store.outgoing()
    with pytest.raises(DimensionMismatchError):
        await client.transport.push("dims", outgoing.diff_id, outgoing.changeset, "custom", 5)
    await session.close()


def test_session_is_exported() -> None:
    assert Session.__doc__ and "Invariants" in Session.__doc__


def test_blocking_session(tmp_path) -> None:
    from mosslite import SyncMossClient
    from mosslite.client.embedded import close_embedded_services

    client = SyncMossClient("p-sync", "k", cache_path=tmp_path)
    try:
        with client.session("desk", model_id=MODEL) as session:
            assert session.add_docs(faq()) == (6, 0)
            assert session.query("refund", QueryOptions(top_k=1)).docs[0].id.startswith("refund")
            assert session.doc_count == 6 and session.name == "desk"
            assert session.push_index().version == 1
        assert client.get_index("desk").doc_count == 6
    finally:
        client.close()
        close_embedded_services()


async def test_a_push_after_someone_elses_still_brings_theirs_in_on_reopen(clients) -> None:
    a, b = clients("a"), clients("b")
    sa = await a.session("interleave", model_id=MODEL)
    await sa.add_docs(faq()[:1])
    await sa.push_index()  # v1
    sb = await b.session("interleave")
    await sb.add_docs([DocumentInfo(id="from-b", text="b")])
    await sb.push_index()  # v2, which A has not seen
    await sb.close()
    await sa.add_docs([DocumentInfo(id="from-a", text="a")])
    assert (await sa.push_index()).version == 3
    await sa.close()
    sa = await a.session("interleave")
    assert {d.id for d in await sa.get_docs()} == {"refund-1", "from-a", "from-b"}
    await sa.close()


async def test_a_resumed_session_follows_its_index_deleted_and_created_again(clients, target: Target) -> None:
    # Version numbers start again at 1 for the new index; the session must not take
    # the new index's version 2 for the old one it had seen, nor keep the old documents.
    client = clients("a")
    session = await client.session("notes", model_id=MODEL)
    await session.add_docs([DocumentInfo(id="old-1", text="old one")])
    await session.push_index()
    await session.add_docs([DocumentInfo(id="old-2", text="old two")])
    await session.push_index()
    assert session.base_version == 2
    await session.add_docs([DocumentInfo(id="unpushed", text="mine, not pushed yet")])
    await session.close()

    await client.delete_index("notes")
    session = await client.session("notes")  # no index on the service: only unpushed changes remain
    assert {d.id for d in await session.get_docs()} == {"unpushed"} and session.base_version == 0
    await session.close()

    job = await client.create_index("notes", [DocumentInfo(id="new-1", text="new one")], model_id=MODEL)
    await client.wait_for_job(job.job_id)
    job = await client.add_docs("notes", [DocumentInfo(id="new-2", text="new two")])
    await client.wait_for_job(job.job_id)
    assert (await client.get_index("notes")).version == 2  # the number the session last saw
    session = await client.session("notes")
    assert {d.id for d in await session.get_docs()} == {"new-1", "new-2", "unpushed"}
    assert session.base_version == 2 and session.pending_changes() == 1
    await session.push_index()
    assert {d.id for d in await client.get_docs("notes")} == {"new-1", "new-2", "unpushed"}
    await session.close()


async def test_a_session_that_made_its_index_notices_it_was_made_again(clients) -> None:
    # The index was created by the session's own pushes, and replaced while the
    # session was closed, up to the same version number.
    client = clients("a")
    session = await client.session("notes", model_id=MODEL)
    for doc_id in ("old-1", "old-2"):
        await session.add_docs([DocumentInfo(id=doc_id, text=doc_id)])
        await session.push_index()
    await session.close()
    await client.delete_index("notes")
    job = await client.create_index("notes", [DocumentInfo(id="new-1", text="new one")], model_id=MODEL)
    await client.wait_for_job(job.job_id)
    job = await client.add_docs("notes", [DocumentInfo(id="new-2", text="new two")])
    await client.wait_for_job(job.job_id)
    session = await client.session("notes")
    assert sorted(d.id for d in await session.get_docs()) == ["new-1", "new-2"] and session.base_version == 2
    await session.close()


# -- an index made again with other vectors (issue #8) ----------------------------------


async def test_an_index_made_again_with_another_dimension_is_refused_not_merged(clients, target: Target) -> None:
    client = clients("a")
    session = await client.session("redim", model_id="custom")
    await session.add_docs([DocumentInfo(id="a", text="alpha", embedding=[1, 0, 0, 0])])
    await session.push_index()
    await session.add_docs([DocumentInfo(id="b", text="beta", embedding=[0, 1, 0, 0])])  # unpushed
    await client.delete_index("redim")
    job = await client.create_index("redim", [DocumentInfo(id="x", text="o", embedding=[1, 0, 0, 0, 0, 0])], "custom")
    await client.wait_for_job(job.job_id)
    with pytest.raises(DimensionMismatchError):
        await session.push_index()
    with pytest.raises(DimensionMismatchError, match="4-dimensional .* 6 dimensions") as refused:
        await session.load()
    assert str(session.path) in refused.value.hint and "unpushed" in refused.value.hint
    # Nothing was merged: the file still holds only its own 4-d documents, and serves them.
    assert {d.id: len(d.embedding) for d in await session.get_docs()} == {"a": 4, "b": 4}
    assert session.pending_changes() == 1
    res = await session.query("", QueryOptions(top_k=1, alpha=1.0, embedding=[0, 1, 0, 0]))
    assert res.docs[0].id == "b"
    await session.close()
    with pytest.raises(DimensionMismatchError, match="4-dimensional .* 6 dimensions"):
        await client.session("redim")
    offline = await client.session("redim", auto_load_on_init=False)
    assert {d.id for d in await offline.get_docs()} == {"a", "b"}
    # The hint's way out: delete the index, and the unpushed change makes it again.
    await client.delete_index("redim")
    await offline.load()
    assert [d.id for d in await offline.get_docs()] == ["b"]
    assert (await offline.push_index()).version == 1
    info = await client.get_index("redim")
    assert (info.dimension, info.doc_count) == (4, 1)
    await offline.close()


async def test_an_index_made_again_with_another_model_names_both(clients) -> None:
    client = clients("a")
    session = await client.session("remodel", model_id=MODEL)
    await session.add_docs(faq()[:1])
    await session.push_index()
    await client.delete_index("remodel")
    job = await client.create_index("remodel", [DocumentInfo(id="x", text="o", embedding=[1, 0, 0])], "custom")
    await client.wait_for_job(job.job_id)
    with pytest.raises(InvalidArgumentError, match=f"model {MODEL!r} .* model 'custom'") as refused:
        await session.load()
    assert "nothing in it is unpushed" in refused.value.hint
    assert [d.id for d in await session.get_docs()] == ["refund-1"]
    await session.close()


async def test_an_empty_custom_session_takes_the_dimension_of_the_index_it_loads(clients) -> None:
    client = clients("a")
    session = await client.session("late", model_id="custom")
    assert session.dimension is None
    job = await client.create_index("late", [DocumentInfo(id="x", text="o", embedding=unit(6, 1))], "custom")
    await client.wait_for_job(job.job_id)
    assert await session.load() == 1
    assert session.dimension == 6 and [d.id for d in await session.get_docs()] == ["x"]
    await session.add_docs([DocumentInfo(id="y", text="y", embedding=unit(6, 2))])
    assert (await session.push_index()).version == 2
    await session.close()
    session = await client.session("late", auto_load_on_init=False)
    assert session.dimension == 6 and session.doc_count == 2
    await session.close()


async def test_a_session_file_mixing_two_dimensions_is_a_corrupt_error(clients) -> None:
    # What a load did before the refusal above: rows of two indexes' dimensions in one file.
    client = clients("a")
    session = await client.session("mixed", model_id="custom", auto_load_on_init=False)
    await session.add_docs([DocumentInfo(id="a", text="a", embedding=unit(4, 1))])
    path = session.path
    await session.close()
    conn = apsw.Connection(str(path))
    conn.execute("INSERT INTO docs (id, text, embedding) VALUES ('x', 'x', ?)", (np.ones(6, "<f4").tobytes(),))
    conn.close()
    with pytest.raises(CorruptIndexError, match="6-dimensional vector for document 'x'"):
        await client.session("mixed", auto_load_on_init=False)


async def test_ids_with_a_lone_surrogate_are_refused(clients) -> None:
    client = clients("a")
    session = await client.session("surrogate", model_id=MODEL)
    await session.add_docs(faq()[:1])
    for call in (session.delete_docs, session.get_docs):
        with pytest.raises(InvalidArgumentError, match="lone surrogate"):
            await call(["refund-1", "\ud800"])
    assert session.doc_count == 1 and session.pending_changes() == 1
    await session.close()
