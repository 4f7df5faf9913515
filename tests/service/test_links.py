"""The manifest's download links (service/links.py): what the ETag covers, how long an
answer may be reused, and no links where storage cannot sign URLs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from mosslite.errors import InvalidArgumentError
from mosslite.service.catalog import VersionRecord
from mosslite.service.links import Links
from mosslite.service.storage import DirectoryStorage, S3Storage
from mosslite.types import Manifest

MANIFEST = Manifest(index_name="faq", version=3, sha256="ab" * 32, size_bytes=4096, doc_count=1,
                    model_id="hashed-ngrams-256", dimension=256, created_at="2026-01-01T00:00:00.000Z")
RECORD = VersionRecord(manifest=MANIFEST, storage_key="p/faq/0000000003.sqlite")
#: Signing is an HMAC computed locally: this store is never reached.
SIGNING = S3Storage("bucket", "pre", endpoint="http://127.0.0.1:9", region="us-east-1", credentials=("id", "secret"))


def test_links_open_the_version_and_its_map_for_their_lifetime() -> None:
    answer = Links(SIGNING, 900).answer(RECORD, now=1_000_000.5)
    assert answer.links is not None and answer.links.expires_at == 1_000_900
    version, pages = urlsplit(answer.links.version_url), urlsplit(answer.links.pages_url)
    assert version.path == "/bucket/pre/p/faq/0000000003.sqlite"
    assert pages.path == "/bucket/pre/p/faq/0000000003.sqlite.pages"
    assert parse_qs(version.query)["X-Amz-Expires"] == ["900"]
    assert answer.links.patch_from == 2 and answer.links.patch_url is not None
    assert urlsplit(answer.links.patch_url).path == "/bucket/pre/p/faq/0000000003.sqlite.from-2.patch"


def test_the_first_version_has_no_patch_link() -> None:
    first = VersionRecord(manifest=replace(MANIFEST, version=1), storage_key="p/faq/0000000001.sqlite")
    links = Links(SIGNING, 900).answer(first, now=1_000_000.5).links
    assert links is not None and (links.patch_url, links.patch_from) == (None, None)


def test_the_etag_is_the_versions_and_its_windows() -> None:
    links = Links(SIGNING, 900)  # windows of 300 s
    at = [links.answer(RECORD, now) for now in (600.0, 899.0, 900.0)]
    assert at[0].etag == at[1].etag == f"{MANIFEST.sha256}.2" != at[2].etag
    assert (at[0].max_age_s, at[1].max_age_s, at[2].max_age_s) == (300, 1, 300)  # to the window's end


def test_a_folder_gives_no_links_and_a_strong_etag(tmp_path: Path) -> None:
    answer = Links(DirectoryStorage(tmp_path)).answer(RECORD, now=5.0)
    assert (answer.links, answer.etag, answer.max_age_s) == (None, MANIFEST.sha256, None)


@pytest.mark.parametrize("lifetime", [0, 2, 3.5, True, "900"])
def test_a_lifetime_is_whole_seconds_of_at_least_three(lifetime) -> None:
    with pytest.raises(InvalidArgumentError, match="link_lifetime_s"):
        Links(SIGNING, lifetime)


def test_a_public_index_answer_names_its_manifest_and_has_an_etag_of_its_own(tmp_path: Path) -> None:
    url = "https://cdn.example.com/m/_public/p/faq/manifest.json"
    signed = Links(SIGNING, 900).answer(RECORD, now=600.0, public_manifest=url)
    assert signed.public_manifest == url and signed.etag == f"{MANIFEST.sha256}.public.2"
    plain = Links(DirectoryStorage(tmp_path)).answer(RECORD, now=5.0, public_manifest=url)
    assert (plain.public_manifest, plain.etag) == (url, f"{MANIFEST.sha256}.public")
