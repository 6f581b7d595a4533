"""The fake broker's storage: topics of partitions, each an append-only log of records.

Offsets are positions in the log, from 0, without gaps (no transactions, no compaction).
:meth:`PartitionLog.truncate` moves the log start forward as retention does: records below
it are gone and the low watermark says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError, Message

PartitionKey = tuple[str, int]
"""(topic, partition)."""

StoredHeaders = tuple[tuple[str, bytes | None], ...]
HeadersIn = Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None] | None


@dataclass(frozen=True)
class StoredRecord:
    """One record as the broker holds it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: StoredHeaders | None
    timestamp_ms: int

    def message(self) -> Message:
        """A fresh ``confluent_kafka.Message`` of this record, as a consumer hands it out."""
        return Message(
            topic=self.topic,
            partition=self.partition,
            offset=self.offset,
            key=self.key,
            value=self.value,
            headers=list(self.headers) if self.headers is not None else None,
            error=None,
            timestamp=(TIMESTAMP_CREATE_TIME, self.timestamp_ms),
        )


@dataclass
class PartitionLog:
    """One partition: ``records[i].offset == i``; those below ``log_start`` are deleted."""

    topic: str
    partition: int
    records: list[StoredRecord] = field(default_factory=list)
    log_start: int = 0

    @property
    def high(self) -> int:
        """The high watermark: the offset the next record gets."""
        return len(self.records)

    def append(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: StoredHeaders | None,
        timestamp_ms: int,
    ) -> StoredRecord:
        record = StoredRecord(
            self.topic, self.partition, self.high, key, value, headers, timestamp_ms
        )
        self.records.append(record)
        return record

    def read(self, offset: int, max_records: int) -> list[StoredRecord]:
        """Up to ``max_records`` records from ``offset`` (at least the log start)."""
        start = max(offset, self.log_start)
        return self.records[start : start + max_records]

    def truncate(self, before: int) -> None:
        """Delete the records below ``before`` (at most up to the high watermark)."""
        self.log_start = max(self.log_start, min(before, self.high))


def as_bytes(value: str | bytes | None) -> bytes | None:
    """What a producer sends for a key, value or header value (``str`` as UTF-8)."""
    return value.encode() if isinstance(value, str) else value


def stored_headers(headers: HeadersIn) -> StoredHeaders | None:
    """Headers as the consumer returns them: a list of (name, bytes) pairs, or None when
    there are none."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((name, as_bytes(value)) for name, value in pairs)


def end_of_partition(key: PartitionKey, offset: int) -> Message:
    """The ``_PARTITION_EOF`` event a consumer with ``enable.partition.eof`` returns."""
    return Message(
        topic=key[0],
        partition=key[1],
        offset=offset,
        error=KafkaError(KafkaError._PARTITION_EOF),
    )
