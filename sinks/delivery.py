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
    lines, record_count = batch.lines, batch.record_count
    copy_positions: tuple[int, ...] = tuple(batch.copies)
    copy_lines: list[bytes] = []
    if copy_positions and isinstance(destination.target, S3Target):
        # S3: the events object and, beside it, the companion object of the copy records.
        marked = set(copy_positions)
        copy_lines = [batch.lines[i] for i in copy_positions]
        lines = [line for i, line in enumerate(batch.lines) if i not in marked]
        record_count, copy_positions = len(lines), ()
    parts: tuple[AccountPart, ...] = ()
    copy_body: bytes | None = None
    if destination.partner_id is not None and isinstance(destination.target, S3Target):
        parts = account_parts(batch, lines, copy_lines)
        body = assemble([], shape.format, shape.compression)  # each part is its own object
    else:
        body = assemble(lines, shape.format, shape.compression)
        if copy_lines:
            copy_body = assemble(copy_lines, "ndjson", shape.compression).body
    return Payload(
        tenant_id=destination.tenant_id,
        destination_id=destination.id,
        topic=topic,
        partition=partition,
        first_offset=batch.first_offset,
        last_offset=batch.last_offset,
        record_count=record_count,
        first_event_at=batch.first_event_at,
        body=body.body,
        content_type=body.content_type,
        content_encoding=body.content_encoding,
        file_extension=body.file_extension,
        prefix_template=shape.prefix_template,
        replay_id=replay_id,
        copy_positions=copy_positions,
        copy_body=copy_body,
        parts=parts,
    )


def account_parts(
    batch: Batch, lines: list[bytes], copy_lines: list[bytes]
) -> tuple[AccountPart, ...]:
    """A partner destination's batch split by account (the ``tenant_id`` of each event
    line and integrity record), each account's events encoded with the batch's shape and its
    integrity records as NDJSON, in account order; an account's lines keep their order.
    Deterministic: the same batch gives the same parts, byte for byte."""
    events: dict[str, list[bytes]] = {}
    copies: dict[str, list[bytes]] = {}
    first_at: dict[str, int] = {}
    for line in lines:
        event = orjson.loads(line)
        account = str(event["tenant_id"])
        found = events.get(account)
        if found is None:
            found = events[account] = []
            first_at[account] = _epoch_ms(str(event.get("occurred_at") or ""))
        found.append(line)
    for line in copy_lines:
        copies.setdefault(str(orjson.loads(line)["tenant_id"]), []).append(line)
    shape = batch.shape
    parts = []
    for account in sorted(events.keys() | copies.keys()):
        own = events.get(account, [])
        body = assemble(own, shape.format, shape.compression)
        copy = copies.get(account)
        at_ms = first_at.get(account, -1)
        at = datetime.fromtimestamp(at_ms / 1000, UTC) if at_ms >= 0 else batch.first_event_at
        copy_body = assemble(copy, "ndjson", shape.compression).body if copy else None
        parts.append(AccountPart(account, body.body, len(own), at, copy_body))
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
