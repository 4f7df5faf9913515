"""The README's session walkthrough runs as written (embedded service, temp home)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
TITLE = "## Sessions: local, durable, pushed as diffs\n"


def test_readme_session_lifecycle_runs(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index(TITLE)
    section = text[start : text.find("\n## ", start + 1)]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    env = {**os.environ, "MOSSLITE_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = [line.split("# ")[-1].strip() for line in code.splitlines() if "print(" in line]
    assert done.stdout.splitlines() == expected
