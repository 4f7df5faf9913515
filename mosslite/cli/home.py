"""Where everything lives on this machine, and the embedded service's view of a key.

One home (``$MOSSLITE_HOME``, else ``~/.mosslite``) holds everything the embedded
client keeps (issue #12: the README's Python tour and the CLI used different
folders for the same service, so a key made for one was unknown to the other)::

    <home>/config.json                  written by `mosslite init` ($MOSSLITE_CONFIG moves it)
    <home>/service/                     the embedded service's data folder (catalog, versions)
    <home>/cache/<source>/<project>/    downloaded index versions (MossClient.cache_dir), one
                                        <source> per service: embedded, or a folder per URL
    <home>/sessions/<project>/          local sessions (MossClient.session)

``mosslite init``, ``keys create`` and ``keys list`` default to ``<home>/service``,
the folder ``MossClient`` without a ``url`` uses; ``mosslite serve`` is told its
folder. Opening a service here never starts its jobs (``open_service``): a key
command must not resume builds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..client.embedded import HOME_ENV, default_home
from ..transport.local import LocalTransport

if TYPE_CHECKING:  # (imported when used: most commands never open a service here)
    from ..service import Service

#: The data folder of ``keys`` (and ``serve``), if no --data is given.
DATA_ENV = "MOSSLITE_DATA"
SERVICE_DIR = "service"
CACHE_DIR = "cache"
SESSIONS_DIR = "sessions"


def home_source() -> str:
    """Where the home came from, in words."""
    return f"environment {HOME_ENV}" if os.environ.get(HOME_ENV) else "default"


def embedded_data_dir() -> Path:
    """The embedded service's data folder: what ``MossClient`` without a ``url`` opens."""
    return default_home() / SERVICE_DIR


def cache_dir(project_id: str, url: str | None = None) -> Path:
    """Where ``MossClient(project_id, ..., url=url)`` keeps downloaded versions
    (``MossClient.cache_dir``), worked out without making a client: an embedded
    client would open the service and adopt its key, and ``info`` changes nothing."""
    if url:
        from ..transport.http import source_folder  # (httpx: ~90 ms an embedded command need not pay)

        source = source_folder(url)
    else:
        source = LocalTransport.source
    return default_home() / CACHE_DIR / source / project_id


def sessions_dir(project_id: str) -> Path:
    """Where ``MossClient.session`` keeps the project's sessions."""
    return default_home() / SESSIONS_DIR / project_id


def has_service(data_dir: Path) -> bool:
    from ..service import CATALOG_FILE

    return (data_dir / CATALOG_FILE).is_file()


@contextmanager
def open_service(data_dir: Path) -> Iterator[Service]:
    """The service of ``data_dir``, its jobs not started, closed after."""
    from ..service import Service

    service = Service(data_dir, start_jobs=False)
    try:
        yield service
    finally:
        service.close()


def key_status(project_id: str, key: str) -> tuple[str, int]:
    """What the embedded service makes of ``key`` for ``project_id``, and how many keys
    the project has there: ``("valid", n)``, ``("invalid", n)`` (the project has other
    keys), or ``("new", 0)`` (no service or no key yet: the first use adopts ``key``)."""
    data = embedded_data_dir()
    if not has_service(data):
        return "new", 0
    with open_service(data) as service:
        count = len(service.list_keys(project_id))
        if count == 0:
            return "new", 0
        return ("valid" if service.project_of_key(key) == project_id else "invalid"), count


def add_embedded_key(project_id: str) -> str:
    """A new key for ``project_id`` in the embedded service (``Service.create_key``)."""
    with open_service(embedded_data_dir()) as service:
        return service.create_key(project_id)


__all__ = [
    "DATA_ENV",
    "add_embedded_key",
    "cache_dir",
    "embedded_data_dir",
    "has_service",
    "home_source",
    "key_status",
    "open_service",
    "sessions_dir",
]
