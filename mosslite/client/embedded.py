"""The embedded default: one in-process Service per data folder, and where that folder is.

``MossClient`` without a ``url`` runs the service core in this process, under
``cache_path`` or ``$MOSSLITE_HOME`` or ``~/.mosslite``. Every client on one folder
shares one Service (its job workers and catalog); they are closed at exit.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .._fs import user_path

if TYPE_CHECKING:
    from ..service import Service

HOME_ENV = "MOSSLITE_HOME"
DEFAULT_HOME = Path("~/.mosslite")

_services: dict[Path, Service] = {}
_services_lock = threading.Lock()


def default_home() -> Path:
    return user_path(os.environ.get(HOME_ENV) or DEFAULT_HOME, HOME_ENV)


def embedded_service(data_dir: Path) -> Service:
    """One Service per data folder per process: its job workers and catalog are shared
    by every client on that folder, and closed at exit."""
    from ..service import Service  # (a client of a server never loads the service)

    key = data_dir.resolve()
    with _services_lock:
        service = _services.get(key)
        if service is None:
            service = _services[key] = Service(key)
        return service


@atexit.register
def close_embedded_services() -> None:
    """Close every embedded service of this process (at exit, or between tests)."""
    with _services_lock:
        for service in _services.values():
            service.close()
        _services.clear()
