"""Splunk HTTP Event Collector destinations.

The destination's URL is the collector's event endpoint as the user gives it, e.g.
``https://splunk.example.com:8088/services/collector/event``. One payload is one POST in
HEC's batch format: one JSON object per event, concatenated (newline separated, no
commas, no array)::

    {"time": 1795635997.462, "source": "auditlog", "sourcetype": "auditlog:event",
     "index": "audit", "event": {...the event as the other destinations get it...}}

The account's integrity records (docs/integrity.md, "Streamed copies") travel among the
events in stream order, each as its own HEC event with sourcetype ``auditlog:integrity``
and no ``time``.

``time`` is the event's ``occurred_at`` in epoch seconds (left out, so Splunk uses the
arrival time, for an event without a readable one); ``index`` only when the destination
names one; no ``host`` (an audit event has no originating host). The body is gzipped
(``Content-Encoding: gzip``, which HEC accepts) when the payload is.

The sender rebuilds the events from the payload's body, so the worker gives HEC
destinations NDJSON payloads (``format="ndjson"``, the default; a JSON array is read as
well). Headers: ``Authorization: Splunk <token>``; ``X-Splunk-Request-Channel``, a UUID
derived from the tenant and destination id (the same on every worker, so HEC's channel
based features, indexer acknowledgement among them, see one client); and the payload's
``X-Auditlog-Idempotency-Key``. HEC itself does not drop duplicates: a retried payload can
be indexed twice, and searches can deduplicate on ``event.event_id`` (or on the key, where
a proxy in front of HEC keeps it). A 200 is taken as delivered: indexer acknowledgements
(``ackId``) are not polled.

HEC answers errors as ``{"text": ..., "code": n}``; the message names the code with what to
do. 400 (invalid data, wrong index), 401 and 403 (token) are permanent; 503 (server busy)
and 5xx are retryable, honouring ``Retry-After``.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sinks.destinations.model import Destination, SplunkHecTarget
from sinks.destinations.secrets import SecretBox
from sinks.encoding import GZIP_LEVEL
from sinks.retry import classify_http_status, parse_retry_after
from sinks.senders.base import (
    Payload,
    PermanentDeliveryError,
    Receipt,
    RetryableDeliveryError,
)
from sinks.senders.http import HttpAnswer, PinnedHttpClient
from sinks.senders.webhook import DESTINATION_HEADER, TENANT_HEADER, open_secret
from sinks.signing import IDEMPOTENCY_HEADER, idempotency_key

CHANNEL_HEADER = "X-Splunk-Request-Channel"
INTEGRITY_SOURCETYPE = "auditlog:integrity"
"""The sourcetype of the account's integrity records (the log copy) among its events."""
# The namespace of channel ids (uuid5 of "<tenant>/<destination id>"); never change it.
CHANNEL_NAMESPACE = uuid.UUID("5b0f6a8e-3f0c-5c52-9a59-6a6f1d2f0e41")

# HEC status codes (the "code" of an error answer) and what to do about them.
HEC_HINTS: Mapping[int, str] = {
    1: "the token is disabled: enable it in Splunk or give the destination another token",
    2: "no token was accepted: check the destination's token",
    3: "invalid authorization: check the destination's token",
    4: "invalid token: check the destination's token",
    5: "HEC received no data",
    6: "HEC could not parse the events",
    7: "the token may not write to this index: allow the index on the token, or change "
    "the destination's index",
    8: "Splunk had an internal error",
    9: "the HEC server is busy",
    10: "this HEC token requires a data channel",
    11: "HEC refused the data channel",
    12: "HEC needs an event field",
    13: "HEC refused a blank event field",
    14: "indexer acknowledgement is disabled for this token",
    15: "HEC could not handle the indexed fields",
    16: "query string authorization is not enabled",
}


def channel_id(destination: Destination) -> str:
    """The destination's HEC channel: stable across workers and restarts."""
    return str(uuid.uuid5(CHANNEL_NAMESPACE, f"{destination.tenant_id}/{destination.id}"))


def payload_events(payload: Payload) -> Iterator[Any]:
    """The events a payload holds, decoded; :class:`PermanentDeliveryError` when the body
    is not gzip/plain NDJSON or a JSON array."""
    try:
        raw = gzip.decompress(payload.body) if payload.content_encoding == "gzip" else payload.body
        if payload.content_type == "application/json":
            events = json.loads(raw)
            if not isinstance(events, list):
                raise ValueError("a JSON payload must be an array of events")
            yield from events
            return
        for line in raw.splitlines():
            if line.strip():
                yield json.loads(line)
    except (OSError, EOFError, ValueError) as exc:  # bad gzip, bad JSON, bad UTF-8
        raise PermanentDeliveryError(
            f"the payload for HEC is not readable NDJSON ({type(exc).__name__}: {exc})"
        ) from exc


