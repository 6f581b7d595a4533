"""What the writer reports as it goes, and where it goes: Prometheus metrics and the
health state behind ``/health``. :class:`WriterObserver` is the seam (tests may pass
their own); :class:`Telemetry` is the production one."""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from typing import Protocol

from confluent_kafka import TopicPartition

from consumers.batches import Batch
from consumers.inserter import Inserted
from consumers.metrics import WriterMetrics, forget_partition, observe_freshness, record_lag
from runtime.health import HealthState

_timestamp_of = operator.methodcaller("timestamp")
_milliseconds = operator.itemgetter(1)


class WriterObserver(Protocol):
    """Called on the writer's thread; implementations must be quick and must not raise."""

    def consumed(self, count: int) -> None: ...
    def written(self, batch: Batch, inserted: Inserted, seconds: float) -> None: ...
    def retrying(self, error: BaseException) -> None: ...
    def committed(self, partition: int, next_offset: int, high_watermark: int) -> None: ...
    def assigned(self, partitions: Sequence[TopicPartition], member_id: str | None) -> None: ...
    def revoked(self, partitions: Sequence[TopicPartition]) -> None: ...
    def paused(self, partitions: Sequence[TopicPartition]) -> None: ...
    def resumed(self, partitions: Sequence[TopicPartition]) -> None: ...
    def stopping(self) -> None: ...


class NoObserver:
    """Reports nowhere."""

    def consumed(self, count: int) -> None:
        pass

    def written(self, batch: Batch, inserted: Inserted, seconds: float) -> None:
        pass

    def retrying(self, error: BaseException) -> None:
        pass

    def committed(self, partition: int, next_offset: int, high_watermark: int) -> None:
        pass

    def assigned(self, partitions: Sequence[TopicPartition], member_id: str | None) -> None:
        pass

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        pass

    def paused(self, partitions: Sequence[TopicPartition]) -> None:
        pass

    def resumed(self, partitions: Sequence[TopicPartition]) -> None:
        pass

    def stopping(self) -> None:
        pass


class Telemetry:
    """Feeds :class:`WriterMetrics` and a :class:`HealthState` for one writer."""

    def __init__(self, metrics: WriterMetrics, health: HealthState, topic: str, table: str) -> None:
        self._metrics = metrics
        self._health = health
        self._topic = topic
        self._table = table
        self._consumed = metrics.records_consumed.labels(topic)
        self._rows = metrics.rows_inserted.labels(table)
        self._insert_seconds = metrics.insert_seconds.labels(table)
        self._retries = metrics.insert_retries.labels(table)
        self._assigned_count = 0
        self._paused_count = 0

    def consumed(self, count: int) -> None:
        self._consumed.inc(count)

    def written(self, batch: Batch, inserted: Inserted, seconds: float) -> None:
        now = time.time()
        self._rows.inc(inserted.rows)
        self._insert_seconds.observe(seconds)
        self._metrics.batches.labels(self._table, "inserted").inc()
        for poison in inserted.poison:
            self._metrics.dead_lettered.labels(self._topic, poison.reason).inc()
        # Read in C (no Python frame per record): a batch holds up to 50,000 records.
        timestamps = list(map(_milliseconds, map(_timestamp_of, batch.records)))
        observe_freshness(self._metrics, now, timestamps)
        self._health.insert_succeeded()

    def retrying(self, error: BaseException) -> None:
        self._retries.inc()
        self._metrics.batches.labels(self._table, "failed").inc()
        self._health.insert_failed(error)

    def committed(self, partition: int, next_offset: int, high_watermark: int) -> None:
        record_lag(self._metrics, self._topic, partition, high_watermark, next_offset)

    def assigned(self, partitions: Sequence[TopicPartition], member_id: str | None) -> None:
        self._health.set_member_id(member_id)
        self._health.assign(_pairs(partitions))
        self._assigned_count += len(partitions)
        self._metrics.assigned_partitions.set(self._assigned_count)

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        self._health.revoke(_pairs(partitions))
        for tp in partitions:
            forget_partition(self._metrics, self._topic, tp.partition)
        self._assigned_count = max(0, self._assigned_count - len(partitions))
        self._metrics.assigned_partitions.set(self._assigned_count)

    def paused(self, partitions: Sequence[TopicPartition]) -> None:
        self._health.pause(_pairs(partitions))
        self._metrics.paused_partitions.set(len(partitions))

    def resumed(self, partitions: Sequence[TopicPartition]) -> None:
        self._health.resume(_pairs(partitions))
        self._metrics.paused_partitions.set(0)

    def stopping(self) -> None:
        self._health.stopping()


def _pairs(partitions: Sequence[TopicPartition]) -> list[tuple[str, int]]:
    return [(tp.topic, tp.partition) for tp in partitions]
