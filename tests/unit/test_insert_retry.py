"""Retrying the writer's ClickHouse calls (consumers.insert_retry): what is retried, what
is paused and resumed, when a retry is abandoned. A fake consumer on a fake clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from confluent_kafka import Consumer, Message, TopicPartition

from consumers.insert_retry import Abandoned, InsertRetry
from consumers.telemetry import NoObserver
from runtime.backoff import Backoff
from runtime.clickhouse_errors import is_transient

TOPIC = "audit.events"


@dataclass
class FakeConsumer:
    """Pauses, resumes and polls; every poll advances the clock by its timeout and runs
    ``on_poll``."""

    now: float = 0.0
    paused: set[int] = field(default_factory=set)
    polls: int = 0
    on_poll: Callable[[], None] = lambda: None

    def clock(self) -> float:
        return self.now

    def poll(self, timeout: float) -> Message | None:
        self.polls += 1
        self.now += timeout
        self.on_poll()
        return None

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused.update(tp.partition for tp in partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused.difference_update(tp.partition for tp in partitions)


@dataclass
class Writer:
    """The writer's side: partitions 0 and 1 assigned, 1 still waiting for its check."""

    assigned: set[int] = field(default_factory=lambda: {0, 1})
    unchecked: set[int] = field(default_factory=lambda: {1})
    stopping: bool = False
    retries: int = 0


def _retry(consumer: FakeConsumer, writer: Writer) -> InsertRetry:
    def partitions(numbers: set[int]) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in sorted(numbers)]

    def count() -> None:
        writer.retries += 1

    return InsertRetry(
        cast(Consumer, consumer),
        backoff=Backoff(0.5, 2.0),
        rng=random.Random(1),
        clock=consumer.clock,
        observer=NoObserver(),
        assigned=lambda: partitions(writer.assigned),
        readable=lambda: partitions(writer.assigned - writer.unchecked),
        owns=writer.assigned.__contains__,
        stopping=lambda: writer.stopping,
        take=lambda _message: None,
        on_retry=count,
    )


class Flaky:
    """Fails ``failures`` times with ``error``, then answers ``"done"``."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def _refused_data() -> DatabaseError:
    """ClickHouse refusing the data itself (code 27: cannot parse input)."""
    error = DatabaseError("Code: 27. Cannot parse input")
    error.code = 27
    return error


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OperationalError("connection refused"), True),
        (OSError("reset by peer"), True),
        (DatabaseError("Code: 241. Memory limit exceeded"), True),
        (_refused_data(), False),
        (ValueError("a bug"), False),
    ],
)
def test_what_counts_as_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_transient_failure_pauses_everything_and_resumes_only_what_may_be_read() -> None:
    consumer, writer = FakeConsumer(), Writer()
    retry = _retry(consumer, writer)
    seen_paused: list[set[int]] = []
    action = Flaky(3, OperationalError("connection refused"))

    def watched() -> str:
        seen_paused.append(set(consumer.paused))
        return action()

    assert retry.run(watched, partition=0) == "done"
    assert action.calls == 4
    assert writer.retries == 3
    assert seen_paused == [set(), {0, 1}, {0, 1}, {0, 1}]
    assert consumer.paused == {1}  # still waiting for its progress check
    assert not retry.paused
    assert 0 < consumer.now <= 0.5 + 1.0 + 2.0  # full jitter under the capped ceilings


def test_any_other_error_propagates_at_once_without_pausing() -> None:
    consumer, writer = FakeConsumer(), Writer()
    action = Flaky(1, ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        _retry(consumer, writer).run(action, partition=0)
    assert action.calls == 1
    assert writer.retries == 0
    assert consumer.paused == set()
    assert consumer.polls == 0


@pytest.mark.parametrize("event", ["revoked", "stopping"])
def test_a_revoked_partition_or_a_stop_abandons_the_retry(event: str) -> None:
    consumer, writer = FakeConsumer(), Writer()

    def happen() -> None:
        if event == "revoked":
            writer.assigned.discard(0)
        else:
            writer.stopping = True

    consumer.on_poll = happen
    action = Flaky(1_000, OperationalError("connection refused"))
    with pytest.raises(Abandoned):
        _retry(consumer, writer).run(action, partition=0)
    assert action.calls == 1
    assert consumer.polls == 1


def test_a_call_for_no_partition_is_abandoned_only_by_a_stop() -> None:
    consumer, writer = FakeConsumer(), Writer()
    consumer.on_poll = writer.assigned.clear
    action = Flaky(5, OperationalError("connection refused"))
    assert _retry(consumer, writer).run(action) == "done"
    assert writer.retries == 5
