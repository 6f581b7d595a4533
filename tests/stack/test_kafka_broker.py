"""Consumer-group offsets against the real broker of the test stack."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from deploy.stack.endpoints import StackEndpoints

pytestmark = pytest.mark.stack

PARTITIONS = 3
TIMEOUT_S = 30.0


@pytest.fixture
def bootstrap(stack_endpoints: StackEndpoints) -> str:
    return stack_endpoints.kafka_bootstrap


@pytest.fixture
def topic(bootstrap: str) -> Iterator[str]:
    """A fresh topic with several partitions, deleted afterwards."""
    name = f"test.kafka-broker.{uuid.uuid4().hex}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])[
        name
    ].result(timeout=TIMEOUT_S)
    yield name
    admin.delete_topics([name])[name].result(timeout=TIMEOUT_S)


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Write ``values`` keyed over a few tenants (so all partitions get some); wait for acks."""
    failures: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i, value in enumerate(values):
        producer.produce(topic, value=value, key=f"tenant-{i % 7}", on_delivery=on_delivery)
    assert producer.flush(TIMEOUT_S) == 0, "messages still in flight"
    assert failures == []


def _consumer(bootstrap: str, group: str, topic: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            # Without a committed offset a consumer would start at the beginning: a lost
            # commit shows up as old messages, not as silence.
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    return consumer


def _consume(consumer: Consumer, count: int) -> list[bytes]:
    """Poll until ``count`` messages arrived; fail after TIMEOUT_S."""
    received: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(received) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        value = msg.value()
        assert value is not None
        received.append(value)
    assert len(received) == count, f"got {len(received)} of {count} messages in {TIMEOUT_S} s"
    return received


def _end_offsets(consumer: Consumer, topic: str) -> list[int]:
    return [
        consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S)[1]
        for p in range(PARTITIONS)
    ]


def _positions(consumer: Consumer, topic: str) -> list[int]:
    return [tp.offset for tp in consumer.position(_all_partitions(topic))]


def _all_partitions(topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(PARTITIONS)]


def test_second_consumer_resumes_after_committed_offsets(bootstrap: str, topic: str) -> None:
    group = f"test-group-{uuid.uuid4().hex}"
    first_batch = [f"first-{i}".encode() for i in range(60)]
    second_batch = [f"second-{i}".encode() for i in range(25)]

    _produce(bootstrap, topic, first_batch)
    first = _consumer(bootstrap, group, topic)
    try:
        assert sorted(_consume(first, len(first_batch))) == sorted(first_batch)
        first.commit(asynchronous=False)
        end_after_first = _end_offsets(first, topic)
        assert all(end > 0 for end in end_after_first), "every partition should hold messages"
        committed = first.committed(_all_partitions(topic), timeout=TIMEOUT_S)
        assert [tp.offset for tp in committed] == end_after_first
    finally:
        first.close()

    second = _consumer(bootstrap, group, topic)
    try:
        _produce(bootstrap, topic, second_batch)
        assert sorted(_consume(second, len(second_batch))) == sorted(second_batch)
        # Caught up with every partition's end: nothing else (no first-batch message) is due.
        assert _positions(second, topic) == _end_offsets(second, topic)
    finally:
        second.close()
