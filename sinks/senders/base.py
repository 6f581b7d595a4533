"""The contract between the sink worker and a destination kind.

The worker hands a sender one :class:`Payload` at a time: an encoded batch of one
tenant's events from one source partition, covering offsets ``first_offset`` to
``last_offset``. ``send`` blocks until the destination acknowledged the whole payload or
raises:

- :class:`RetryableDeliveryError`: try again later (5xx, timeouts, connection refused,
  429/503 with ``retry_after_s`` when the destination said how long to wait);
- :class:`PermanentDeliveryError`: this will not succeed by retrying (most 4xx, a refused
  address, a missing bucket); the worker reports it and parks the destination.

Senders hold no batching or retry logic of their own; the worker owns both. A payload sent
twice (a retry, a replay) carries the same key material: S3 writes the same object key, a
webhook the same idempotency key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class AccountPart:
    """The events of one account in a partner destination's batch, encoded alone (S3 writes
    each account's events to an object under its own prefix), and the account's integrity
    records of the batch for the companion object beside it (None: none)."""

    account_id: str
    body: bytes
    record_count: int
    first_event_at: datetime
    copy_body: bytes | None = None


@dataclass(frozen=True)
class Payload:
    """One batch, encoded and ready to send. A partner destination's payload names its
    partner as ``tenant_id`` and each event names its account (``tenant_id`` in the event
    JSON); for S3 it also carries ``parts``, the batch per account, in account order."""

    tenant_id: str
    destination_id: str
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    record_count: int
    first_event_at: datetime  # occurred_at of the first event: the S3 time prefix
    body: bytes
    content_type: str  # "application/x-ndjson" or "application/json"
    content_encoding: str | None  # "gzip" or None
    file_extension: str  # "ndjson.gz", "json", ...
    # S3: the key prefix template the batch was formed (and announced) with; None: the
    # target's own (a sample payload)
    prefix_template: str | None = None
    # A replay's batch: the replay's id. A replay re-sends events on purpose, so its
    # batches get S3 objects and idempotency keys of their own, never a live batch's.
    replay_id: str | None = None
    # The account's integrity records (docs/integrity.md, "Streamed copies") in the batch.
    # Webhook and Splunk payloads: their positions among the body's items (the body holds
    # them in stream order among the events). S3 payloads: the body holds the events only
    # (``record_count`` of them, maybe none) and ``copy_body`` the integrity records, NDJSON
    # (gzip when ``content_encoding`` is), for the companion object.
    copy_positions: tuple[int, ...] = ()
    copy_body: bytes | None = None
    # A partner destination's batch, per account (S3 only; empty otherwise).
    parts: tuple[AccountPart, ...] = ()
    # One account's part of a partner batch (what an S3 object of a part is named after).
    account_id: str | None = None

    def part(self, part: AccountPart) -> Payload:
        """The payload of one account's part: its body, count and time, the batch's offsets
        (so every part of a batch is named after the same range)."""
        return replace(
            self,
            body=part.body,
            record_count=part.record_count,
            first_event_at=part.first_event_at,
            parts=(),
            account_id=part.account_id,
            copy_body=part.copy_body,
        )


@dataclass(frozen=True)
class Receipt:
    """What the destination answered to a successful send (shown by ``destinations test``)."""

    detail: str  # e.g. "HTTP 200" or "s3://bucket/key"


class DeliveryError(Exception):
    """A send that did not succeed; the message is safe to show and store (no secrets)."""


class RetryableDeliveryError(DeliveryError):
    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentDeliveryError(DeliveryError):
    pass


class Sender(Protocol):
    """Delivers payloads to one destination. Thread-safe: the worker may call ``send``
    from several threads for different partitions."""

    def send(self, payload: Payload) -> Receipt: ...

    def close(self) -> None: ...
