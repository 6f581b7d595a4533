"""``DeadLetterPublisher`` against the real broker: dead letters keep the original record and
say why and where from; a dead letter that cannot be delivered fails the flush.

The broker runs with ``auto.create.topics.enable=false``, so a missing topic stays missing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from consumers import dead_letter_publisher as dl
from consumers.dead_letter_publisher import DeadLetterError, DeadLetterPublisher
from consumers.dead_letter_reasons import MAX_DETAIL_BYTES, Poison
from deploy.stack.endpoints import StackEndpoints
from producers.topic_specs import DEAD_LETTER_MAX_MESSAGE_BYTES
from runtime.kafka_connection import KafkaConnection

pytestmark = pytest.mark.stack

TIMEOUT_S = 30.0
SOURCE = "audit.events.test-source"


@pytest.fixture
def dlq_topic(stack_endpoints: StackEndpoints) -> Iterator[str]:
    """A fresh one-partition topic (so records come back in order), deleted afterwards."""
    name = f"test.dlq.{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": stack_endpoints.kafka_bootstrap})
    created = admin.create_topics(
        [NewTopic(name, num_partitions=1, config={"max.message.bytes": "1114112"})]
    )
    created[name].result(timeout=TIMEOUT_S)
    yield name
    admin.delete_topics([name], operation_timeout=TIMEOUT_S)[name].result(timeout=TIMEOUT_S)


def _read(bootstrap: str, topic: str, count: int) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-dlq-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    records: list[Message] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(records) < count and time.monotonic() < deadline:
            for msg in consumer.consume(count - len(records), timeout=0.5):
                assert msg.error() is None, msg.error()
                records.append(msg)
    finally:
        consumer.close()
    assert len(records) == count, f"read {len(records)} of {count}"
    return records


def _poisons() -> list[Poison]:
    return [
        Poison(
            partition=4,
            offset=1234,
            key=b"tenant-a",
            value=b"\x00garbage",
            headers=[("auditlog-tenant", b"tenant-a"), ("auditlog-schema", b"sr:0")],
            reason="unknown-schema",
            detail="value uses schema-registry id 0 but no registry is configured",
        ),
        Poison(
            partition=0,
            offset=7,
            key=None,
            value=b"not avro at all",
            headers=[],
            reason="not-framed",
            detail="value of 15 bytes starts with 6e6f: neither ...",
        ),
        Poison(
            partition=2,
            offset=99,
            key=b"tenant-b",
            value=None,
            headers=[("auditlog-tenant", b"tenant-b"), ("empty", None), ("auditlog-tenant", b"x")],
            reason="rejected-by-clickhouse",
            detail="Code: 117. " + "x" * 10_000,
        ),
    ]


def test_dead_letters_carry_the_original_record_and_why(
    stack_endpoints: StackEndpoints, dlq_topic: str
) -> None:
    poisons = _poisons()
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    with DeadLetterPublisher(
        KafkaConnection(stack_endpoints.kafka_bootstrap), dlq_topic
    ) as publisher:
        for poison in poisons:
            publisher.publish(SOURCE, poison)
        publisher.flush(TIMEOUT_S)
        assert publisher.in_flight() == 0
    after = datetime.now(UTC)

    records = _read(stack_endpoints.kafka_bootstrap, dlq_topic, len(poisons))
    for poison, msg in zip(poisons, records, strict=True):
        assert msg.key() == poison.key
        assert msg.value() == poison.value
        headers = msg.headers() or []
        assert isinstance(headers, list)
        original, added = headers[: len(poison.headers)], headers[len(poison.headers) :]
        assert original == list(poison.headers)  # order, repeats and null values kept
        extra = dict(added)
        assert list(extra) == list(dl.DEAD_LETTER_HEADERS)
        assert extra[dl.REASON] == poison.reason.encode()
        assert extra[dl.DETAIL] == poison.detail.encode()
        assert extra[dl.SOURCE_TOPIC] == SOURCE.encode()
        assert extra[dl.SOURCE_PARTITION] == str(poison.partition).encode()
        assert extra[dl.SOURCE_OFFSET] == str(poison.offset).encode()
        stamp = extra[dl.TIME]
        assert isinstance(stamp, bytes)
        assert stamp.endswith(b"Z")
        assert len(stamp) == len(b"2026-11-25T10:00:00.123Z")
        assert before <= datetime.fromisoformat(stamp.decode()) <= after
    long_detail = dict(records[2].headers() or [])[dl.DETAIL]
    assert isinstance(long_detail, bytes)
    assert len(long_detail) <= MAX_DETAIL_BYTES
    assert long_detail.endswith(b" [truncated]")


def test_flush_fails_when_the_dead_letter_topic_does_not_exist(
    stack_endpoints: StackEndpoints,
) -> None:
    missing = f"test.dlq.missing.{uuid.uuid4().hex[:12]}"
    publisher = DeadLetterPublisher(
        KafkaConnection(stack_endpoints.kafka_bootstrap), missing, delivery_timeout_s=1.5
    )
    poisons = _poisons()
    for poison in poisons:
        publisher.publish(SOURCE, poison)
    with pytest.raises(DeadLetterError) as raised:
        publisher.flush(TIMEOUT_S)
    error = raised.value
    assert error.topic == missing
    assert error.undelivered == 0
    assert sorted((f.partition, f.offset, f.reason) for f in error.failures) == sorted(
        (p.partition, p.offset, p.reason) for p in poisons
    )
    assert all(f.source_topic == SOURCE for f in error.failures)
    assert missing in str(error)
    assert f"{SOURCE}[4]@1234 (unknown-schema)" in str(error)
    # Each failure is reported once: nothing new was published since.
    publisher.close(TIMEOUT_S)


def test_a_record_too_large_for_the_dead_letter_topic_is_refused_at_once(
    stack_endpoints: StackEndpoints, dlq_topic: str
) -> None:
    poison = Poison(
        partition=1,
        offset=5,
        key=b"tenant-a",
        value=b"\xc3\x01" + b"\x00" * DEAD_LETTER_MAX_MESSAGE_BYTES,
        headers=[],
        reason="corrupt-datum",
        detail="too big",
    )
    with DeadLetterPublisher(
        KafkaConnection(stack_endpoints.kafka_bootstrap), dlq_topic
    ) as publisher:
        with pytest.raises(DeadLetterError, match=r"\[1\]@5 \(corrupt-datum\)"):
            publisher.publish(SOURCE, poison)
        assert publisher.in_flight() == 0
