"""A client against a newer service: every JSON object the server answers carries a
field this client does not know (tests/plugins/mosslite_newer_service.py), as a
release that adds one would. A service is upgraded before its devices; each call
here must still work (wire.from_answer), while what a caller sends stays strict."""

from __future__ import annotations

from pathlib import Path

import pytest

from mosslite import DocumentInfo, QueryOptions, SyncMossClient
from mosslite.errors import IndexNotFoundError, InvalidArgumentError
from mosslite.wire import from_answer, from_dict
from mosslite.types import Manifest

from ..client.conftest import Server, free_port
from ..sync.conftest import MODEL, versioned_docs


@pytest.fixture
def newer_server(tmp_path: Path):
    server = Server(data=tmp_path / "srv", port=free_port())
    server.start(args=("--plugin", "mosslite_newer_service"))
    yield server
    server.stop()


def test_every_call_works_against_a_service_that_answers_more_fields(newer_server: Server, tmp_path: Path) -> None:
    key = newer_server.new_key("p")
    with SyncMossClient("p", key, url=newer_server.url, cache_path=tmp_path / "home") as client:
        job = client.create_index("faq", versioned_docs(1), model_id=MODEL)
        assert client.wait_for_job(job.job_id, timeout_seconds=30).status == "completed"
        assert [i.name for i in client.list_indexes()] == ["faq"] and client.get_index("faq").doc_count == 20
        assert client.load_index("faq", auto_refresh=False).version == 1  # the manifest
        assert client.query("faq", "item 3", QueryOptions(top_k=1, alpha=0.0)).docs[0].id == "d3"
        assert [d.id for d in client.get_docs("faq", ids=["d1", "d2"])] == ["d1", "d2"]
        added = client.add_docs("faq", [DocumentInfo(id="n1", text="a newer item")])
        assert client.wait_for_job(added.job_id, timeout_seconds=30).status == "completed"
        assert client.load_index("faq").version == 2  # a refresh, by page patch
        assert sorted(v.version for v in client.list_versions("faq")) == [1, 2]
        with pytest.raises(IndexNotFoundError):  # its errors come through as before
            client.get_index("nosuch")


def test_what_a_caller_sends_stays_strict() -> None:
    manifest = {"index_name": "faq", "version": 1, "sha256": "0" * 64, "size_bytes": 1, "doc_count": 1,
                "model_id": MODEL, "dimension": 256, "created_at": "1", "typo_field": 1}  # fmt: skip
    with pytest.raises(InvalidArgumentError, match="typo_field"):
        from_dict(Manifest, manifest)
    assert from_answer(Manifest, manifest).version == 1
    with pytest.raises(InvalidArgumentError, match="missing field"):  # what a record needs must still be there
        from_answer(Manifest, {"index_name": "faq", "typo_field": 1})
