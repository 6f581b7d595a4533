"""One Kafka record as the integrity log reads it: its account and its leaf hash, or the
reason it is not a leaf. Pure apart from the decoder's schema look-ups.

A record is a leaf when it decodes (:class:`~schemas.wire.Decoder`) and names one tenant
(key, ``auditlog-tenant`` header and body agree: :func:`schemas.tenancy.tenant_disagreement`).
Otherwise it is skipped, with the reason the writer dead-letters it under
(``not-framed``, ``unknown-schema``, ``corrupt-datum``, ``tenant-mismatch``), so the log
holds exactly the records the events table can hold. Every reason is a function of the
record's bytes alone (for a given release: a newer one may know more schema versions, so
upgrade the appenders before producers publish a new version, as for the writer).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from confluent_kafka import KafkaError, KafkaException, Message

from integrity.leaf import event_leaf_hash
from schemas.tenancy import header_tenants, tenant_disagreement
from schemas.wire import Decoder, WireError

_LOG = logging.getLogger("auditlog.integrity")
TENANT_MISMATCH: Final = "tenant-mismatch"
NOT_AN_EVENT: Final = "not-an-event"


class KafkaRecord(Protocol):
    """What is read of a ``confluent_kafka.Message``."""

    def offset(self) -> int | None: ...
    def key(self) -> str | bytes | None: ...
    def value(self) -> str | bytes | None: ...
    def headers(self) -> Any: ...


@dataclass(frozen=True)
class Leaf:
    """A record that becomes a leaf of ``tenant_id``'s log."""

    offset: int
    tenant_id: str
    event_id: uuid.UUID
    leaf_hash: bytes


@dataclass(frozen=True)
class Skipped:
    """A record that is no leaf: ``reason`` is a stable code (a metric label), ``detail``
    says why for the log (hostile values quoted and cut by the functions that wrote it)."""

    offset: int
    reason: str
    detail: str


def read_record(record: KafkaRecord, decoder: Decoder) -> Leaf | Skipped:
    """The leaf ``record`` makes, or why it makes none. Never raises for bad bytes."""
    offset = record.offset()
    if offset is None:
        raise ValueError("a consumed record without an offset")
    value = _bytes(record.value())
    try:
        event = decoder.decode(value)
    except WireError as exc:
        return Skipped(offset, exc.reason, str(exc))
    raw_key = record.key()
    key = raw_key.encode() if isinstance(raw_key, str) else raw_key
    body = event.get("tenant_id")
    if not isinstance(body, str):
        return Skipped(offset, NOT_AN_EVENT, "the event has no tenant_id")
    why = tenant_disagreement(key, header_tenants(record.headers()), body)
    if why is not None:
        return Skipped(offset, TENANT_MISMATCH, why)
    event_id = event.get("event_id")
    try:
        if not isinstance(event_id, uuid.UUID):
            event_id = uuid.UUID(str(event_id))
        leaf_hash = event_leaf_hash(event)
    except ValueError as exc:
        return Skipped(offset, NOT_AN_EVENT, str(exc)[:400])
    return Leaf(offset, body, event_id, leaf_hash)


def without_errors(messages: Iterable[Message]) -> list[Message]:
    """The records among consumed ``messages``: an end of partition is dropped, another
    error logged and dropped, a fatal one raised (``KafkaException``)."""
    records = []
    for message in messages:
        error = message.error()
        if error is None:
            records.append(message)
        elif error.fatal():
            raise KafkaException(error)
        elif error.code() != KafkaError._PARTITION_EOF:
            _LOG.warning("consumer error: %s", error.str())
    return records


def _bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value
