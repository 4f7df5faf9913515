"""The service: the "cloud" side of mosslite, one behaviour behind both transports.

``Service`` (core.py) is the facade every caller holds: the in-process transport
calls its methods directly, the HTTP app (http.py) over the wire.
"""

from __future__ import annotations

from .core import CATALOG_FILE, JobListener, Service
from .layout import manifest_key, version_key

__all__ = ["CATALOG_FILE", "JobListener", "Service", "manifest_key", "version_key"]
