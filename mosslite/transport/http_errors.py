"""The one boundary between httpx and ``mosslite.errors``, for requests and downloads alike.

Invariant: callers see only ``mosslite.errors``. httpx's connection errors and
timeouts become UnavailableError (TimeoutError_ for timeouts), and an error body
``{"error": {...}}`` is rebuilt as the same typed error the service raised,
chained with ``from``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from .. import errors
from ..errors import MossliteError, NotFoundError, TimeoutError_, UnauthorizedError, UnavailableError


@contextmanager
def mapping_httpx_errors() -> Iterator[None]:
    """httpx's exceptions as ours, chained (cf. httpx ``map_httpcore_exceptions``)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        service = service_of(exc)
        raise TimeoutError_(f"the service at {service} did not answer in time ({exc})", url=url_of(exc)) from exc
    except httpx.TransportError as exc:
        raise UnavailableError(
            f"cannot reach the service at {service_of(exc)} ({exc or type(exc).__name__})",
            hint="is `mosslite serve` running there? check --url / MOSS_URL, or retry later",
            url=url_of(exc),
        ) from exc
    except httpx.StreamError as exc:
        raise UnavailableError(f"the download stream broke: {exc!r}") from exc
    except httpx.DecodingError as exc:  # a compressed body (from a proxy) that does not decode
        raise UnavailableError(f"the answer could not be decoded: {exc!r}") from exc


def raise_for_status(response: httpx.Response) -> None:
    if response.is_success or response.status_code == 304:
        return
    try:
        body = response.json()
        error = errors.from_dict(body["error"])
    except (ValueError, KeyError, TypeError):  # not our error body (a proxy's page, say)
        error = error_for_status(response)
    raise error


def raise_unexpected(response: httpx.Response) -> None:
    """For a download's answer that is neither its body nor a resume: the typed error
    its status says, or UnavailableError for a status no download expects."""
    raise_for_status(response)
    raise UnavailableError(f"unexpected answer {response.status_code} to GET {response.request.url}")


def error_for_status(response: httpx.Response) -> MossliteError:
    what = f"{response.request.method} {response.request.url} answered {response.status_code}"
    if response.status_code == 401:
        return UnauthorizedError(what)
    if response.status_code == 404:
        return NotFoundError(what)
    if response.status_code >= 500:
        return UnavailableError(what)
    return MossliteError(what)


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise UnavailableError(f"the service answered with malformed JSON: {exc}") from exc


def service_of(exc: httpx.RequestError) -> str:
    """The scheme, host and port the failed request went to (not its whole path)."""
    try:
        url = exc.request.url
    except RuntimeError:  # raised without a request attached
        return "the given URL"
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def url_of(exc: httpx.RequestError) -> str:
    try:
        return str(exc.request.url)
    except RuntimeError:  # raised without a request attached
        return ""
