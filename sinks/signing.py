"""Signed webhook deliveries: what a receiver checks to trust a POST and drop a replay.

Every POST to a webhook destination carries:

- ``X-Auditlog-Timestamp``: seconds since the epoch when the request was signed;
- ``X-Auditlog-Signature``: ``v1=<hex>``, HMAC-SHA256 with the destination's secret over
  ``"<timestamp>.<body>"`` (several ``v1=`` values, comma separated, while a secret is
  being rotated);
- ``X-Auditlog-Idempotency-Key``: derived from the tenant, the destination and the source
  offsets the body covers, so a redelivery of the same events carries the same key.

A receiver verifies in a few lines (see the README); :func:`verify` is the reference.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

TIMESTAMP_HEADER = "X-Auditlog-Timestamp"
SIGNATURE_HEADER = "X-Auditlog-Signature"
IDEMPOTENCY_HEADER = "X-Auditlog-Idempotency-Key"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """The request is not signed by a known secret, or its timestamp is too old or new."""


def idempotency_key(
    tenant_id: str,
    destination_id: str,
    *,
    topic: str,
    partition: int,
    first: int,
    last: int,
    replay_id: str | None = None,
) -> str:
    """The same events (same source offsets) to the same destination: the same key; a
    replay's batch (``replay_id``) has a key of its own, so a receiver that drops repeated
    keys does not drop a deliberate re-send that happens to cover a live batch's range."""
    material = f"{tenant_id}\n{destination_id}\n{topic}\n{partition}\n{first}\n{last}"
    if replay_id is not None:
        material += f"\nreplay {replay_id}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _mac(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Iterable[bytes], timestamp: int | None = None) -> dict[str, str]:
    """The signing headers for ``body``: one ``v1`` signature per secret (the current one
    first; an old one too while receivers switch over)."""
    at = int(time.time()) if timestamp is None else timestamp
    signatures = ",".join(f"v1={_mac(secret, at, body)}" for secret in secrets)
    if not signatures:
        raise ValueError("at least one signing secret is needed")
    return {TIMESTAMP_HEADER: str(at), SIGNATURE_HEADER: signatures}


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check a received request; returns its timestamp. Raises :class:`SignatureError` for
    a missing or malformed header, a stale or future timestamp (replays), or no matching
    signature. Header names are matched case-insensitively."""
    lowered = {name.lower(): value for name, value in headers.items()}
    raw_timestamp = lowered.get(TIMESTAMP_HEADER.lower())
    raw_signature = lowered.get(SIGNATURE_HEADER.lower())
    if raw_timestamp is None or raw_signature is None:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not an integer: {raw_timestamp!r}") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(
            f"timestamp {timestamp} is more than {tolerance_s} s away from now ({int(current)})"
        )
    expected = _mac(secret, timestamp, body)
    offered = [
        part.strip()[3:] for part in raw_signature.split(",") if part.strip().startswith("v1=")
    ]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise SignatureError("no v1 signature matches this secret")
    return timestamp
