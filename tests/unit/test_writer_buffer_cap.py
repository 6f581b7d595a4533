"""The writer's buffers together stay under ``buffered_max_records`` and
``buffered_max_bytes``: past either, the fullest partitions are cut early (never one that
re-forms an announced range), so its memory does not grow with the partitions it owns."""

from __future__ import annotations

from typing import cast

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Message

from consumers.batches import PartitionBuffer
from consumers.dead_letter_budget import DeadLetterBudget, DeadLetterLimit
from consumers.dead_letter_publisher import DeadLetterPublisher
from consumers.writer import ClickHouseWriter
from consumers.writer_config import WriterConfig
from runtime.kafka_connection import KafkaConnection

TOPIC = "audit.events"


def _writer(max_records: int, max_bytes: int = 1 << 30) -> ClickHouseWriter:
    config = WriterConfig(
        kafka=KafkaConnection("unused:9092"),
        buffered_max_records=max_records,
        buffered_max_bytes=max_bytes,
    )
    return ClickHouseWriter(
        config,
        cast(Client, object()),
        dead_letters=cast(DeadLetterPublisher, object()),
        budget=DeadLetterBudget(DeadLetterLimit(0.5, 1000), TOPIC, "audit.events.dlq"),
        consumer=cast(Consumer, object()),
    )


def _fill(writer: ClickHouseWriter, partition: int, count: int, size: int = 10) -> None:
    buffer = writer._new_buffer(partition)
    records = [
        Message(topic=TOPIC, partition=partition, offset=o, value=b"x" * size) for o in range(count)
    ]
    assert not buffer.extend(records, 0.0)
    writer._buffers[partition] = buffer


def _buffered(writer: ClickHouseWriter) -> dict[int, int]:
    return {p: len(b.records) for p, b in writer._buffers.items()}


def test_under_the_cap_nothing_is_cut() -> None:
    writer = _writer(max_records=10)
    _fill(writer, 0, 4)
    _fill(writer, 1, 6)
    writer._cut_when_full()
    assert not writer._ready
    assert _buffered(writer) == {0: 4, 1: 6}


def test_over_the_cap_the_fullest_partitions_are_cut_until_under_it() -> None:
    writer = _writer(max_records=10)
    _fill(writer, 0, 3)
    _fill(writer, 1, 7)
    _fill(writer, 2, 5)
    writer._cut_when_full()
    assert [(b.partition, len(b.records)) for b in writer._ready] == [(1, 7)]
    assert _buffered(writer) == {0: 3, 1: 0, 2: 5}
    assert (writer._ready[0].first_offset, writer._ready[0].last_offset) == (0, 6)


def test_the_byte_cap_cuts_too() -> None:
    writer = _writer(max_records=1000, max_bytes=100)
    _fill(writer, 0, 6, size=10)
    _fill(writer, 1, 5, size=10)
    writer._cut_when_full()
    assert [b.partition for b in writer._ready] == [0]
    assert _buffered(writer) == {0: 0, 1: 5}


def test_a_range_being_re_formed_is_not_cut_early() -> None:
    writer = _writer(max_records=4)
    _fill(writer, 0, 2)
    re_forming = PartitionBuffer(TOPIC, 1, 50_000, 1 << 30, 1.0, announced_last=99)
    for offset in range(6):
        assert not re_forming.add(Message(topic=TOPIC, partition=1, offset=offset, value=b"x"), 0)
    writer._buffers[1] = re_forming
    writer._cut_when_full()
    assert [b.partition for b in writer._ready] == [0]
    assert _buffered(writer) == {0: 0, 1: 6}
