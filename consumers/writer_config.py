"""What one ClickHouse writer process does (built from settings at the edge), and what it
did (for ``--exit-when-idle`` reports and tests)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.group_consumer import committing_member
from runtime.kafka_connection import KafkaConnection
from runtime.kafka_logs import librdkafka_logger

_CLIENT_LOG = librdkafka_logger("writer")


@dataclass(frozen=True)
class WriterConfig:
    """What one writer process does; built from settings at the edge."""

    kafka: KafkaConnection
    topic: str = "audit.events"
    group_id: str = "clickhouse-writer"
    table: str = "audit.events"
    progress_table: str = "audit.writer_progress"
    batch_max_records: int = 50_000
    batch_max_bytes: int = 32 * 1024 * 1024
    # Every partition's buffer together (a process may own many partitions): above
    # either, the fullest buffers are cut early. With the consumer's queue below, what
    # bounds the writer's memory under any backlog (docs/exactly-once.md, section 3).
    buffered_max_records: int = 200_000
    buffered_max_bytes: int = 128 * 1024 * 1024
    flush_interval_s: float = 1.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    exit_when_idle_s: float | None = None
    librdkafka: Mapping[str, Any] = field(default_factory=dict)

    def consumer_properties(self) -> dict[str, Any]:
        return {
            **committing_member(self.kafka, self.group_id, _CLIENT_LOG),
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
            # The client's prefetch queue. librdkafka's default (64 MiB) let an idle
            # consumer of a 12-partition backlog grow to 600 MB resident; 16 MiB: 180 MB,
            # and reading alone kept its pace (bench/README.md, "Memory over a long run").
            "queued.max.messages.kbytes": 16 * 1024,
            **self.librdkafka,
        }


@dataclass
class WriterStats:
    """What the writer did, for ``--exit-when-idle`` reports and tests."""

    records: int = 0
    rows: int = 0
    batches: int = 0
    dead_lettered: int = 0
    retries: int = 0
