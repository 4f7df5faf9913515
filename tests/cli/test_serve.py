"""A server that talks (issue #12): `mosslite serve` prints a banner, logs each request
in uvicorn's access format and each refused key with its reason, says when it stops,
and answers a person at `/` and `/docs`."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from mosslite import DocumentInfo, SyncMossClient
from mosslite.service.storage import S3Storage
from mosslite_cli_helpers import CLI, Served, base_env

from ..seaweedfs import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS


def test_serve_prints_a_banner_logs_requests_and_a_refused_key_and_stops_cleanly(tmp_path: Path) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    data = tmp_path / "srv"
    served = Served(cli, "--data", str(data), "--host", "127.0.0.1", "--port", "0")
    try:
        assert served.stdout[0] == f"mosslite serving {served.url} (data: {data})\n"
        assert "storage: file://" in served.wait_for("storage:")
        assert f"{served.url}/docs" in served.wait_for("API docs:")

        root = httpx.get(served.url + "/")
        assert root.status_code == 200 and root.json()["docs"] == "/docs" and root.json()["version"]
        page = httpx.get(served.url + "/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "/v1/projects/{project}/indexes/{name}/docs/delete" in html and "create_index_request" in html
        assert "<script" not in html and "<link" not in html and " src=" not in html  # nothing fetched

        refused = httpx.get(served.url + "/v1/projects/p1/indexes", headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401
        served.wait_for('"GET /v1/projects/p1/indexes HTTP/1.1" 401')  # uvicorn's access format
        assert "the key is not valid for project 'p1'" in served.wait_for("401 GET /v1/projects/p1/indexes", stream="stderr")
        served.wait_for('"GET /docs HTTP/1.1" 200')
    finally:
        code = served.stop(signal.SIGINT)
    assert code == 0, served.stderr
    assert served.stdout[-1] == f"mosslite stopped on SIGINT; the service closed cleanly (data: {data})\n"
    assert not any("Traceback" in line for line in served.stderr)


def test_serve_quiet_without_the_access_log_and_on_sigterm(tmp_path: Path) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    served = Served(cli, "--data", str(tmp_path / "srv"), "--port", "0", "--no-access-log", "--log-level", "warning")
    try:
        assert httpx.get(served.url + "/v1/health").json()["status"] == "ok"
    finally:
        code = served.stop(signal.SIGTERM)
    assert code == 0, served.stderr
    assert served.stdout[-1].startswith("mosslite stopped on SIGTERM")
    assert not any("HTTP/1.1" in line for line in served.stdout)  # no access log
    assert not any(line.startswith("INFO") for line in served.stderr)  # nor uvicorn's info lines


def test_serve_stores_in_s3_and_names_the_store_but_never_its_secret(tmp_path: Path, seaweedfs: SeaweedFS) -> None:

    env = {**base_env(tmp_path / "home"), **seaweedfs.env()}
    cli = CLI(tmp_path, env)
    data = tmp_path / "srv"
    key = cli.ok("keys", "create", "--project", "p", "--data", str(data)).stdout.split()[-1]
    served = Served(cli, "--data", str(data), "--port", "0", "--storage", "s3://mosslite-tests/cli-serve")
    try:
        line = served.wait_for("storage:")
        assert f"storage: s3://mosslite-tests/cli-serve at {seaweedfs.endpoint};" in line
        with SyncMossClient("p", key, url=served.url, cache_path=tmp_path / "client") as client:
            job = client.create_index("faq", [DocumentInfo(id="a", text="stored in s3")], model_id="hashed-ngrams-256")
            client.wait_for_job(job.job_id, timeout_seconds=60)
        assert list((data / "storage").rglob("*.sqlite")) == []  # the version went to the store
        stored = S3Storage("mosslite-tests", "cli-serve", endpoint=seaweedfs.endpoint, region=REGION,
                           credentials=(ACCESS_KEY, SECRET_KEY)).list("p/")
        assert stored == ["p/faq/0000000001.sqlite", "p/faq/0000000001.sqlite.pages", "p/faq/manifest.json"]
    finally:
        code = served.stop(signal.SIGTERM)
    assert code == 0, served.stderr
    assert not any(env["AWS_SECRET_ACCESS_KEY"] in line for line in served.stdout + served.stderr)


def test_serve_refuses_an_unknown_storage_scheme(tmp_path: Path) -> None:
    cli = CLI(tmp_path, base_env(tmp_path / "home"))
    error = cli.fails("serve", "--data", str(tmp_path / "srv"), "--storage", "s4://bucket")
    assert "--storage" in error and "unknown storage scheme 's4'" in error
