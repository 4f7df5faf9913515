"""Version files in an S3-compatible object store, ``s3://bucket/prefix``, through obstore.

A key ``p/faq/0000000003.sqlite`` is the object ``<prefix>/p/faq/0000000003.sqlite``.
Endpoint, region and credentials come from the arguments, else from the standard
AWS environment variables (``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``).

The contract of ``base.Storage``, and what an object store adds:

- ``put`` is atomic for readers: a single PUT, or for a file over ``PART_BYTES`` a
  multipart upload, completed only once every part is stored. A failed part
  aborts the upload: no object, and no pending upload left to pay for.
- A 5xx answer, a dropped connection or a timeout is retried with exponential
  backoff and jitter (``RETRY``); what still fails raises UnavailableError (the
  HTTP app answers 503). A missing key is FileNotFoundError, as everywhere.
- ``iter_range`` reads with ranged GETs of at most ``RANGE_BYTES``: a slow reader
  (a download streamed through the service) never holds one long request open.
- ``list`` pages through the store's listing (1,000 keys a page). On a store whose
  listing is eventually consistent a key just written may be missing from it; the
  callers tolerate that: a version file missed by one prune is pruned by the next,
  and one missed by recovery is only garbage, never served.
- ``local_path`` is None: the service keeps local copies (versions.py), and
  ``signed_url`` lets clients download straight from the store (links.py).
- ``copy`` is a CopyObject (a public index's copies, public.py): the store copies,
  no byte passes through the service; one object of up to 5 GB.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from ...errors import InvalidArgumentError, UnavailableError
from .base import CHUNK_BYTES, Storage

#: Files larger than this go as a multipart upload, in parts of this size.
PART_BYTES = 8 << 20
#: Parts of one upload in flight at once.
PART_CONCURRENCY = 4
#: The largest ranged GET of ``iter_range``.
RANGE_BYTES = 8 << 20
#: Up to 6 retries, 0.1 s doubling to at most 5 s, never past 60 s after the first try.
RETRY: dict[str, Any] = {
    "max_retries": 6,
    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2},
    "retry_timeout": timedelta(seconds=60),
}
#: A request (one part, one range) that takes longer than this is dead: retried.
REQUEST_TIMEOUT_S = 60.0


class S3Storage(Storage):
    """Objects under ``prefix`` in ``bucket``. Example::

        storage = S3Storage("mosslite", "prod", endpoint="http://127.0.0.1:8333")
    """

    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        credentials: tuple[str, str] | None = None,
        retry: dict[str, Any] | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        from obstore.store import S3Store  # (only a service that stores in S3 loads it)

        if not bucket:
            raise InvalidArgumentError("an s3:// storage URL names a bucket: s3://BUCKET/PREFIX")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        settings: dict[str, Any] = {"virtual_hosted_style_request": False}
        if endpoint:
            settings["endpoint"] = endpoint
        if region:
            settings["region"] = region
        if credentials:  # (else from the environment)
            settings["access_key_id"], settings["secret_access_key"] = credentials
        # allow_http: an http:// endpoint, as a store on the same host or network has.
        client = {"connect_timeout": "5s", "timeout": f"{request_timeout_s}s", "allow_http": True}
        self._store = S3Store(
            bucket, prefix=self.prefix or None, client_options=client, retry_config=retry or RETRY, **settings
        )

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """obstore's errors as the contract's: FileNotFoundError (obstore's NotFoundError
        is one) for a missing key, UnavailableError for anything the retries did not fix."""
        from obstore.exceptions import BaseError, NotFoundError

        try:
            yield
        except NotFoundError:
            raise
        except BaseError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnavailableError(
                f"object store {self.url}: {first_line}", hint="check its endpoint, bucket and credentials"
            ) from exc

    def put(self, key: str, source: Path, *, move: bool = False) -> None:
        import obstore

        with self._errors():
            obstore.put(self._store, key, Path(source), chunk_size=PART_BYTES, max_concurrency=PART_CONCURRENCY)
        if move:
            Path(source).unlink()

    def put_bytes(self, key: str, data: bytes, *, cache_control: str | None = None) -> None:
        import obstore

        attributes: Any = {"Cache-Control": cache_control} if cache_control else None
        with self._errors():
            obstore.put(self._store, key, bytes(data), use_multipart=False, attributes=attributes)

    def copy(self, source_key: str, key: str) -> None:
        """CopyObject: the store copies it, no byte passes through here."""
        import obstore

        with self._errors():
            obstore.copy(self._store, source_key, key)

    def read_bytes(self, key: str) -> bytes:
        import obstore

        with self._errors():
            return bytes(obstore.get(self._store, key).bytes())

    def size(self, key: str) -> int:
        import obstore

        with self._errors():
            return int(obstore.head(self._store, key)["size"])

    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        import obstore

        size = self.size(key)  # (also the FileNotFoundError of a missing key, at the first next())
        end = size if end is None else min(end, size)
        while start < end:
            stop = min(start + RANGE_BYTES, end)
            with self._errors():
                data = obstore.get_range(self._store, key, start=start, end=stop)
            view = memoryview(data)
            for offset in range(0, len(view), CHUNK_BYTES):
                yield bytes(view[offset : offset + CHUNK_BYTES])
            start = stop

    def delete(self, key: str) -> None:
        import obstore

        with contextlib.suppress(FileNotFoundError), self._errors():
            obstore.delete(self._store, key)

    def list(self, prefix: str) -> list[str]:
        import obstore

        with self._errors():
            return sorted(meta["path"] for page in obstore.list(self._store, prefix=prefix or None) for meta in page)

    def signed_url(self, key: str, expires_in_s: int) -> str:
        import obstore

        with self._errors():
            return obstore.sign(self._store, "GET", key, timedelta(seconds=expires_in_s))


def s3_location(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix``."""
    rest = url.partition("://")[2]
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")
