"""The writer while ClickHouse is down: it retries for as long as the outage lasts, and a
stop request during any retry (even the startup check of announced ranges) ends ``run``
cleanly. Driven through a fake consumer and a fake ClickHouse client, on a fake clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError
from confluent_kafka import Consumer, TopicPartition

from consumers.dead_letter_budget import DeadLetterBudget, DeadLetterLimit
from consumers.dead_letter_publisher import DeadLetterPublisher
from consumers.writer import ClickHouseWriter, WriterConfig
from runtime.kafka_connection import KafkaConnection

TOPIC = "audit.events"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeConsumer:
    """Enough of confluent_kafka.Consumer for the writer: one partition assigned on the
    first consume, no records; every wait advances the fake clock by its timeout, and
    ``on_poll`` runs on each wait (to stop the writer from "another thread")."""

    clock: FakeClock
    on_poll: Callable[[], None] = lambda: None
    assign: list[TopicPartition] = field(default_factory=lambda: [TopicPartition(TOPIC, 0)])
    polls: int = 0
    closed: bool = False
    paused: set[int] = field(default_factory=set)
    _on_assign: Callable[..., None] | None = None

    def subscribe(self, topics: list[str], **callbacks: Callable[..., None]) -> None:
        self._on_assign = callbacks["on_assign"]

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        if self._on_assign is not None:
            assign, self._on_assign = self._on_assign, None
            assign(self, self.assign)
        self._waited(timeout)
        return []

    def poll(self, timeout: float = -1) -> None:
        self._waited(timeout)

    def _waited(self, timeout: float) -> None:
        self.polls += 1
        self.clock.now += max(timeout, 0.0)
        self.on_poll()

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused.update(tp.partition for tp in partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused.difference_update(tp.partition for tp in partitions)

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> Any:
        return [TopicPartition(tp.topic, tp.partition, 0) for tp in partitions]

    def memberid(self) -> str:
        return "fake-member"

    def close(self) -> None:
        self.closed = True


class DownClickHouse:
    """Every query fails as an unreachable server would, ``failures`` times; then an empty
    progress log answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def query(self, *_args: Any, **_kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("Error HTTPConnectionPool: Connection refused")

        return Rows([])


@dataclass(frozen=True)
class Rows:
    result_rows: list[Any]


class NoDeadLetters:
    def publish(self, *_args: Any) -> None:
        raise AssertionError("nothing is dead-lettered here")

    def flush(self) -> None:
        pass


def _writer(
    client: DownClickHouse, consumer: FakeConsumer, clock: FakeClock, retry_max_s: float
) -> ClickHouseWriter:
    config = WriterConfig(
        kafka=KafkaConnection("unused:9092"), retry_initial_s=0.5, retry_max_s=retry_max_s
    )
    return ClickHouseWriter(
        config,
        cast(Client, client),
        dead_letters=cast(DeadLetterPublisher, NoDeadLetters()),
        budget=DeadLetterBudget(DeadLetterLimit(0.5, 1000), TOPIC, "audit.events.dlq"),
        clock=clock,
        consumer=cast(Consumer, consumer),
        rng=random.Random(4),
    )


def test_the_writer_outlasts_ten_thousand_failed_attempts() -> None:
    """The former backoff (``initial * 2**attempt``) raised OverflowError after about a
    thousand attempts, hours into an outage, and the writer died."""
    clock = FakeClock()
    client = DownClickHouse(failures=10_000)
    writer: ClickHouseWriter | None = None

    def stop_once_clickhouse_answers() -> None:
        assert writer is not None
        if client.calls > client.failures:
            writer.stop()

    consumer = FakeConsumer(clock, on_poll=stop_once_clickhouse_answers)
    writer = _writer(client, consumer, clock, retry_max_s=2.0)
    stats = writer.run()
    assert stats.retries == 10_000
    assert client.calls == 10_001
    assert consumer.paused == set()  # resumed once ClickHouse answered
    assert consumer.closed
    # Full jitter within [0, 2 s]: on average about a second per attempt, never more than 2.
    assert 5_000 < clock.now < 25_000


@pytest.mark.parametrize("stop_after_polls", [2, 7, 40])
def test_a_stop_during_the_startup_check_ends_run_cleanly(stop_after_polls: int) -> None:
    """SIGTERM while the writer checks announced ranges of newly assigned partitions (with
    ClickHouse down) escaped ``run`` as a traceback instead of the documented exit 0."""
    clock = FakeClock()
    client = DownClickHouse(failures=10**9)
    writer: ClickHouseWriter | None = None

    def stop_later() -> None:
        assert writer is not None
        if consumer.polls >= stop_after_polls:
            writer.stop()

    consumer = FakeConsumer(clock, on_poll=stop_later)
    writer = _writer(client, consumer, clock, retry_max_s=30.0)
    stats = writer.run()
    assert stats.records == 0
    assert stats.rows == 0
    assert client.calls >= 1  # the check did run into the outage
    assert consumer.paused == {0}  # nothing was read from the unchecked partition
    assert consumer.closed
