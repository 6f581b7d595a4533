"""Reading fresh topics back in stack tests: waiting for their leaders, and the audit
events a command published for one tenant."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from schemas.wire import Decoder


def wait_for_leaders(bootstrap: str, partitions: dict[str, int], timeout_s: float) -> None:
    """Until every partition of fresh topics answers (a leader is elected just after)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-unused"})
    deadline = time.monotonic() + timeout_s
    try:
        for topic, count in partitions.items():
            for partition in range(count):
                while True:
                    try:
                        consumer.get_watermark_offsets(TopicPartition(topic, partition), 5)
                        break
                    except KafkaException:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
    finally:
        consumer.close()


def tenant_events(
    bootstrap: str, topic: str, partitions: int, tenant: str, count: int, timeout_s: float
) -> list[dict[str, Any]]:
    """The audit events of ``tenant`` in ``topic``, decoded, in offset order: waits for
    ``count`` of them and returns what it found by then."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    found: list[tuple[int, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < count and time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=0.5):
                assert message.error() is None
                if message.key() != tenant.encode():
                    continue
                value = message.value()
                assert isinstance(value, bytes)
                found.append((message.offset() or 0, Decoder().decode(value)))
    finally:
        consumer.close()
    return [event for _, event in sorted(found, key=lambda item: item[0])]
