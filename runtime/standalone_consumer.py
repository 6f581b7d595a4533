"""A Kafka consumer that reads by ``assign`` only: no consumer group, no commits.

Readers that must see every partition of a topic (the compacted control tables) or one
partition from a given offset (a sink lane catching up) use it.
"""

from __future__ import annotations

from confluent_kafka import Consumer

from runtime.kafka_connection import KafkaConnection
from runtime.kafka_logs import librdkafka_logger

# librdkafka's own log lines go through Python logging (JSON logs), not stderr.
_CLIENT_LOG = librdkafka_logger("sink")


def standalone_consumer(kafka: KafkaConnection, *, client_id: str, **settings: object) -> Consumer:
    """A consumer for ``assign`` only: it never joins its group and never commits; reads
    from the earliest offset unless told where. ``settings`` add librdkafka properties."""
    return Consumer(
        {
            **kafka.properties(),
            "group.id": f"{client_id}-unused",  # required by the client; never joined
            "client.id": client_id,
            "logger": _CLIENT_LOG,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **settings,
        }
    )
