"""A consumer-group member that commits offsets itself, only after what it did with the
records landed (the ClickHouse writer, the sink worker, the integrity appender).

:class:`GroupConsumer` is what the writer and the sink worker ask of their group consumer:
exactly the ``confluent_kafka.Consumer`` methods they call, so a fake broker's consumer
(tests) or the real one (built at the edge, :mod:`auditlog.wiring`) can be passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, Protocol

from confluent_kafka import Message, TopicPartition

from runtime.kafka_connection import KafkaConnection

#: A rebalance callback: ``on_assign``, ``on_revoke``, ``on_lost``.
Rebalance = Callable[["GroupConsumer", list[TopicPartition]], None]


class GroupConsumer(Protocol):
    """The group consumer's methods the writer and the sink worker call (with
    confluent-kafka's meaning): ``confluent_kafka.Consumer`` fits."""

    def subscribe(
        self,
        topics: list[str],
        on_assign: Rebalance | None = ...,
        on_revoke: Rebalance | None = ...,
        on_lost: Rebalance | None = ...,
    ) -> None: ...

    def consume(self, num_messages: int = ..., timeout: float = ...) -> list[Message]: ...

    def poll(self, timeout: float = ...) -> Message | None: ...

    def incremental_assign(self, partitions: list[TopicPartition]) -> None: ...

    def pause(self, partitions: list[TopicPartition]) -> None: ...

    def resume(self, partitions: list[TopicPartition]) -> None: ...

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...

    def seek(self, partition: TopicPartition) -> None: ...

    def committed(
        self, partitions: list[TopicPartition], timeout: float = ...
    ) -> list[TopicPartition]: ...

    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[False]
    ) -> list[TopicPartition]: ...

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = ..., cached: bool = ...
    ) -> tuple[int, int]: ...

    def memberid(self) -> str: ...

    def close(self) -> None: ...


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
