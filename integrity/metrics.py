"""Prometheus metrics of the integrity appender (``auditlog integrity run``), registered
once per registry (the process-wide default unless one is given)."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from runtime.metric_helpers import INSERT_BUCKETS_S


@dataclass(frozen=True)
class IntegrityMetrics:
    appended: Counter
    skipped: Counter
    batch_insert_seconds: Histogram
    insert_retries: Counter
    checkpoints_signed: Counter
    consumer_lag: Gauge
    assigned_partitions: Gauge

    def lag(self, topic: str, partition: int, high_watermark: int, committed: int) -> None:
        """Records of the partition not yet in the log: ``high - committed``, at least 0."""
        self.consumer_lag.labels(topic, str(partition)).set(max(0, high_watermark - committed))

    def forget(self, topic: str, partition: int) -> None:
        """Drop a revoked partition's lag series (its next owner reports it)."""
        with suppress(KeyError):
            self.consumer_lag.remove(topic, str(partition))


@cache
def integrity_metrics(registry: CollectorRegistry = REGISTRY) -> IntegrityMetrics:
    """The appender's metrics in ``registry`` (created on first use)."""
    return IntegrityMetrics(
        appended=Counter(
            "auditlog_integrity_records_appended_total",
            "Records appended to an account's log as leaves (a replay appends none).",
            ["topic"],
            registry=registry,
        ),
        skipped=Counter(
            "auditlog_integrity_records_skipped_total",
            "Records not appended, by reason: already-appended (at or before the account's "
            "last offset), not-framed, unknown-schema, corrupt-datum, tenant-mismatch, "
            "not-an-event, other-partition (the account's log is kept by another partition).",
            ["topic", "reason"],
            registry=registry,
        ),
        batch_insert_seconds=Histogram(
            "auditlog_integrity_batch_insert_seconds",
            "Time to store one batch (its leaves, then its heads), successful or not.",
            buckets=INSERT_BUCKETS_S,
            registry=registry,
        ),
        insert_retries=Counter(
            "auditlog_integrity_insert_retries_total",
            "Inserts into ClickHouse retried after a transient failure.",
            registry=registry,
        ),
        checkpoints_signed=Counter(
            "auditlog_integrity_checkpoints_signed_total",
            "Checkpoints signed and stored, by reason: grown (new leaves) or heartbeat.",
            ["reason"],
            registry=registry,
        ),
        consumer_lag=Gauge(
            "auditlog_integrity_consumer_lag",
            "Records of a partition not yet in the log: high watermark minus the committed offset.",
            ["topic", "partition"],
            registry=registry,
        ),
        assigned_partitions=Gauge(
            "auditlog_integrity_assigned_partitions",
            "Partitions currently assigned to this appender.",
            registry=registry,
        ),
    )
