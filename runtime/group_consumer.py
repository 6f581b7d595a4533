"""A consumer-group member that commits offsets itself, only after what it did with the
records landed (the ClickHouse writer, the integrity appender)."""

from __future__ import annotations

import logging
from typing import Any

from runtime.kafka_connection import KafkaConnection


def committing_member(
    kafka: KafkaConnection, group_id: str, logger: logging.Logger
) -> dict[str, Any]:
    """librdkafka properties of such a member: no automatic commit nor offset store, the
    earliest offset for a new group, cooperative-sticky rebalancing (a member joining or
    leaving moves only the partitions it must), transactional records only once committed,
    and the client's own log lines through ``logger``. A caller adds its own."""
    return {
        **kafka.properties(),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "isolation.level": "read_committed",
        "logger": logger,
    }
