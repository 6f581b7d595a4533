"""The fake Kafka broker (tests/fakes/) tells the truth: the same scenarios, run against
the real broker of the stack and against the fake, observe the same results.

Each scenario takes a :class:`Cluster` (the real one or the fake) and asserts only what the
code under test relies on: records keep their key, value, headers and timestamp; delivery
reports; commit then committed, and a new member resuming there; watermarks; the position
after consuming; pause and resume (and a pause inside ``on_assign``); the rebalance
callbacks when a member joins and leaves (which partitions move is the assignor's choice:
only the shape is compared).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Protocol

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from deploy.stack.endpoints import StackEndpoints
from runtime.group_consumer import committing_member
from runtime.kafka_connection import KafkaConnection
from tests.fakes.kafka_broker import FakeBroker

pytestmark = pytest.mark.stack

DEADLINE_S = 60.0  # bounds a hang only: the fake never waits, the real broker settles sooner


class Cluster(Protocol):
    """What a scenario needs of a Kafka cluster."""

    def topic(self, partitions: int) -> str: ...

    def producer(self) -> Producer: ...

    def member(self, group: str) -> Consumer:
        """A committing group member configured as the writer's (cooperative-sticky)."""
        ...

    def reader(self) -> Consumer:
        """A consumer for ``assign`` only."""
        ...


