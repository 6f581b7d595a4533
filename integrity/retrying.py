"""Retrying ClickHouse calls while staying in the consumer group.

:meth:`Retrier.run` runs an action until it succeeds. On a transient failure (ClickHouse
unreachable, overloaded, timing out) it pauses every assigned partition and waits out a
capped, full-jitter backoff while polling the consumer, so rebalances are served and the
process stays in its group; records the poll returns are handed to ``on_polled`` (the
caller processes them later, in order). It raises :class:`Abandoned` as soon as the
action's partition is no longer owned (``still_owned`` turns false) or the process is
stopping, and re-raises any other error at once. :func:`read_to_end` tells an idle
consumer whether it has read everything.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import Consumer, Message, TopicPartition

from runtime.backoff import Backoff, UniformSource
from runtime.clickhouse_errors import is_transient

_LOG = logging.getLogger("auditlog.integrity")
_T = TypeVar("_T")
POLL_S = 0.2


class Abandoned(Exception):
    """The partition was revoked, or the process is stopping, while retrying."""


class Retrier:
    """Retries for one consumer's loop (its thread only)."""

    def __init__(
        self,
        consumer: Consumer,
        backoff: Backoff,
        stop: threading.Event,
        *,
        assigned: Callable[[], list[TopicPartition]],
        on_polled: Callable[[Message], None],
        on_retry: Callable[[BaseException], None],
        clock: Callable[[], float],
        rng: UniformSource | None = None,
    ) -> None:
        self._consumer = consumer
        self._backoff = backoff
        self._stop = stop
        self._assigned = assigned
        self._on_polled = on_polled
        self._on_retry = on_retry
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.paused: list[TopicPartition] = []

    def run(self, action: Callable[[], _T], still_owned: Callable[[], bool] = lambda: True) -> _T:
        """``action()``, retried while it fails transiently; see the module docstring."""
        attempt = 0
        while True:
            try:
                result = action()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                delay = self._backoff.delay(attempt, self._rng)
                attempt += 1
                self._on_retry(exc)
                _LOG.warning("ClickHouse failed, retrying in %.2f s: %s", delay, exc)
                self._pause()
                self._wait(delay, still_owned)
                continue
            self.resume()
            return result

    def _wait(self, delay_s: float, still_owned: Callable[[], bool]) -> None:
        deadline = self._clock() + delay_s
        while True:
            if self._stop.is_set() or not still_owned():
                raise Abandoned
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            message = self._consumer.poll(min(remaining, POLL_S))
            if message is not None and message.error() is None:
                self._on_polled(message)

    def _pause(self) -> None:
        if not self.paused:
            self.paused = self._assigned()
            self._consumer.pause(self.paused)

    def resume(self) -> None:
        """Resume what :meth:`run` paused (those partitions still assigned)."""
        if self.paused:
            still = {(tp.topic, tp.partition) for tp in self._assigned()}
            self._consumer.resume([tp for tp in self.paused if (tp.topic, tp.partition) in still])
            self.paused = []


def read_to_end(consumer: Consumer, partitions: list[TopicPartition]) -> bool:
    """Whether the consumer's position in each of ``partitions`` (its committed offset
    where it has read nothing yet) reached the partition's end (asks the broker only when
    the fetcher does not know the end yet)."""
    committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, 10)}
    for tp in consumer.position(partitions):
        _low, high = consumer.get_watermark_offsets(tp, cached=True)
        if high < 0:
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
        offset = tp.offset if tp.offset >= 0 else committed.get(tp.partition, -1)
        if high > 0 and offset < high:
            return False
    return True
