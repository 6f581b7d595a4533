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
from typing import Any, Final, NamedTuple, Protocol

from confluent_kafka import KafkaError, KafkaException, Message

from integrity.leaf import LEAF_PREFIX, event_leaf_hash, fast_canonical_fields, uuid_text
from integrity.merkle import leaf_hash
from schemas.tenancy import header_tenants, tenant_disagreement
from schemas.wire import Decoder, WireError
from sinks.transcode import EventTranscoder

_LOG = logging.getLogger("auditlog.integrity")
TENANT_MISMATCH: Final = "tenant-mismatch"
# 10000-01-01T00:00:00Z in epoch milliseconds: fastavro's datetime ends before it.
_YEAR_10000_MS: Final = 253_402_300_800_000
NOT_AN_EVENT: Final = "not-an-event"


class KafkaRecord(Protocol):
    """What is read of a ``confluent_kafka.Message``."""

    def offset(self) -> int | None: ...
    def key(self) -> str | bytes | None: ...
    def value(self) -> str | bytes | None: ...
    def headers(self) -> Any: ...


class Leaf(NamedTuple):
    """A record that becomes a leaf of ``tenant_id``'s log (a named tuple: one per record)."""

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


class LeafReader:
    """:func:`read_record`'s answers at about a third of its cost (bench/README.md), for
    the appender's hot path. The datum is read without logical types
    (:meth:`sinks.transcode.EventTranscoder.plain`: a generated reader, no ``uuid.UUID``
    nor ``datetime`` built only to be turned back into text), ``occurred_at`` formatted from
    its milliseconds, and the leaf serialised by the fast path of :mod:`integrity.leaf`.
    Whenever that path cannot promise the same answer (the datum does not read, an
    ``event_id`` not in 8-4-4-4-12 form, a time outside 1970-9999, anything the fast
    canonical form declines) the record goes through :func:`read_record` itself, so the
    leaf and every skip reason are exactly its. One instance per thread."""

    def __init__(self, decoder: Decoder) -> None:
        self._decoder = decoder
        self._plain = EventTranscoder(decoder)

    def read(self, record: KafkaRecord) -> Leaf | Skipped:
        """The leaf ``record`` makes, or why it makes none. Never raises for bad bytes."""
        offset = record.offset()
        if offset is None:
            raise ValueError("a consumed record without an offset")
        try:
            datum = self._plain.plain(_bytes(record.value()))
        except WireError:
            return read_record(record, self._decoder)
        millis = datum.get("occurred_at")
        event_id = datum.get("event_id")
        body = datum.get("tenant_id")
        if (
            type(millis) is not int
            or not 0 <= millis < _YEAR_10000_MS
            or type(event_id) is not str
            or not uuid_text(event_id)
            or type(body) is not str
        ):
            return read_record(record, self._decoder)
        raw_key = record.key()
        key = raw_key.encode() if isinstance(raw_key, str) else raw_key
        why = tenant_disagreement(key, header_tenants(record.headers()), body)
        if why is not None:
            return Skipped(offset, TENANT_MISMATCH, why)
        canonical = fast_canonical_fields(datum, event_id.lower(), self._plain.timestamp(millis))
        if canonical is None:
            return read_record(record, self._decoder)
        return Leaf(offset, body, uuid.UUID(event_id), leaf_hash(LEAF_PREFIX + canonical))


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
