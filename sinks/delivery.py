"""Delivering one batch: runs on the worker's delivery threads.

:func:`deliver` encodes the batch (gzip releases the GIL, so it belongs here, not on the
consumer loop) with the shape it was formed with (:mod:`sinks.batch_shape`), makes the
batch's announcement durable (so a restart re-forms the same batch), sends it, and
returns a :class:`DeliveryResult`. It never raises: every failure becomes a result the
worker loop acts on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from sinks.destinations.model import Destination, S3Target
from sinks.encoding import assemble
from sinks.lane import Batch
from sinks.senders.base import (
    AccountPart,
    DeliveryError,
    Payload,
    PermanentDeliveryError,
    RetryableDeliveryError,
    Sender,
)


@dataclass(frozen=True)
class DeliveryResult:
    batch: Batch
    elapsed_s: float
    detail: str = ""
    error: DeliveryError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def payload_for(
    destination: Destination,
    topic: str,
    partition: int,
    batch: Batch,
    replay_id: str | None = None,
) -> Payload:
    """The batch encoded with its own shape (its format, compression and S3 prefix), not
    the destination's current one: every attempt sends the same bytes under the same key.
    ``replay_id``: the batch belongs to that replay (keys of its own)."""
    shape = batch.shape
    parts: tuple[AccountPart, ...] = ()
    if destination.partner_id is not None and isinstance(destination.target, S3Target):
        parts = account_parts(batch)
        body = assemble([], shape.format, shape.compression)  # each part is its own object
    else:
        body = assemble(batch.lines, shape.format, shape.compression)
    return Payload(
        tenant_id=destination.tenant_id,
        destination_id=destination.id,
        topic=topic,
        partition=partition,
        first_offset=batch.first_offset,
        last_offset=batch.last_offset,
        record_count=batch.record_count,
        first_event_at=batch.first_event_at,
        body=body.body,
        content_type=body.content_type,
        content_encoding=body.content_encoding,
        file_extension=body.file_extension,
        prefix_template=shape.prefix_template,
        replay_id=replay_id,
        parts=parts,
    )


def account_parts(batch: Batch) -> tuple[AccountPart, ...]:
    """A partner destination's batch split by account (the ``tenant_id`` of each event
    line), each encoded with the batch's shape, in account order; an account's events keep
    their order. Deterministic: the same batch gives the same parts, byte for byte."""
    lines: dict[str, list[bytes]] = {}
    first_at: dict[str, int] = {}
    for line in batch.lines:
        event = orjson.loads(line)
        account = str(event["tenant_id"])
        found = lines.get(account)
        if found is None:
            found = lines[account] = []
            first_at[account] = _epoch_ms(str(event.get("occurred_at") or ""))
        found.append(line)
    shape = batch.shape
    parts = []
    for account in sorted(lines):
        body = assemble(lines[account], shape.format, shape.compression)
        at = (
            datetime.fromtimestamp(first_at[account] / 1000, UTC)
            if first_at[account] >= 0
            else batch.first_event_at
        )
        parts.append(AccountPart(account, body.body, len(lines[account]), at))
    return tuple(parts)


def _epoch_ms(text: str) -> int:
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        return -1


def deliver(
    destination: Destination,
    topic: str,
    partition: int,
    batch: Batch,
    *,
    sender: Callable[[], Sender],
    make_durable: Callable[[], None],
    clock: Callable[[], float] = time.monotonic,
    replay_id: str | None = None,
) -> DeliveryResult:
    """Encode, make the announcement durable, send. Blocks for one request at most (plus
    the progress flush). ``clock`` (monotonic seconds) times it; ``replay_id``: see
    :func:`payload_for`."""
    started = clock()
    try:
        payload = payload_for(destination, topic, partition, batch, replay_id)
        make_durable()
        receipt = sender().send(payload)
    except DeliveryError as exc:
        return DeliveryResult(batch, clock() - started, error=exc)
    except Exception as exc:  # noqa: BLE001 - a bug or an unmapped client error: retry, report
        error = RetryableDeliveryError(f"unexpected {type(exc).__name__}: {exc}")
        return DeliveryResult(batch, clock() - started, error=error)
    return DeliveryResult(batch, clock() - started, detail=receipt.detail)


def is_permanent(result: DeliveryResult) -> bool:
    return isinstance(result.error, PermanentDeliveryError)