def _epoch_s(event: Any) -> float | None:
    occurred_at = event.get("occurred_at") if isinstance(event, dict) else None
    if not isinstance(occurred_at, str):
        return None
    try:
        when = datetime.fromisoformat(occurred_at)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp(), 3)


def hec_body(target: SplunkHecTarget, events: Iterator[Any], copies: Collection[int] = ()) -> bytes:
    """Events in HEC's batch format (uncompressed); the items at positions ``copies`` are
    integrity records, sent with sourcetype ``auditlog:integrity`` and no time."""
    lines: list[bytes] = []
    for position, event in enumerate(events):
        wrapped: dict[str, Any] = {}
        copy = position in copies
        at = None if copy else _epoch_s(event)
        if at is not None:
            wrapped["time"] = at
        wrapped["source"] = target.source
        wrapped["sourcetype"] = INTEGRITY_SOURCETYPE if copy else target.sourcetype
        if target.index is not None:
            wrapped["index"] = target.index
        wrapped["event"] = event
        lines.append(json.dumps(wrapped, separators=(",", ":"), ensure_ascii=False).encode())
    return b"\n".join(lines) + b"\n" if lines else b""


def _hec_reply(body: bytes) -> tuple[int, str] | None:
    try:
        reply = json.loads(body)
    except ValueError:
        return None
    if not isinstance(reply, dict) or not isinstance(reply.get("code"), int):
        return None
    return int(reply["code"]), str(reply.get("text", ""))[:200]


class SplunkHecSender:
    """Delivers to a :class:`SplunkHecTarget`. The token is opened here, once: raises
    :class:`PermanentDeliveryError` when it cannot be. ``client`` is shared and owned by
    the caller (``close`` leaves it open)."""

    def __init__(
        self, destination: Destination, secrets: SecretBox, client: PinnedHttpClient
    ) -> None:
        if not isinstance(destination.target, SplunkHecTarget):
            raise TypeError(f"destination {destination.id} is not a Splunk HEC destination")
        self._destination = destination
        self._target: SplunkHecTarget = destination.target
        self._token = open_secret(secrets, destination, "HEC token", destination.target.token)
        self._channel = channel_id(destination)
        self._client = client

    def request(self, payload: Payload) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the POST for ``payload``."""
        body = hec_body(self._target, payload_events(payload), frozenset(payload.copy_positions))
        headers = {
            "Authorization": f"Splunk {self._token.decode('utf-8', errors='replace')}",
            "Content-Type": "application/json",
            CHANNEL_HEADER: self._channel,
            IDEMPOTENCY_HEADER: idempotency_key(
                payload.tenant_id,
                payload.destination_id,
                topic=payload.topic,
                partition=payload.partition,
                first=payload.first_offset,
                last=payload.last_offset,
                replay_id=payload.replay_id,
            ),
            TENANT_HEADER: payload.tenant_id,
            DESTINATION_HEADER: payload.destination_id,
        }
        if payload.content_encoding == "gzip":
            body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
            headers["Content-Encoding"] = "gzip"
        return body, headers

    def send(self, payload: Payload) -> Receipt:
        body, headers = self.request(payload)
        answer = self._client.post(self._target.url, body, headers)
        self._check(answer)
        return Receipt(f"HTTP {answer.status} from {answer.host}")

    def _check(self, answer: HttpAnswer) -> None:
        error = classify_http_status(
            answer.status,
            parse_retry_after(answer.header("retry-after"), datetime.now(UTC)),
            body_snippet=answer.body_snippet([self._token]),
            origin=answer.host,
            location=answer.header("location"),
        )
        if error is None:
            return
        reply = _hec_reply(answer.body)
        if reply is None or 300 <= answer.status < 400:
            raise error
        code, text = reply
        if self._token:
            text = text.replace(self._token.decode("utf-8", errors="replace"), "[redacted]")
        hint = HEC_HINTS.get(code)
        message = f"Splunk HEC at {answer.host}: HTTP {answer.status}, code {code} ({text})"
        message += f": {hint}" if hint else ""
        if isinstance(error, RetryableDeliveryError):
            raise RetryableDeliveryError(message, retry_after_s=error.retry_after_s)
        raise PermanentDeliveryError(message)

    def close(self) -> None:
        """Nothing to release: the HTTP client belongs to the caller."""
