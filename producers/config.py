"""What an :class:`~producers.producer.AuditProducer` needs to know, built at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.kafka_connection import KafkaConnection


@dataclass(frozen=True)
class ProducerConfig:
    """Connection and delivery settings of one producer.

    ``kafka`` says where the brokers are and how to authenticate (see
    :mod:`runtime.kafka_connection`).

    ``queue_max_events`` bounds the local queue; a full queue makes ``publish`` wait up to
    ``publish_timeout_s`` and then raise. An event not acknowledged within
    ``delivery_timeout_s`` (retries included) is reported as failed. ``librdkafka``
    passes further client properties through unchanged.
    """

    kafka: KafkaConnection
    topic: str = "audit.events"
    client_id: str = "auditlog-producer"
    queue_max_events: int = 100_000
    publish_timeout_s: float = 10.0
    delivery_timeout_s: float = 30.0
    compression: str = "zstd"
    linger_ms: int = 20
    batch_max_bytes: int = 1_000_000
    librdkafka: Mapping[str, Any] = field(default_factory=dict)

    def client_properties(self) -> dict[str, Any]:
        """The confluent-kafka (librdkafka) configuration of this producer."""
        return {
            **self.kafka.properties(),
            "client.id": self.client_id,
            # Exactly one copy per acknowledged event, in order per partition.
            "enable.idempotence": True,
            "acks": "all",
            # The Java client's default partitioner: the same tenant key lands on the same
            # partition whichever language's producer publishes it.
            "partitioner": "murmur2_random",
            "compression.type": self.compression,
            "linger.ms": self.linger_ms,
            "batch.size": self.batch_max_bytes,
            "queue.buffering.max.messages": self.queue_max_events,
            "message.timeout.ms": int(self.delivery_timeout_s * 1000),
            **self.librdkafka,
        }
