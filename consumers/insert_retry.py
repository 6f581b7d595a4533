"""Retrying a ClickHouse call while ClickHouse fails transiently, without leaving the group.

:meth:`InsertRetry.run` calls an action of the writer (announce a batch's range, insert it,
read the progress log) until it succeeds. When ClickHouse fails transiently
(:func:`~runtime.clickhouse_errors.is_transient`: unreachable, overloaded, timing out) it
pauses every assigned partition and waits out a capped, full-jitter backoff while the
consumer keeps polling, so the member stays in its group and its rebalance callbacks run;
nothing is skipped, nothing committed. Once an attempt succeeds the partitions that may be
read are resumed. Any other error propagates at once.

It gives up with :class:`Abandoned` when, during a wait, the batch's partition is revoked
(its next owner re-forms the announced range, so the insert deduplicates) or the writer is
asked to stop. The writer is seen only through the callbacks it passes in; the backoff, the
jitter's ``rng`` and the ``clock`` are seams for tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import Message, TopicPartition

from consumers.telemetry import WriterObserver
from runtime.backoff import Backoff, UniformSource
from runtime.clickhouse_errors import is_transient
from runtime.group_consumer import GroupConsumer

_LOG = logging.getLogger("auditlog.writer")
_T = TypeVar("_T")
#: Longest single poll of the writer's consumer (here while waiting, and in the writer's
#: loop): how soon a revocation or a stop request is seen.
POLL_S = 0.2


class Abandoned(Exception):
    """The batch's partition was revoked, or the writer is stopping, while retrying."""


class InsertRetry:
    """Runs the writer's ClickHouse calls through transient failures (see the module).

    ``consumer`` is the writer's group consumer (paused, polled and resumed here).
    ``observer`` hears of each retry, pause and resume. From the writer: ``assigned`` lists
    its partitions (all paused while ClickHouse fails), ``readable`` those that may be read
    again once it answers (not those still waiting for their progress check), ``owns``
    tells whether a partition is still assigned, ``stopping`` whether the writer was asked
    to stop, ``take`` receives a record polled while paused (a partition assigned before the
    pause reached it), and ``on_retry`` counts each retry. Use from the writer's thread only.
    """

    def __init__(
        self,
        consumer: GroupConsumer,
        *,
        backoff: Backoff,
        rng: UniformSource,
        clock: Callable[[], float],
        observer: WriterObserver,
        assigned: Callable[[], list[TopicPartition]],
        readable: Callable[[], list[TopicPartition]],
        owns: Callable[[int], bool],
        stopping: Callable[[], bool],
        take: Callable[[Message], None],
        on_retry: Callable[[], None],
    ) -> None:
        self._consumer = consumer
        self._backoff = backoff
        self._rng = rng
        self._clock = clock
        self._observer = observer
        self._assigned = assigned
        self._readable = readable
        self._owns = owns
        self._stopping = stopping
        self._take = take
        self._on_retry = on_retry
        self._paused = False

    @property
    def paused(self) -> bool:
        """Every assigned partition is paused: ClickHouse failed and has not answered since."""
        return self._paused

    def run(self, action: Callable[[], _T], partition: int | None = None) -> _T:
        """Run ``action`` until it succeeds, backing off (capped, full jitter) while
        ClickHouse fails transiently, with every partition paused and the consumer polling.
        Raises :class:`Abandoned` when ``partition`` is revoked or the writer stops."""
        attempt = 0
        while True:
            try:
                result = action()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                delay = self._backoff.delay(attempt, self._rng)
                attempt += 1
                self._on_retry()
                self._observer.retrying(exc)
                _LOG.warning(
                    "ClickHouse failed, retrying in %.2f s: %s",
                    delay,
                    exc,
                    extra={"partition": partition, "attempt": attempt},
                )
                self._pause_all()
                self._wait(delay, partition)
                continue
            if self._paused:
                self._resume_all()
            return result

    def _wait(self, delay_s: float, partition: int | None) -> None:
        """Keep polling (rebalances, group membership) while waiting out ``delay_s``."""
        deadline = self._clock() + delay_s
        while True:
            if self._stopping() or (partition is not None and not self._owns(partition)):
                raise Abandoned
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            self._receive_while_paused(min(remaining, POLL_S))

    def _receive_while_paused(self, timeout_s: float) -> None:
        message = self._consumer.poll(timeout_s)
        if message is not None and message.error() is None:
            self._take(message)

    def _pause_all(self) -> None:
        if not self._paused:
            partitions = self._assigned()
            self._consumer.pause(partitions)
            self._observer.paused(partitions)
            self._paused = True

    def _resume_all(self) -> None:
        """Resume every partition except those still waiting for their progress check."""
        partitions = self._readable()
        self._consumer.resume(partitions)
        self._observer.resumed(partitions)
        self._paused = False
