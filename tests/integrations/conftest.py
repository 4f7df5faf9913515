"""The framework stores run over both transports, as the client suite does: the embedded
service, and the real `mosslite serve` of tests/conftest.py. Each test's `client` is of a
new project in a home of its own, so every store starts empty."""

from __future__ import annotations

import pytest

from ..client.conftest import client, target  # noqa: F401  (the client suite's fixtures)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
