"""The service: the "cloud" side of mosslite, one behaviour behind both transports.

``Service`` (core.py) is the facade every caller holds: the in-process transport
calls its methods directly, the HTTP app (http.py, with http_input.py) over the
wire. Behind it, each module keeps its own rules:

- intake.py: the checks a mutation passes before a job is queued;
- jobs.py: a job's life and the bounded pool; recovery.py: a start after a crash;
- build.py: one job's build, store and publish, under the index's flock (locks.py);
- versions.py: published versions, their readers and local copies, docs pages;
- retention.py: which version files and page maps storage keeps;
- pushes.py: session pushes; patch_store.py: page patches between versions;
- catalog.py (its SQL in catalog_sql.py), keys.py, batches.py, paging.py,
  layout.py, storage/: the records, keys, batch files, cursors and objects.
"""

from __future__ import annotations

from .core import CATALOG_FILE, JobListener, Service
from .layout import manifest_key, version_key

__all__ = ["CATALOG_FILE", "JobListener", "Service", "manifest_key", "version_key"]
