"""The object store of the S3 tests is a real one: SeaweedFS checks signatures."""

from __future__ import annotations

import obstore
import pytest
from obstore.store import S3Store

from .seaweedfs import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, SeaweedFS


def store(seaweedfs: SeaweedFS, secret: str) -> S3Store:
    return S3Store(BUCKET, endpoint=seaweedfs.endpoint, region=REGION, access_key_id=ACCESS_KEY,
                   secret_access_key=secret, client_options={"allow_http": True}, retry_config={"max_retries": 0})


def test_seaweedfs_serves_s3_and_refuses_a_wrong_secret(seaweedfs: SeaweedFS) -> None:
    obstore.put(store(seaweedfs, SECRET_KEY), "smoke/object", b"bytes")
    assert bytes(obstore.get(store(seaweedfs, SECRET_KEY), "smoke/object").bytes()) == b"bytes"
    with pytest.raises(Exception, match="(?i)signature|denied|forbidden"):
        obstore.get(store(seaweedfs, "not-the-secret"), "smoke/object")
    obstore.delete(store(seaweedfs, SECRET_KEY), "smoke/object")
