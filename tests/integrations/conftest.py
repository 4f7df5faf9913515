"""The framework stores run over both transports, as the client suite does: the embedded
service, and the real `mosslite serve` of tests/conftest.py. Each test's `client` is of a
new project in a home of its own, so every store starts empty."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ..client.conftest import client, target  # noqa: F401  (the client suite's fixtures)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def seen_within(check: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    """Whether ``check()`` comes true before ``timeout_s``: asked every 20 ms (a bound on
    work that is already due, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
