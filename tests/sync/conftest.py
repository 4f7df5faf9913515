"""A fresh `mosslite serve` process per test: refresh tests stop and restart it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..client.conftest import Server, free_port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(data=tmp_path / "srv", port=free_port())
    srv.start()
    yield srv
    srv.stop()
