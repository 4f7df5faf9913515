"""schemathesis fuzzes every operation of a real ``mosslite serve`` from its own
OpenAPI document (issue #8: hostile input never crashes).

It sends what the document allows and what it does not (wrong types, missing
fields, odd characters, boundary values, unexpected methods, no key), with a
valid bearer key on the fuzzed project's paths, and checks every answer: never
a 5xx, and always as documented (status code, content type, headers, body
schema); what the document forbids is refused. Afterwards the server must still
answer a fixed request exactly as before.

Invariants of the test itself:
- Bounded for ``make test``: a fixed seed, deterministic generation, and
  MOSSLITE_FUZZ_EXAMPLES examples per operation (default ``EXAMPLES``);
  ``make fuzz`` runs it with many more (MOSSLITE_FUZZ_SEED explores other seeds). It prints how many requests it made and
  what it found (``pytest -s`` shows it; a failure shows it anyway).
- The fuzzer holds the key of project ``fuzz`` only, and may legitimately delete
  or rewrite anything there (it has an index ``faq`` to work on). The fixed
  documents live in project ``bystander``, whose key it never sees: a request of
  the fuzzer that changed them would be a bug.
"""

from __future__ import annotations

import collections
import copy
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from hypothesis import strategies as st
from schemathesis.engine import Status, events

from ..client.conftest import Server, free_port

EXAMPLES = int(os.environ.get("MOSSLITE_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("MOSSLITE_FUZZ_SEED", "8"))  # (issue #8)
MODEL = "hashed-ngrams-256"
CHECKS = [
    "not_a_server_error",  # no 5xx, whatever was sent
    "status_code_conformance",  # every status is one the operation documents
    "content_type_conformance",
    "response_schema_conformance",  # bodies (errors too) match schemas/wire
    "response_headers_conformance",
    "negative_data_rejection",  # what the document forbids is refused (4xx)
    "missing_required_header",
    "ignored_auth",  # no key, or a wrong one, is refused
    "unsupported_method",  # an undocumented method is a 405
]
# Not "positive_data_acceptance": schema-valid input may still be refused with a 400 on
# grounds a schema cannot state (an unknown model, an embedding of the wrong dimension,
# a filter's grammar, a changeset that is not SQLite's).

#: Put in place of a generated version number (path or ?from=) in half the fuzzed cases. The
#: version crashes of issue #8 were text that str.isdigit() accepts and int() refuses ('²'),
#: or that int() chokes on (5,000 digits): hypothesis would hardly ever make either by itself.
HOSTILE_NUMBERS = ["²", "٣", "1" * 5000, "9" * 11, "-1", " 1", "0x10", "NaN"]


def docs(prefix: str, n: int = 5) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{i}", "text": f"{prefix} document {i} about refunds and shipping",
         "metadata": {"n": str(i)}, "payload": f"payload {i}"}
        for i in range(n)
    ]  # fmt: skip


@dataclass
class Fuzzed:
    """The server, the two projects' keys, and what the fixed request answered before fuzzing."""

    server: Server
    key: str
    bystander_key: str
    before: httpx.Response | None = None

    def fixed_request(self) -> httpx.Response:
        return httpx.post(
            f"{self.server.url}/v1/projects/bystander/indexes/fixed/docs/get",
            json={"ids": ["fixed0", "fixed2", "fixed4"]},
            headers={"Authorization": f"Bearer {self.bystander_key}"},
            timeout=30,
        )