class RealCluster:
    def __init__(self, bootstrap: str) -> None:
        self.kafka = KafkaConnection(bootstrap)
        self.admin = AdminClient(self.kafka.properties())
        self.topics: list[str] = []
        self.clients: list[Consumer] = []

    def topic(self, partitions: int) -> str:
        name = f"test.contract.{uuid.uuid4().hex[:12]}"
        self.admin.create_topics([NewTopic(name, partitions)])[name].result(timeout=30)
        self.topics.append(name)
        return name

    def producer(self) -> Producer:
        return Producer({**self.kafka.properties(), "linger.ms": 0})

    def member(self, group: str) -> Consumer:
        logger = logging.getLogger("tests.contract.client")
        return Consumer(committing_member(self.kafka, group, logger))

    def reader(self) -> Consumer:
        return Consumer(
            {
                **self.kafka.properties(),
                "group.id": f"contract-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )

    def drop(self) -> None:
        if self.topics:
            for future in self.admin.delete_topics(self.topics).values():
                future.result(timeout=30)


class FakeCluster:
    def __init__(self) -> None:
        self.broker = FakeBroker()

    def topic(self, partitions: int) -> str:
        name = f"test.contract.{uuid.uuid4().hex[:12]}"
        self.broker.create_topic(name, partitions)
        return name

    def producer(self) -> Producer:
        return self.broker.producer()

    def member(self, group: str) -> Consumer:
        return self.broker.consumer(group)

    def reader(self) -> Consumer:
        return self.broker.consumer()


@pytest.fixture(params=["real", "fake"])
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if request.param == "fake":
        yield FakeCluster()
        return
    endpoints: StackEndpoints = request.getfixturevalue("stack_endpoints")
    real = RealCluster(endpoints.kafka_bootstrap)
    try:
        yield real
    finally:
        real.drop()


# -- helpers ------------------------------------------------------------------------------


def produce(producer: Producer, topic: str, partition: int, values: list[bytes]) -> None:
    failures: list[KafkaError] = []

    def report(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err)

    for value in values:
        producer.produce(topic, value, partition=partition, on_delivery=report)
    assert producer.flush(30) == 0
    assert failures == []


def settle(
    consumers: list[Consumer], done: Callable[[list[Message]], bool], what: str
) -> list[Message]:
    """Poll every consumer in turn (rebalances need all members polling) until ``done``
    holds for the records received so far; returns them."""
    received: list[Message] = []
    deadline = time.monotonic() + DEADLINE_S
    while not done(received):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        for consumer in consumers:
            received += [m for m in consumer.consume(100, timeout=0.1) if m.error() is None]
    return received


def at_least(count: int) -> Callable[[list[Message]], bool]:
    return lambda received: len(received) >= count


def places(messages: list[Message]) -> list[tuple[int | None, int | None]]:
    return sorted((m.partition(), m.offset()) for m in messages)


class Callbacks:
    """A member's rebalance callbacks, in order (empty lists dropped: the real client may
    call ``on_assign`` with nothing new after a cooperative rebalance)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, set[int]]] = []

    def subscribe(self, consumer: Consumer, topic: str) -> None:
        consumer.subscribe(
            [topic],
            on_assign=lambda _c, tps: self._saw("assign", tps),
            on_revoke=lambda _c, tps: self._saw("revoke", tps),
            on_lost=lambda _c, tps: self._saw("lost", tps),
        )

    def _saw(self, what: str, partitions: list[TopicPartition]) -> None:
        if partitions:
            self.seen.append((what, {tp.partition for tp in partitions}))

    def held(self) -> set[int]:
        held: set[int] = set()
        for what, partitions in self.seen:
            held = held | partitions if what == "assign" else held - partitions
        return held


# -- scenarios ----------------------------------------------------------------------------


def test_records_keep_key_value_headers_and_timestamp(cluster: Cluster) -> None:
    topic = cluster.topic(1)
    producer = cluster.producer()
    reports: list[tuple[KafkaError | None, int | None]] = []

    def report(err: KafkaError | None, msg: Message) -> None:
        reports.append((err, msg.offset()))

    producer.produce(
        topic,
        b"one",
        b"acme",
        headers=[("h", b"1"), ("n", None), ("h", "2")],
        timestamp=1_700_000_000_123,
        on_delivery=report,
    )
    producer.produce(topic, "two", on_delivery=report)
    producer.produce(topic, None, "key", headers={"d": b"x"}, on_delivery=report)
    assert producer.flush(30) == 0
    assert len(producer) == 0
    assert reports == [(None, 0), (None, 1), (None, 2)]

    reader = cluster.reader()
    reader.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    try:
        first, second, third = settle([reader], at_least(3), "three records")
    finally:
        reader.close()
    assert (first.topic(), first.partition(), first.offset()) == (topic, 0, 0)
    assert (first.key(), first.value(), len(first)) == (b"acme", b"one", 3)
    assert first.headers() == [("h", b"1"), ("n", None), ("h", b"2")]
    assert first.timestamp() == (TIMESTAMP_CREATE_TIME, 1_700_000_000_123)
    assert (second.key(), second.value(), second.headers()) == (None, b"two", None)
    assert second.timestamp()[0] == TIMESTAMP_CREATE_TIME
    assert second.timestamp()[1] > 0
    assert (third.key(), third.value(), third.headers(), len(third)) == (
        b"key",
        None,
        [("d", b"x")],
        0,
    )


def test_commit_then_committed_and_the_next_member_resumes_there(cluster: Cluster) -> None:
    topic = cluster.topic(2)
    producer = cluster.producer()
    produce(producer, topic, 0, [b"a", b"b", b"c"])
    produce(producer, topic, 1, [b"d", b"e"])
    group = f"contract-{uuid.uuid4().hex[:8]}"
    asked = [TopicPartition(topic, 0), TopicPartition(topic, 1)]

    first = cluster.member(group)
    first.subscribe([topic])
    try:
        settle([first], at_least(5), "every record")
        done = first.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
        assert [(tp.topic, tp.partition, tp.offset, tp.error) for tp in done] == [
            (topic, 0, 2, None)
        ]
        assert [tp.offset for tp in first.committed(asked, timeout=30)] == [2, OFFSET_INVALID]
    finally:
        first.close()

    second = cluster.member(group)
    second.subscribe([topic])
    try:
        resumed = settle([second], at_least(3), "the records after the commit")
    finally:
        second.close()
    assert places(resumed) == [(0, 2), (1, 0), (1, 1)]


def test_watermarks_and_the_position_after_consuming(cluster: Cluster) -> None:
    topic = cluster.topic(2)
    produce(cluster.producer(), topic, 0, [b"a", b"b", b"c"])
    reader = cluster.reader()
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    try:
        assert reader.get_watermark_offsets(tp0, timeout=30) == (0, 3)
        assert reader.get_watermark_offsets(tp1, timeout=30) == (0, 0)
        reader.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        assert [tp.offset for tp in reader.position([tp0])] == [OFFSET_INVALID]
        settle([reader], at_least(3), "three records")
        assert [tp.offset for tp in reader.position([tp0])] == [3]
        assert reader.get_watermark_offsets(tp0, cached=True)[1] == 3
    finally:
        reader.close()


def test_a_paused_partition_yields_nothing_until_resumed(cluster: Cluster) -> None:
    topic = cluster.topic(2)
    producer = cluster.producer()
    produce(producer, topic, 0, [b"a", b"b"])
    produce(producer, topic, 1, [b"c", b"d"])
    reader = cluster.reader()
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in (0, 1)])
    reader.pause([TopicPartition(topic, 0)])
    try:
        while_paused = settle([reader], at_least(2), "the unpaused partition")
        reader.resume([TopicPartition(topic, 0)])
        after = settle([reader], at_least(2), "the resumed partition")
    finally:
        reader.close()
    assert places(while_paused) == [(1, 0), (1, 1)]
    assert places(after) == [(0, 0), (0, 1)]


def test_a_member_joining_and_leaving_moves_partitions_through_the_callbacks(
    cluster: Cluster,
) -> None:
    topic = cluster.topic(4)
    group = f"contract-{uuid.uuid4().hex[:8]}"
    first, second = cluster.member(group), cluster.member(group)
    first_seen, second_seen = Callbacks(), Callbacks()
    try:
        first_seen.subscribe(first, topic)
        settle([first], lambda _: first_seen.held() == {0, 1, 2, 3}, "the first assignment")
        assert first_seen.seen == [("assign", {0, 1, 2, 3})]

        second_seen.subscribe(second, topic)
        settle(
            [first, second],
            lambda _: len(first_seen.held()) == 2 and len(second_seen.held()) == 2,
            "the partitions to be shared",
        )
        [(revoke, moved)] = first_seen.seen[1:]
        assert revoke == "revoke"
        assert second_seen.seen == [("assign", moved)]
        assert first_seen.held() | moved == {0, 1, 2, 3}

        second.close()
        assert second_seen.seen[-1] == ("revoke", moved)
        settle([first], lambda _: first_seen.held() == {0, 1, 2, 3}, "the survivor")
        assert first_seen.seen[-1] == ("assign", moved)
    finally:
        for consumer in (first, second):
            with contextlib.suppress(RuntimeError):  # already closed
                consumer.close()


@pytest.mark.parametrize("assign_first", [False, True])
def test_a_pause_inside_on_assign_holds_only_after_incremental_assign(
    cluster: Cluster, assign_first: bool
) -> None:
    """confluent_kafka assigns the partitions given to ``on_assign`` after it returns,
    unless it assigned them itself, and the assignment resumes them: a pause made there
    before ``incremental_assign`` is lost (the records arrive), after it, it holds."""
    topic = cluster.topic(2)
    producer = cluster.producer()
    produce(producer, topic, 0, [b"a", b"b"])
    produce(producer, topic, 1, [b"c", b"d"])
    member = cluster.member(f"contract-{uuid.uuid4().hex[:8]}")

    def pause_first(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if assign_first:
            consumer.incremental_assign(partitions)
        consumer.pause([tp for tp in partitions if tp.partition == 0])

    member.subscribe([topic], on_assign=pause_first)
    try:
        if not assign_first:
            assert places(settle([member], at_least(4), "every record")) == [
                (0, 0),
                (0, 1),
                (1, 0),
                (1, 1),
            ]
            return
        while_paused = settle([member], at_least(2), "the partition not paused")
        member.resume([TopicPartition(topic, 0)])
        after = settle([member], at_least(2), "the resumed partition")
    finally:
        member.close()
    assert places(while_paused) == [(1, 0), (1, 1)]
    assert places(after) == [(0, 0), (0, 1)]
