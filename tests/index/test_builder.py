"""Building version 1 and version N+1: contents, re-embedding, compactness, atomicity."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import apsw
import numpy as np
import pytest

from mosslite import DocumentInfo, IndexReader, QueryOptions, Version, build_version, get_embedder
from mosslite._db import connect
from mosslite.embeddings.hashed import HashedNgramEmbedder
from mosslite.errors import (
    ConflictError,
    CorruptIndexError,
    DimensionMismatchError,
    IndexNotFoundError,
    InvalidArgumentError,
    InvalidDocumentError,
    InvalidNameError,
)
from mosslite.index.builder import build_from_batch
from mosslite.index.format import FORMAT_VERSION, read_meta

from ..conftest import FAQ, CountingEmbedder, faq_docs


def build(path: Path, embedder, version: int = 1, **kwargs):
    return build_version(path, embedder=embedder, index_name="faq", version=Version(version), **kwargs)


def test_version_one_holds_documents_fts_and_vectors(tmp_path: Path, embedder: CountingEmbedder) -> None:
    report = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs())
    assert (report.inserted, report.embedded, report.reused) == (len(FAQ), len(FAQ), 0)
    conn = connect(report.path, vec=True)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == FORMAT_VERSION
    meta = read_meta(conn, report.path)
    assert (meta.index_name, meta.version, meta.doc_count, meta.dimension) == ("faq", 1, len(FAQ), 256)
    assert meta.model_id == "hashed-ngrams-256"
    rows = conn.execute("SELECT id, metadata, payload FROM docs ORDER BY rowid").fetchall()
    assert [r[0] for r in rows] == [i for i, _, _ in FAQ]
    assert json.loads(rows[0][1]) == FAQ[0][2]
    assert rows[0][2] == "payload:refund-1"
    assert conn.execute("SELECT count(*) FROM docs_vec").fetchone()[0] == len(FAQ)
    assert conn.execute("SELECT count(*) FROM docs_fts WHERE docs_fts MATCH 'shipping'").fetchone()[0] == 1
    # Each vector once, in vec0 (format 3): docs has no embedding column.
    assert "embedding" not in [r[1] for r in conn.execute("PRAGMA table_info(docs)")]
    blob = conn.execute(
        "SELECT embedding FROM docs_vec WHERE rowid = (SELECT rowid FROM docs WHERE id = 'bt-1')"
    ).fetchone()[0]
    assert np.isclose(np.linalg.norm(np.frombuffer(blob, dtype="<f4")), 1.0, atol=1e-5)
    conn.close()


def test_file_is_single_and_compact(tmp_path: Path, embedder: CountingEmbedder) -> None:
    v1 = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs()).path
    v2 = build(tmp_path / "v2.sqlite", embedder, 2, base=v1, deletes=[i for i, _, _ in FAQ[:6]]).path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1.sqlite", "v2.sqlite"]
    conn = connect(v2, readonly=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    free, total = conn.execute("SELECT (SELECT freelist_count FROM pragma_freelist_count), (SELECT page_count FROM pragma_page_count)").fetchone()
    assert free / total <= 0.2
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096  # schemas/index.sql: smaller page patches
    conn.close()


def test_next_version_reembeds_only_new_or_changed_texts(tmp_path: Path, embedder: CountingEmbedder) -> None:
    v1 = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs()).path
    before = IndexReader(v1).get_docs(ids=["bt-2"])[0].embedding
    embedder.embedded.clear()
    docs = faq_docs()
    upserts = [
        DocumentInfo(id="bt-2", text=docs[5].text, metadata={"category": "speakers"}),  # same text, new metadata
        DocumentInfo(id="ship-1", text="Shipping is free over 50 euros."),  # changed text
        DocumentInfo(id="new-1", text="Gift cards never expire."),  # new
    ]
    report = build(tmp_path / "v2.sqlite", embedder, 2, base=v1, upserts=upserts, deletes=["account-1", "nope"])
    assert sorted(embedder.embedded) == ["Gift cards never expire.", "Shipping is free over 50 euros."]
    assert (report.embedded, report.reused, report.inserted, report.updated, report.deleted) == (2, 1, 1, 2, 1)
    assert report.meta.version == 2 and report.meta.doc_count == len(FAQ)
    reader = IndexReader(report.path)
    moved = reader.get_docs(ids=["bt-2"])[0]
    assert moved.embedding == before and moved.metadata == {"category": "speakers"}
    assert reader.get_docs(ids=["account-1"]) == []
    hits = reader.query("free shipping euros", QueryOptions(alpha=0.0)).docs
    assert hits[0].id == "ship-1"  # FTS follows the updated text
    # The base version is untouched.
    assert IndexReader(v1).get_docs(ids=["ship-1"])[0].text == docs[2].text


def test_the_next_version_starts_as_a_copy_of_its_base_written_back_as_it_goes(
    tmp_path: Path, embedder: CountingEmbedder, written_back: list[tuple[int, int]]
) -> None:
    v1 = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs()).path
    written_back.clear()
    build(tmp_path / "v2.sqlite", embedder, 2, base=v1, upserts=[DocumentInfo(id="new-1", text="Gift cards never expire.")])
    assert written_back == [(0, v1.stat().st_size)]  # (the base is smaller than one piece)


def test_insert_without_upsert_on_existing_id_is_a_conflict(tmp_path: Path, embedder: CountingEmbedder) -> None:
    v1 = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs()).path
    with pytest.raises(ConflictError, match="upsert=True"):
        build(tmp_path / "v2.sqlite", embedder, 2, base=v1, upserts=[DocumentInfo(id="bt-1", text="x")], upsert=False)
    assert not (tmp_path / "v2.sqlite").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1.sqlite"]


def test_failure_mid_build_leaves_no_file(tmp_path: Path) -> None:
    class Exploding(HashedNgramEmbedder):
        def embed(self, texts):  # type: ignore[override]
            raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        build(tmp_path / "v1.sqlite", Exploding(), upserts=faq_docs())
    assert list(tmp_path.iterdir()) == []


def test_duplicate_ids_in_one_batch(tmp_path: Path, embedder: CountingEmbedder) -> None:
    docs = [DocumentInfo(id="a", text="x"), DocumentInfo(id="a", text="y")]
    with pytest.raises(InvalidDocumentError, match="duplicate"):
        build(tmp_path / "v1.sqlite", embedder, upserts=docs)


def test_ids_must_be_a_list(tmp_path: Path, embedder: CountingEmbedder) -> None:
    v1 = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs()).path
    with pytest.raises(InvalidArgumentError):
        build(tmp_path / "v2.sqlite", embedder, 2, base=v1, deletes="bt-1")  # type: ignore[arg-type]


def test_supplied_embeddings_are_used_and_checked(tmp_path: Path, embedder: CountingEmbedder) -> None:
    vector = np.zeros(256)
    vector[3] = 2.0
    report = build(tmp_path / "v1.sqlite", embedder, upserts=[DocumentInfo(id="a", text="t", embedding=vector.tolist())])
    assert report.embedded == 0 and embedder.embedded == []
    stored = IndexReader(report.path).get_docs(ids=["a"])[0].embedding
    assert stored[3] == pytest.approx(1.0)  # normalised
    with pytest.raises(DimensionMismatchError, match="256"):
        build(tmp_path / "v2.sqlite", embedder, upserts=[DocumentInfo(id="a", text="t", embedding=[1.0, 2.0])])


def test_a_vector_of_huge_values_is_stored_as_its_direction(tmp_path: Path) -> None:
    # Values past ~1.8e19 square past float32: the norm was infinite and the vector
    # was stored as zeros (issue #8). Such a vector keeps its direction.
    custom = get_embedder("custom", dimension=3)
    docs = [DocumentInfo(id="huge", text="t", embedding=[3e37, 4e37, 0]), DocumentInfo(id="one", text="t", embedding=[0, 0, 1])]
    stored = IndexReader(build(tmp_path / "v1.sqlite", custom, upserts=docs).path).get_docs()
    assert stored[0].embedding == pytest.approx([0.6, 0.8, 0.0]) and stored[1].embedding == pytest.approx([0, 0, 1])


def test_custom_model_needs_every_embedding(tmp_path: Path) -> None:
    custom = get_embedder("custom", dimension=3)
    ok = build(tmp_path / "v1.sqlite", custom, upserts=[DocumentInfo(id="a", text="t", embedding=[1, 0, 0])])
    assert ok.meta.model_id == "custom" and ok.meta.dimension == 3
    with pytest.raises(InvalidDocumentError, match="no embedding"):
        build(tmp_path / "v2.sqlite", custom, 2, base=ok.path, upserts=[DocumentInfo(id="b", text="t")])
    with pytest.raises(DimensionMismatchError):
        build(tmp_path / "v2.sqlite", custom, 2, base=ok.path, upserts=[DocumentInfo(id="b", text="t", embedding=[1, 0])])


def test_model_of_base_must_match(tmp_path: Path, embedder: CountingEmbedder) -> None:
    v1 = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs()).path
    with pytest.raises(InvalidArgumentError, match="uses model"):
        build(tmp_path / "v2.sqlite", get_embedder("custom", dimension=256), 2, base=v1, upserts=[])


def test_triggers_keep_derived_tables_in_step(tmp_path: Path, embedder: CountingEmbedder) -> None:
    path = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs()).path
    conn = connect(path, vec=True)
    conn.execute("DELETE FROM docs WHERE id = 'bt-1'")
    conn.execute("UPDATE docs SET text = 'zebra crossing' WHERE id = 'bt-2'")
    assert conn.execute("SELECT count(*) FROM docs_fts WHERE docs_fts MATCH 'zebra'").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM docs_fts WHERE docs_fts MATCH 'pair'").fetchone()[0] == 0
    conn.execute("INSERT INTO docs_fts (docs_fts) VALUES ('integrity-check')")
    with pytest.raises(apsw.ConstraintError):
        conn.execute("INSERT INTO docs (id, text, metadata) VALUES ('listed', 't', '[1]')")
    conn.close()


def test_no_temp_files_after_success(tmp_path: Path, embedder: CountingEmbedder) -> None:
    report = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs())
    # Hashed while fsync ran, from a handle opened before the rename: still the final bytes.
    assert report.sha256 == hashlib.sha256(report.path.read_bytes()).hexdigest()
    assert [p for p in os.listdir(tmp_path) if ".tmp-" in p] == []


# -- arguments are checked before any work (issue #8) -----------------------------------


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_an_existing_target_is_never_replaced(tmp_path: Path, embedder: CountingEmbedder) -> None:
    # As root against /dev/null, the device was replaced by an index file. Here: a
    # FIFO (a device node stand-in), a plain file, a folder and a dangling symlink.
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "folder").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    for name in ("fifo", "notes.txt", "folder", "link"):
        with pytest.raises(ConflictError, match="already exists") as caught:
            build(tmp_path / name, embedder, upserts=faq_docs())
        assert caught.value.hint
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "fifo").is_fifo() and (tmp_path / "link").is_symlink() and (tmp_path / "folder").is_dir()
    assert sorted(os.listdir(tmp_path)) == ["fifo", "folder", "link", "notes.txt"]  # no batch or temp files
    assert embedder.embedded == []


def test_a_file_made_at_the_target_while_the_build_runs_is_kept(tmp_path: Path, embedder: CountingEmbedder) -> None:
    target = tmp_path / "v1.sqlite"

    def someone_else_writes_there(phase: str, percent: float) -> None:
        if phase == "building_index" and not target.exists():
            target.write_text("theirs")

    with pytest.raises(ConflictError, match="already exists"):
        build(target, embedder, upserts=faq_docs(), progress=someone_else_writes_there)
    assert target.read_text() == "theirs"  # linked into place only if the name is free
    assert sorted(os.listdir(tmp_path)) == ["v1.sqlite"]


def test_a_version_is_never_built_over_its_base(tmp_path: Path, embedder: CountingEmbedder) -> None:
    v1 = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs()).path
    before = file_bytes(tmp_path)
    with pytest.raises(InvalidArgumentError, match="is the base file"):
        build(v1, embedder, 2, base=v1, upserts=[DocumentInfo(id="new", text="t")])
    with pytest.raises(InvalidArgumentError, match="is the base file"):  # the same file by another name
        build(tmp_path / "." / "v1.sqlite", embedder, 2, base=v1, deletes=["bt-1"])
    assert file_bytes(tmp_path) == before
    assert IndexReader(v1).version == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"index_name": "../x"}, InvalidNameError, "may use only"),
        ({"index_name": ""}, InvalidNameError, "non-empty"),
        ({"version": Version(0)}, InvalidArgumentError, "at least 1"),
        ({"version": 0}, InvalidArgumentError, "at least 1"),
        ({"version": True}, InvalidArgumentError, "at least 1"),
        ({"version": "1"}, InvalidArgumentError, "at least 1"),
        ({"embedder": None}, InvalidArgumentError, "must be an Embedder"),
    ],
)
def test_bad_build_arguments_are_typed_errors(tmp_path: Path, kwargs: dict, error: type, match: str) -> None:
    args = {"embedder": HashedNgramEmbedder(), "index_name": "faq", "version": Version(1), **kwargs}
    with pytest.raises(error, match=match):
        build_version(tmp_path / "v1.sqlite", upserts=faq_docs(), **args)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", [5, None, b"v1.sqlite"])
def test_a_target_that_is_no_path_is_a_typed_error(tmp_path: Path, embedder: CountingEmbedder, path: object) -> None:
    with pytest.raises(InvalidArgumentError, match="must be a path"):
        build(path, embedder, upserts=faq_docs())  # type: ignore[arg-type]


def test_a_nul_in_a_path_is_a_typed_error(tmp_path: Path, embedder: CountingEmbedder) -> None:
    with pytest.raises(InvalidArgumentError, match="NUL"):
        build(tmp_path / "a\x00b", embedder, upserts=faq_docs())
    v1 = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs()).path
    with pytest.raises(InvalidArgumentError, match="NUL"):
        build(tmp_path / "v2.sqlite", embedder, 2, base=str(v1) + "\x00")
    assert sorted(os.listdir(tmp_path)) == ["v1.sqlite"]


def test_a_target_under_a_file_is_a_typed_error(tmp_path: Path, embedder: CountingEmbedder) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(InvalidArgumentError, match="not a folder"):
        build(tmp_path / "plain" / "sub" / "v1.sqlite", embedder, upserts=faq_docs())
    assert (tmp_path / "plain").read_text() == "x"


def test_a_missing_base_is_index_not_found(tmp_path: Path, embedder: CountingEmbedder) -> None:
    with pytest.raises(IndexNotFoundError, match="no index file"):
        build(tmp_path / "v2.sqlite", embedder, 2, base=tmp_path / "missing")
    os.mkfifo(tmp_path / "fifo")  # not opened: SQLite would block on it
    with pytest.raises(CorruptIndexError, match="not a file"):
        build(tmp_path / "v2.sqlite", embedder, 2, base=tmp_path / "fifo")
    assert sorted(os.listdir(tmp_path)) == ["fifo"]


def test_a_base_of_another_index_or_a_newer_version_is_refused(tmp_path: Path, embedder: CountingEmbedder) -> None:
    v1 = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs()).path
    v3 = build(tmp_path / "v3.sqlite", embedder, 3, base=v1, deletes=["bt-1"]).path  # gaps are allowed
    before = file_bytes(tmp_path)
    embedder.embedded.clear()
    new = [DocumentInfo(id="new", text="t")]
    with pytest.raises(InvalidArgumentError, match="not 'other'"):
        build_version(tmp_path / "o2.sqlite", embedder=embedder, index_name="other", version=Version(2), base=v1, upserts=new)
    with pytest.raises(InvalidArgumentError, match="must be newer") as caught:
        build(tmp_path / "v2.sqlite", embedder, 2, base=v3, upserts=new)
    assert "version 4" in str(caught.value.hint)
    with pytest.raises(InvalidArgumentError, match="must be newer"):
        build(tmp_path / "v1b.sqlite", embedder, 1, base=v1, upserts=new)
    assert file_bytes(tmp_path) == before and embedder.embedded == []


def test_build_from_batch_checks_its_arguments_too(tmp_path: Path, embedder: CountingEmbedder) -> None:
    v1 = build(tmp_path / "v1.sqlite", embedder, upserts=faq_docs()).path
    before = file_bytes(tmp_path)
    with pytest.raises(InvalidArgumentError, match="is the base file"):
        build_from_batch(v1, embedder=embedder, index_name="faq", version=Version(2), batch=tmp_path / "b", base=v1)
    assert file_bytes(tmp_path) == before
