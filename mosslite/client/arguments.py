"""The client's argument checks: seconds, job ids, and how a bad value is shown.

Invariant (issue #8): every argument is checked before any request is made, and a
bad one is an InvalidArgumentError naming it.
"""

from __future__ import annotations

import math

from ..errors import InvalidArgumentError
from ..validation import MAX_ID_CHARS

#: The shortest refresh timer: below it, an auto-refreshed index polls the service
#: in a busy loop (1e-9 s once took ~2 s of CPU in 3 s). The default is 600 s.
MIN_POLLING_INTERVAL_S = 0.1
#: The shortest pause between two job checks of ``wait_for_job``.
MIN_JOB_POLL_S = 0.005
#: The longest interval, pause or timeout any call takes: a week.
MAX_SECONDS = 7 * 24 * 3600.0


def _number(value: object) -> float:
    """A number of seconds as a float (NaN for what is not a number: the caller's range
    check refuses it). Any real number will do (numpy's, Decimal); a bool or a string
    is a slip, although float() would take them. An int too large for a float is
    infinite (float() raised OverflowError)."""
    if isinstance(value, (bool, str, bytes)):
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return math.inf
    except (TypeError, ValueError):
        return math.nan


def seconds_arg(value: object, what: str, low: float, high: float = MAX_SECONDS) -> float:
    """``value`` as a float from ``low`` to ``high`` seconds. Invariant (issue #8):
    anything else (NaN, infinite, 10**400, a bool, a string, None) is an
    InvalidArgumentError naming ``what``, raised before any request is made."""
    number = _number(value)
    if not low <= number <= high:
        raise InvalidArgumentError(
            f"{what} must be a number of seconds from {low:g} to {high:g}, got {shown(value)}"
        )
    return number


def shown(value: object) -> str:
    """A short repr for an error message (an int of over 4300 digits has none)."""
    try:
        text = repr(value)
    except ValueError:
        return f"an int of {value.bit_length()} bits"  # type: ignore[attr-defined]
    return text if len(text) <= 60 else text[:57] + "..."


def job_id_arg(job_id: object) -> str:
    """A job id the service can look up. Invariant (issue #8): a non-empty str of at
    most MAX_ID_CHARS characters that UTF-8 encodes (a lone surrogate fits neither
    SQLite nor a URL); anything else is an InvalidArgumentError before any request."""
    if not isinstance(job_id, str) or not job_id or len(job_id) > MAX_ID_CHARS:
        raise InvalidArgumentError(
            f"job_id must be a non-empty string of at most {MAX_ID_CHARS} characters, got {shown(job_id)}",
            hint="pass the job_id of a MutationResult",
        )
    try:
        job_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(
            f"job_id {job_id[:80]!r} holds a lone surrogate: no job has such an id",
            hint="pass the job_id of a MutationResult",
        ) from exc
    return job_id
