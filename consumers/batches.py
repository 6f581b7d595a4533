"""Per-partition batches whose offset ranges can be formed again after a restart.

A batch is a contiguous offset range of one partition. It is cut when it holds
``max_records`` records or ``max_bytes`` bytes, when its oldest record has waited
``max_wait_s``, or exactly at ``announced_last``: the end of a range that was announced (in
the progress log) but perhaps not committed before a crash. Re-forming that range exactly
gives the insert the same deduplication token, so ClickHouse stores it once.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

value_of = operator.methodcaller("value")
"""``record.value()``, callable from C (``map(value_of, records)``: no Python frame per record)."""


class Record(Protocol):
    """One Kafka record as the writer keeps it: the consumed ``confluent_kafka.Message``
    itself (nothing is copied or decoded per record; headers are read only for poison)."""

    def offset(self) -> int | None: ...
    def value(self) -> str | bytes | None: ...
    def key(self) -> str | bytes | None: ...
    def headers(
        self,
    ) -> Sequence[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None: ...
    def timestamp(self) -> tuple[int, int]: ...


def offset_of(record: Record) -> int:
    offset = record.offset()
    if offset is None:
        raise ValueError("a consumed record without an offset")
    return offset


@dataclass(frozen=True)
class Batch:
    """Records ``first_offset`` .. ``last_offset`` of one partition, in offset order."""

    topic: str
    partition: int
    records: tuple[Record, ...]

    @property
    def first_offset(self) -> int:
        return offset_of(self.records[0])

    @property
    def last_offset(self) -> int:
        return offset_of(self.records[-1])

    @property
    def dedup_token(self) -> str:
        """``{topic}-{partition}-{first}-{last}``, as ClickHouse's Kafka Connect sink uses."""
        return f"{self.topic}-{self.partition}-{self.first_offset}-{self.last_offset}"


@dataclass
class PartitionBuffer:
    """Records of one partition waiting to form a batch. Not thread-safe."""

    topic: str
    partition: int
    max_records: int
    max_bytes: int
    max_wait_s: float
    announced_last: int | None = None
    records: list[Record] = field(default_factory=list)
    size_bytes: int = 0
    first_seen_s: float = 0.0

    def add(self, record: Record, now_s: float) -> list[Batch]:
        """Append ``record``; returns the batches it completes (usually none, or one)."""
        done: list[Batch] = []
        offset = offset_of(record)
        if self.announced_last is not None and offset > self.announced_last:
            # The announced range ended in a gap (offsets are not always contiguous).
            self.announced_last = None
            if self.records:
                done.append(self._cut())
        if not self.records:
            self.first_seen_s = now_s
        self.records.append(record)
        self.size_bytes += len(record.value() or b"")
        if self.announced_last is not None:
            if offset == self.announced_last:
                self.announced_last = None
                done.append(self._cut())
            # Otherwise the announced range is re-formed whatever its size.
        elif len(self.records) >= self.max_records or self.size_bytes >= self.max_bytes:
            done.append(self._cut())
        return done

    def extend(self, records: Sequence[Record], now_s: float) -> list[Batch]:
        """:meth:`add` each of ``records`` (consecutive offsets of this partition, in
        order), with the same cuts, but in bulk: no Python per record unless an announced
        range is being re-formed or the byte limit falls inside the run."""
        done: list[Batch] = []
        start = 0
        while start < len(records):
            if self.announced_last is not None:
                done.extend(self.add(records[start], now_s))
                start += 1
                continue
            room = max(1, self.max_records - len(self.records))
            chunk = records[start : start + room]
            size = sum(map(len, filter(None, map(value_of, chunk))))
            if self.size_bytes + size >= self.max_bytes:
                # The byte limit is reached inside the chunk: cut where add() would.
                for record in chunk:
                    start += 1
                    cut = self.add(record, now_s)
                    if cut:
                        done.extend(cut)
                        break
                continue
            if not self.records:
                self.first_seen_s = now_s
            self.records.extend(chunk)
            self.size_bytes += size
            start += len(chunk)
            if len(self.records) >= self.max_records:
                done.append(self._cut())
        return done

    def due(self, now_s: float) -> Batch | None:
        """The batch of what is buffered if its oldest record waited long enough (never
        while an announced range is still being re-formed)."""
        if (
            self.records
            and self.announced_last is None
            and now_s - self.first_seen_s >= self.max_wait_s
        ):
            return self._cut()
        return None

    def flush(self) -> Batch | None:
        """Whatever is buffered, as a batch (when idle, or for tests)."""
        return self._cut() if self.records and self.announced_last is None else None

    def _cut(self) -> Batch:
        batch = Batch(self.topic, self.partition, tuple(self.records))
        self.records = []
        self.size_bytes = 0
        return batch
