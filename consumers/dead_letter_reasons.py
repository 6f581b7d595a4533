"""Poison records: what they are and why they are dead-lettered.

A poison record is one the ClickHouse writer cannot store: its value is not framed, names
an unknown writer schema, does not decode, or ClickHouse rejects it. It goes to the
dead-letter topic with the reason, so it never blocks its partition: the pipeline never
drops a record, and one bad record must not hold back the good ones behind it.

- :data:`DeadLetterReason` is the stable ``reason`` code a dead letter carries.
- :class:`Poison` is the original record (partition, offset, key, value, headers) with its
  reason and the error text, cut to :data:`MAX_DETAIL_BYTES` (:func:`truncate_detail`).

Publishing them: :mod:`consumers.dead_letter_publisher`; the limit that stops a writer fed
only garbage: :mod:`consumers.dead_letter_budget`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import Message

from schemas.wire import WireError

#: Why a record was dead-lettered (header
#: :data:`~consumers.dead_letter_publisher.REASON`). The first three are
#: :class:`~schemas.wire.WireError` reasons; then an insert ClickHouse refused, and a record
#: whose key, ``auditlog-tenant`` header and body name different tenants
#: (:mod:`schemas.tenancy`).
DeadLetterReason = Literal[
    "not-framed", "unknown-schema", "corrupt-datum", "rejected-by-clickhouse", "tenant-mismatch"
]
NOT_FRAMED: DeadLetterReason = "not-framed"
UNKNOWN_SCHEMA: DeadLetterReason = "unknown-schema"
CORRUPT_DATUM: DeadLetterReason = "corrupt-datum"
REJECTED_BY_CLICKHOUSE: DeadLetterReason = "rejected-by-clickhouse"
TENANT_MISMATCH: DeadLetterReason = "tenant-mismatch"

MAX_DETAIL_BYTES = 4096
_TRUNCATED = " [truncated]"


def truncate_detail(detail: str, max_bytes: int = MAX_DETAIL_BYTES) -> str:
    """``detail`` cut to at most ``max_bytes`` of UTF-8 (never inside a character), ending
    in `` [truncated]`` when it was cut."""
    encoded = detail.encode()
    if len(encoded) <= max_bytes:
        return detail
    room = max_bytes - len(_TRUNCATED.encode())
    return encoded[:room].decode(errors="ignore") + _TRUNCATED


@dataclass(frozen=True)
class Poison:
    """One record of the source topic that goes to the dead-letter topic.

    ``partition``, ``offset``, ``key``, ``value`` and ``headers`` are the original record's;
    ``reason`` is a stable code, ``detail`` the error text (cut to :data:`MAX_DETAIL_BYTES`
    on construction).
    """

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
    reason: DeadLetterReason
    detail: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", truncate_detail(self.detail))

    @classmethod
    def of(cls, message: Message, reason: DeadLetterReason, detail: str) -> Poison:
        """The poison record for a consumed ``message``. Raises ``ValueError`` for a message
        without partition or offset (an error event, not a record)."""
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None or message.error() is not None:
            raise ValueError(f"not a consumed record: {message.error() or 'no partition/offset'}")
        raw_headers = message.headers() or []
        items = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
        headers = [(name, v.encode() if isinstance(v, str) else v) for name, v in items]
        key, value = message.key(), message.value()
        return cls(
            partition=partition,
            offset=offset,
            key=key.encode() if isinstance(key, str) else key,
            value=value.encode() if isinstance(value, str) else value,
            headers=headers,
            reason=reason,
            detail=detail,
        )

    @classmethod
    def from_wire_error(cls, message: Message, error: WireError) -> Poison:
        """The poison record for ``message`` that failed to read with ``error``."""
        return cls.of(message, error.reason, str(error))


def poisons_at(
    messages: Sequence[Message], failed: Iterable[tuple[int, WireError]]
) -> list[Poison]:
    """Poison records for the ``(position in messages, error)`` pairs that
    :func:`consumers.avro_block.split_by_schema` (``unframed``) and
    :func:`consumers.avro_block.upcast` (``failed``) report, in offset order."""
    poisons = [Poison.from_wire_error(messages[position], error) for position, error in failed]
    return sorted(poisons, key=lambda poison: (poison.partition, poison.offset))
