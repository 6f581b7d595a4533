"""Prometheus metrics of the ClickHouse writer (``auditlog consume``).

Metrics are registered once per registry (the process-wide default unless one is given),
so every writer in a process shares them, labelled by topic, partition or table.

Freshness
---------
``auditlog_writer_freshness_seconds`` is measured **without decoding a record**: it is the
time ClickHouse acknowledged the insert minus the Kafka record's timestamp. The producer SDK
leaves the timestamp to librdkafka, so it is the record's CreateTime, taken when the
service called ``publish``. For live events that is within milliseconds of ``occurred_at``,
so the metric reads as "ingest time minus occurred_at". Caveats:

- it does not see time spent before ``publish`` (a service that buffers, retries or
  backfills old events publishes them long after ``occurred_at``; those look fresh here);
- it mixes two clocks (the producer host's and the writer's): skew shows up directly, and a
  producer clock ahead of the writer would give negative values, which are counted as 0;
- if the topic used ``message.timestamp.type=LogAppendTime`` it would measure from the
  broker's append instead of the publish;
- a backlog drained after an outage is counted as it really is: stale.

Records without a timestamp (librdkafka reports -1) are skipped.

Every record of a batch is counted (the histogram's ``_count`` equals records inserted),
yet the cost stays far below one ``Histogram.observe`` per record (see
:func:`runtime.metric_helpers.observe_ages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from typing import Final, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from runtime.metric_helpers import INSERT_BUCKETS_S, BulkHistogram, observe_ages

FRESHNESS_BUCKETS_S: Final = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)

BatchOutcome = Literal["inserted", "deduplicated", "rejected", "failed"]
"""How one insert attempt of a partition batch ended (the ``outcome`` label):

- ``inserted``: ClickHouse acknowledged it and wrote the rows;
- ``deduplicated``: acknowledged, but ClickHouse recognised the deduplication token of a
  replayed batch and wrote nothing;
- ``rejected``: ClickHouse refused the data (a bad record); the batch is decoded record by
  record, the bad ones dead-lettered and the rest inserted as a new attempt;
- ``failed``: a transient failure (ClickHouse slow, down, unreachable); the insert is retried.
"""


@dataclass(frozen=True)
class WriterMetrics:
    records_consumed: Counter
    rows_inserted: Counter
    batches: Counter
    insert_seconds: Histogram
    insert_retries: Counter
    dead_lettered: Counter
    consumer_lag: Gauge
    freshness: BulkHistogram
    paused_partitions: Gauge
    assigned_partitions: Gauge


@cache
def writer_metrics(registry: CollectorRegistry = REGISTRY) -> WriterMetrics:
    """The writer metrics registered in ``registry`` (created on first use)."""
    return WriterMetrics(
        records_consumed=Counter(
            "auditlog_writer_records_consumed_total",
            "Records read from Kafka by the writer (before batching).",
            ["topic"],
            registry=registry,
        ),
        rows_inserted=Counter(
            "auditlog_writer_rows_inserted_total",
            "Rows ClickHouse acknowledged (a deduplicated replay counts none).",
            ["table"],
            registry=registry,
        ),
        batches=Counter(
            "auditlog_writer_batches_total",
            "Insert attempts of partition batches, by outcome "
            "(inserted, deduplicated, rejected, failed).",
            ["table", "outcome"],
            registry=registry,
        ),
        insert_seconds=Histogram(
            "auditlog_writer_insert_seconds",
            "Duration of one insert request to ClickHouse, successful or not.",
            ["table"],
            buckets=INSERT_BUCKETS_S,
            registry=registry,
        ),
        insert_retries=Counter(
            "auditlog_writer_insert_retries_total",
            "Inserts retried after a transient failure (after the backoff).",
            ["table"],
            registry=registry,
        ),
        dead_lettered=Counter(
            "auditlog_writer_dead_lettered_total",
            "Records sent to the dead-letter topic, by source topic and reason.",
            ["topic", "reason"],
            registry=registry,
        ),
        consumer_lag=Gauge(
            "auditlog_writer_consumer_lag",
            "Records of a partition not yet in ClickHouse: high watermark minus the "
            "committed position (the offset after the last record that landed).",
            ["topic", "partition"],
            registry=registry,
        ),
        freshness=BulkHistogram(
            "auditlog_writer_freshness_seconds",
            "Per record: time ClickHouse acknowledged the insert minus the record's Kafka "
            "timestamp (CreateTime, set at publish; about occurred_at for live events).",
            FRESHNESS_BUCKETS_S,
            registry=registry,
        ),
        paused_partitions=Gauge(
            "auditlog_writer_paused_partitions",
            "Assigned partitions currently paused (backpressure from ClickHouse).",
            registry=registry,
        ),
        assigned_partitions=Gauge(
            "auditlog_writer_assigned_partitions",
            "Partitions currently assigned to this writer.",
            registry=registry,
        ),
    )


def observe_freshness(metrics: WriterMetrics, now_s: float, timestamps_ms: Sequence[int]) -> None:
    """Count the freshness of every record of an acknowledged batch.

    ``now_s`` is when ClickHouse acknowledged the insert (``time.time()``), ``timestamps_ms``
    the records' Kafka timestamps in milliseconds (``Message.timestamp()[1]``). Each record
    counts once, with freshness ``now_s - timestamp_ms / 1000`` (negative values, from clock
    skew, count as 0; timestamps ``<= 0``, i.e. unavailable, are skipped).

    Costs one sort (near linear on a partition's nearly ordered timestamps) and one
    bisection per bucket bound, not one histogram update per record.
    """
    observe_ages(metrics.freshness, now_s, timestamps_ms)


def record_lag(
    metrics: WriterMetrics, topic: str, partition: int, high_watermark: int, committed: int
) -> None:
    """Set the lag of one partition: ``high_watermark - committed``, never below 0.

    ``committed`` is the offset after the last record that landed in ClickHouse (what the
    writer commits), so records read or in flight but not yet acknowledged count as lag.
    """
    metrics.consumer_lag.labels(topic, str(partition)).set(max(0, high_watermark - committed))


def forget_partition(metrics: WriterMetrics, topic: str, partition: int) -> None:
    """Drop a revoked partition's lag series, so another member's lag is not shadowed."""
    with suppress(KeyError):  # older prometheus-client raises for a series never set
        metrics.consumer_lag.remove(topic, str(partition))
