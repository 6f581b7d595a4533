"""Reads that ride out a Kafka failover: the sink worker's on assignment and the compacted
tables' (found by the fault tests on a three-node cluster: a killed leader ended the sink
worker inside its rebalance callback)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, KafkaException

from runtime.kafka_failover import while_failing_over

_LOG = logging.getLogger("test")


def _failing(codes: list[int]) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(codes):
            raise KafkaException(KafkaError(codes[len(calls) - 1]))
        return "answered"

    return calls, call


def test_a_read_is_retried_while_the_leader_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runtime.kafka_failover.time.sleep", lambda _s: None)
    calls, call = _failing(
        [KafkaError._TIMED_OUT, KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError._DESTROY_BROKER]
    )

    assert while_failing_over(call, "a read", _LOG) == "answered"
    assert len(calls) == 4


def test_any_other_error_is_raised_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runtime.kafka_failover.time.sleep", lambda _s: None)
    calls, call = _failing([KafkaError.TOPIC_AUTHORIZATION_FAILED])

    with pytest.raises(KafkaException):
        while_failing_over(call, "a read", _LOG)
    assert len(calls) == 1
