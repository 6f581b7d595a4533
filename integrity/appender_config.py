"""What one integrity appender process does (built from settings at the edge), and what it
did (for ``--exit-when-idle`` reports and tests)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from integrity.checkpointer import CheckpointPolicy
from integrity.copy_publisher import producer_properties
from runtime.group_consumer import committing_member
from runtime.kafka_connection import KafkaConnection

_CLIENT_LOG = logging.getLogger("auditlog.integrity.client")


@dataclass(frozen=True)
class AppenderConfig:
    kafka: KafkaConnection
    topic: str = "audit.events"
    group_id: str = "integrity-log"
    database: str = "audit"
    batch_max_records: int = 10_000
    flush_interval_s: float = 1.0
    checkpoints: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    exit_when_idle_s: float | None = None
    publish_timeout_s: float = 60.0
    librdkafka: Mapping[str, Any] = field(default_factory=dict)

    def consumer_properties(self) -> dict[str, Any]:
        return {**committing_member(self.kafka, self.group_id, _CLIENT_LOG), **self.librdkafka}

    def producer_properties(self) -> dict[str, Any]:
        """The client that publishes the streamed copy (:mod:`integrity.copy_publisher`)."""
        return producer_properties(self.kafka, delivery_timeout_s=self.publish_timeout_s)


@dataclass
class AppenderStats:
    records: int = 0
    appended: int = 0
    skipped: int = 0
    batches: int = 0
    checkpoints: int = 0
    prune_statements: int = 0
    retries: int = 0
