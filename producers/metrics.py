"""Prometheus metrics of the producer SDK.

Metrics are registered once per registry (the process-wide default unless one is given),
so any number of producers in a process share them, labelled by topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True)
class ProducerMetrics:
    published: Counter
    failed: Counter
    rejected: Counter
    queue_full_waits: Counter
    delivery_latency: Histogram


@cache
def producer_metrics(registry: CollectorRegistry = REGISTRY) -> ProducerMetrics:
    """The producer metrics registered in ``registry`` (created on first use)."""
    return ProducerMetrics(
        published=Counter(
            "auditlog_producer_published_total",
            "Events acknowledged by the broker.",
            ["topic"],
            registry=registry,
        ),
        failed=Counter(
            "auditlog_producer_failed_total",
            "Events whose delivery failed (after the client's retries).",
            ["topic"],
            registry=registry,
        ),
        rejected=Counter(
            "auditlog_producer_rejected_total",
            "Events refused before sending because they were invalid, by broken rule.",
            ["rule"],
            registry=registry,
        ),
        queue_full_waits=Counter(
            "auditlog_producer_queue_full_waits_total",
            "Times publish had to wait for room in the local queue (backpressure).",
            ["topic"],
            registry=registry,
        ),
        delivery_latency=Histogram(
            "auditlog_producer_delivery_latency_seconds",
            "Time from publish to the broker's acknowledgement.",
            ["topic"],
            buckets=_LATENCY_BUCKETS_S,
            registry=registry,
        ),
    )
