"""Prometheus metrics of the sink workers, labelled by destination where it matters.

Cardinality: one series per destination (and per outcome), not per tenant x partition;
a worker drops a removed destination's series.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from runtime.metric_helpers import BulkHistogram
from sinks.lane import LANE_MODES

DELIVERY_BUCKETS_S: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LATENCY_BUCKETS_S: Final = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 900, 3600)


@dataclass(frozen=True)
class SinkMetrics:
    records_consumed: Counter
    undecodable: Counter
    tenant_mismatch: Counter
    records_delivered: Counter
    batches: Counter
    delivery_seconds: Histogram
    consecutive_failures: Gauge
    last_success: Gauge
    lag_records: Gauge
    lanes: Gauge
    destination_lanes: Gauge
    parked: Counter
    auto_paused: Counter
    latency: BulkHistogram
    held_records: Gauge
    membership_behind: Gauge
    membership_late_changes: Gauge

    def forget(self, destination_id: str) -> None:
        for metric in (
            self.consecutive_failures,
            self.last_success,
            self.lag_records,
            self.records_delivered,
            self.parked,
            self.auto_paused,
        ):
            with suppress(KeyError):
                metric.remove(destination_id)
        for mode in LANE_MODES:
            with suppress(KeyError):
                self.destination_lanes.remove(destination_id, mode)


@cache
def sink_metrics(registry: CollectorRegistry = REGISTRY) -> SinkMetrics:
    """The sink metrics registered in ``registry`` (created on first use)."""
    return SinkMetrics(
        records_consumed=Counter(
            "auditlog_sink_records_consumed_total",
            "Records read by the sink group's consumer and the lanes' own readers.",
            ["reader"],
            registry=registry,
        ),
        undecodable=Counter(
            "auditlog_sink_undecodable_records_total",
            "Records a destination wanted that do not decode (the writer dead-letters them).",
            registry=registry,
        ),
        tenant_mismatch=Counter(
            "auditlog_sink_tenant_mismatch_records_total",
            "Records a destination wanted whose key, auditlog-tenant header and body name "
            "different tenants: never delivered (the writer dead-letters them).",
            registry=registry,
        ),
        records_delivered=Counter(
            "auditlog_sink_records_delivered_total",
            "Records a destination acknowledged.",
            ["destination"],
            registry=registry,
        ),
        batches=Counter(
            "auditlog_sink_batches_total",
            "Delivery attempts by destination kind and outcome (delivered, retryable, permanent).",
            ["kind", "outcome"],
            registry=registry,
        ),
        delivery_seconds=Histogram(
            "auditlog_sink_delivery_seconds",
            "Duration of one delivery request, successful or not.",
            ["kind"],
            buckets=DELIVERY_BUCKETS_S,
            registry=registry,
        ),
        consecutive_failures=Gauge(
            "auditlog_sink_destination_consecutive_failures",
            "Failed delivery attempts in a row, per destination (0: healthy).",
            ["destination"],
            registry=registry,
        ),
        last_success=Gauge(
            "auditlog_sink_destination_last_success_timestamp_seconds",
            "When the destination last acknowledged a delivery (Unix time).",
            ["destination"],
            registry=registry,
        ),
        lag_records=Gauge(
            "auditlog_sink_destination_lag_records",
            "Records of the destination's partitions read by the group but not yet done "
            "for it (summed over this worker's partitions).",
            ["destination"],
            registry=registry,
        ),
        lanes=Gauge(
            "auditlog_sink_lanes",
            "Destination x partition lanes on this worker, by mode (live, catchup, paused).",
            ["mode"],
            registry=registry,
        ),
        destination_lanes=Gauge(
            "auditlog_sink_destination_lanes",
            "A destination's lanes on this worker, by mode: live (in the group's stream), "
            "catchup (parked, resumed or replaying: reading on its own), paused.",
            ["destination", "mode"],
            registry=registry,
        ),
        parked=Counter(
            "auditlog_sink_lanes_parked_total",
            "Lanes of a destination parked: taken out of the group's stream after failing "
            "for park_after_s, a permanent error or a backlog it could not send.",
            ["destination"],
            registry=registry,
        ),
        auto_paused=Counter(
            "auditlog_sink_destinations_auto_paused_total",
            "Destinations this worker paused because they failed for auto_pause_after_s.",
            ["destination"],
            registry=registry,
        ),
        latency=BulkHistogram(
            "auditlog_sink_delivery_latency_seconds",
            "Per record: destination acknowledgement time minus the record's Kafka "
            "timestamp (published).",
            LATENCY_BUCKETS_S,
            registry=registry,
        ),
        held_records=Gauge(
            "auditlog_sink_held_records",
            "Records waiting for partner membership to be known as of their publish time "
            "(docs/partners.md), over this worker's partitions.",
            registry=registry,
        ),
        membership_behind=Gauge(
            "auditlog_sink_membership_behind_seconds",
            "Wall-clock time minus the publish time up to which partner membership is "
            "known (grace + poll when the accounts topic is read; grows when it is not).",
            registry=registry,
        ),
        membership_late_changes=Gauge(
            "auditlog_sink_membership_late_changes",
            "Partner changes read after records of their time were routed (a write slower "
            "than the grace, or clock skew), since the worker started.",
            registry=registry,
        ),
    )
