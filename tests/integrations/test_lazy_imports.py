"""`import mosslite` never pays for a framework: only importing an integration imports it."""

from __future__ import annotations

import json
import subprocess
import sys

FRAMEWORKS = ("langchain_core", "llama_index")


def imported_after(code: str) -> list[str]:
    """The framework (and integration) modules a fresh interpreter holds after ``code``."""
    watched = (*FRAMEWORKS, "mosslite.integrations.")
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith({watched!r}))))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_mosslite_and_its_client_import_no_framework() -> None:
    code = "import mosslite; mosslite.SyncMossClient; mosslite.QueryOptions; import mosslite.integrations"
    assert imported_after(code) == []


def test_each_integration_imports_its_own_framework_only() -> None:
    langchain = imported_after("import mosslite.integrations.langchain")
    assert any(m.startswith("langchain_core") for m in langchain)
    assert not any(m.startswith("llama_index") for m in langchain)
    llama_index = imported_after("import mosslite.integrations.llama_index")
    assert any(m.startswith("llama_index") for m in llama_index)
    assert not any(m.startswith("langchain_core") for m in llama_index)