def create_index(server: Server, project: str, key: str, name: str, documents: list[dict[str, Any]]) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"{server.url}/v1/projects/{project}", headers=auth, timeout=30) as http:
        created = http.post("/indexes", json={"name": name, "docs": documents, "model_id": MODEL})
        assert created.status_code == 202, created.text
        deadline = time.monotonic() + 60  # (only so that a broken build cannot hang the suite)
        while (job := http.get(f"/jobs/{created.json()['job_id']}").json())["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        assert job["status"] == "completed", job


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    server = Server(data=tmp_path_factory.mktemp("fuzz-data"), port=free_port())
    server.start(args=("--public-url", "http://127.0.0.1:9/fuzz"))  # (so PUT .../public may also succeed)
    try:
        found = Fuzzed(server, server.new_key("fuzz"), server.new_key("bystander"))
        create_index(server, "fuzz", found.key, "faq", docs("faq"))
        create_index(server, "bystander", found.bystander_key, "fixed", docs("fixed"))
        found.before = found.fixed_request()
        assert found.before.status_code == 200 and len(found.before.json()["docs"]) == 3
        yield found
    finally:
        server.stop()


@dataclass
class Findings:
    """Every request the fuzzer made (by operation and status) and every check that failed."""

    requests: collections.Counter[tuple[str, str, int]] = field(default_factory=collections.Counter)
    hostile: int = 0  # requests with one of HOSTILE_NUMBERS as a version
    network_errors: list[str] = field(default_factory=list)
    failures: dict[tuple[str, str, str, int | None], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.requests.values()) + len(self.network_errors)

    def report(self, seconds: float, described: set[tuple[str, str]]) -> str:
        by_class: collections.Counter[str] = collections.Counter()
        by_operation: collections.Counter[tuple[str, str]] = collections.Counter()
        for (method, path, status), n in self.requests.items():
            by_class[f"{status // 100}xx"] += n
            by_operation[(method, path) if (method, path) in described else ("other methods", "")] += n
        lines = [
            f"schemathesis: {self.total} requests in {seconds:.1f} s ({EXAMPLES} examples per operation, "
            f"seed {SEED}): {dict(sorted(by_class.items()))}, {len(self.network_errors)} network errors; "
            f"{self.hostile} with a hostile version number",
            *[f"  {n:6d}  {method} {path}" for (method, path), n in sorted(by_operation.items())],
            f"found: {len(self.failures)} distinct failures, {len(self.errors)} errors",
        ]
        for (check, method, path, status), sample in self.failures.items():
            lines.append(f"  {check}: {method} {path} -> {status}\n    {sample}")
        lines += [f"  error: {error}" for error in self.errors + self.network_errors]
        return "\n".join(lines)


def pinned_to_project(document: dict[str, Any], project: str) -> dict[str, Any]:
    """A copy of ``document`` whose ``{project}`` path parameter may only be ``project``,
    the one whose key the fuzzer holds (another project's path is a 404 before any
    parsing). A negative case then sends another name, refused with that 404. Pinning
    it with schemathesis' ``parameters`` instead sent ``project`` in place of a
    negative name, and a request accepted for it was reported as negative data let
    through (once a version file outlived the run's deletes: #12)."""
    pinned = copy.deepcopy(document)
    for item in pinned["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "project":
                    parameter["schema"] = {"const": project}
    return pinned


def run_schemathesis(fuzzed: Fuzzed, document: dict[str, Any]) -> Findings:
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "base-url": fuzzed.server.url,
            "headers": {"Authorization": f"Bearer {fuzzed.key}"},
            "generation": {"max-examples": EXAMPLES, "deterministic": True, "mode": "all"},
            "phases": {"stateful": {"enabled": False}},  # (the document has no links)
            "checks": {"enabled": False, **{check: {"enabled": True} for check in CHECKS}},
            "workers": 1,
            "request-timeout": 60,
        }
    )
    # from_dict, not from_url: from_url would leave the document's own URL out of the run.
    schema = schemathesis.openapi.from_dict(pinned_to_project(document, "fuzz"), config=config)
    findings = Findings()

    def sometimes_hostile(values: dict[str, Any] | None, name: str) -> st.SearchStrategy[dict[str, Any] | None]:
        if values is None or name not in values:
            return st.just(values)
        tokens = [None] * len(HOSTILE_NUMBERS) + HOSTILE_NUMBERS  # None: keep what was generated
        return st.sampled_from(tokens).map(lambda token: values if token is None else {**values, name: token})

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> st.SearchStrategy:
        return sometimes_hostile(path_parameters, "version")

    @schema.hook
    def flatmap_query(context: Any, query: dict[str, Any] | None) -> st.SearchStrategy:
        return sometimes_hostile(query, "from")

    @schema.hook
    def after_call(context: Any, case: Any, response: Any) -> None:
        findings.requests[(case.method, case.path, response.status_code)] += 1
        sent = [(case.path_parameters or {}).get("version"), (case.query or {}).get("from")]
        findings.hostile += any(value in HOSTILE_NUMBERS for value in sent if isinstance(value, str))

    @schema.hook
    def after_network_error(context: Any, case: Any, request: Any) -> None:
        findings.network_errors.append(f"{case.method} {case.formatted_path}")

    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status != Status.FAILURE:
                        continue
                    case = recorder.cases[case_id].value
                    interaction = recorder.interactions.get(case_id)
                    status = interaction.response.status_code if interaction and interaction.response else None
                    sample = case.as_curl_command(headers={"Authorization": "Bearer <key>"})
                    findings.failures.setdefault((check.name, case.method, case.path, status), sample[:500])
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            findings.errors.append(repr(event)[:2000])
    return findings


def test_fuzzing_every_operation_finds_no_5xx_and_nothing_undocumented(fuzzed: Fuzzed) -> None:
    document = httpx.get(f"{fuzzed.server.url}/v1/openapi.json", timeout=30).json()
    described = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    started = time.monotonic()
    findings = run_schemathesis(fuzzed, document)
    report = findings.report(time.monotonic() - started, described)
    print(report)
    assert not findings.failures and not findings.errors and not findings.network_errors, report
    # Every operation was called (each about EXAMPLES times or more, but fewer where hypothesis
    # runs out of distinct inputs: GET /v1/health takes none).
    called = {(method, path) for method, path, _ in findings.requests}
    assert described <= called, described - called
    assert findings.hostile > 0

    # Still up, and the bystander's documents answer exactly as before.
    assert fuzzed.server.process is not None and fuzzed.server.process.poll() is None
    after = fuzzed.fixed_request()
    assert fuzzed.before is not None
    assert (after.status_code, after.json()) == (fuzzed.before.status_code, fuzzed.before.json())
    health = httpx.get(f"{fuzzed.server.url}/v1/health", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"
