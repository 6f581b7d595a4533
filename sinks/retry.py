"""When to try a failed delivery again, and what an HTTP answer means for retrying.

Pure functions, no clock and no sleeping: the worker owns retries and passes in the time
(``now``) and the randomness (``rng``).

- :func:`next_delay`: the backoff (:class:`runtime.backoff.Backoff`, shared with the
  writer), but at least what the destination asked for in ``Retry-After`` (a 429 or 503),
  itself capped at :data:`MAX_RETRY_AFTER_S` so a
  destination cannot stall its deliveries for days by saying so.
- :func:`parse_retry_after`: both forms of the header (delta-seconds, HTTP-date).
- :func:`classify_http_status`: 2xx is success; 408, 425, 429 and 5xx are retryable;
  redirects (never followed) and the other 4xx are permanent, with a message saying what
  is wrong and what to do.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from runtime.backoff import Backoff, UniformSource
from sinks.senders.base import PermanentDeliveryError, RetryableDeliveryError

# The longest a destination's Retry-After is honoured: one hour. Longer asks are treated
# as one hour (the destination is retried then, and asks again if it must).
MAX_RETRY_AFTER_S = 3600.0

# How much of an error answer's body goes into an error message.
SNIPPET_CHARS = 300

RETRYABLE_STATUSES = frozenset({408, 425, 429})


def next_delay(
    error: RetryableDeliveryError, attempt: int, backoff: Backoff, rng: UniformSource
) -> float:
    """How long to wait before retrying after ``error``: the jittered backoff, or the
    destination's ``retry_after_s`` when that is longer; a ``retry_after_s`` beyond
    :data:`MAX_RETRY_AFTER_S` counts as that maximum."""
    jittered = backoff.delay(attempt, rng)
    if error.retry_after_s is None:
        return jittered
    asked = min(max(error.retry_after_s, 0.0), MAX_RETRY_AFTER_S)
    return max(asked, jittered)


_DELTA_SECONDS = re.compile(r"\d{1,12}")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (``"120"`` or an HTTP-date such as
    ``"Wed, 21 Oct 2026 07:28:00 GMT"``, relative to ``now``); a date in the past gives
    0.0. None when the header is absent or unreadable. A naive ``now`` is taken as UTC."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def bounded_snippet(
    body: bytes, *, redact: Iterable[bytes] = (), limit: int = SNIPPET_CHARS
) -> str:
    """The start of an answer's body for an error message: decoded leniently, whitespace
    collapsed, at most ``limit`` characters, with every ``redact`` value (the secrets the
    request carried, should the destination echo one) replaced by ``[redacted]``."""
    text = body[: limit * 4].decode("utf-8", errors="replace")
    for secret in redact:
        if secret:
            text = text.replace(secret.decode("utf-8", errors="replace"), "[redacted]")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _where(location: str) -> str:
    """A redirect target without its query and fragment (they may hold tokens)."""
    parts = urlsplit(location)
    if not parts.scheme or not parts.netloc:
        return location.split("?", 1)[0].split("#", 1)[0][:200]
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:200]


_PERMANENT_HINTS = {
    400: "the destination rejected the request as invalid",
    401: "the destination refused the request's credentials (check its secret or token)",
    403: "the destination refused the request (check its secret or token, and its access rules)",
    404: "the URL does not exist at the destination (check the destination's URL)",
    405: "the URL does not accept POST (check the destination's URL)",
    410: "the URL no longer exists at the destination (check the destination's URL)",
    413: "the payload is too large for the destination: lower the destination's batch max_bytes",
    415: "the destination does not accept this content type or encoding (check the "
    "destination's format and compression)",
    422: "the destination could not process the payload",
}


def classify_http_status(
    status: int,
    retry_after_s: float | None = None,
    *,
    body_snippet: str = "",
    origin: str = "the destination",
    location: str | None = None,
) -> RetryableDeliveryError | PermanentDeliveryError | None:
    """What an HTTP answer means for the delivery: None for 2xx (delivered), a
    :class:`RetryableDeliveryError` for 408, 425, 429, 5xx and anything unexpected
    (carrying ``retry_after_s``), a :class:`PermanentDeliveryError` for 3xx (redirects are
    never followed) and the other 4xx. ``body_snippet`` (already bounded, see
    :func:`bounded_snippet`) and ``origin`` (the host) go into the message; ``location`` is a
    redirect's target, shown without its query."""
    said = f": {body_snippet}" if body_snippet else ""
    head = f"HTTP {status} from {origin}"
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        target = f" to {_where(location)}" if location else ""
        return PermanentDeliveryError(
            f"{head}: a redirect{target}; redirects are not followed, so set the "
            "destination's URL to the address that answers"
        )
    if status in RETRYABLE_STATUSES or 500 <= status < 600:
        wait = f" (asked to wait {retry_after_s:g} s)" if retry_after_s is not None else ""
        return RetryableDeliveryError(f"{head}{wait}{said}", retry_after_s=retry_after_s)
    if 400 <= status < 500:
        hint = _PERMANENT_HINTS.get(status, "the destination refused the request")
        return PermanentDeliveryError(f"{head}: {hint}{said}")
    return RetryableDeliveryError(f"{head}: unexpected status{said}")
