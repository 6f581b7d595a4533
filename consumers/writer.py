"""The ClickHouse writer: the ``clickhouse-writer`` consumer group, exactly once into
``audit.events``.

Loop (one thread): consume records and add them to per-partition buffers
(:mod:`consumers.batches`); for every batch that completes: slice and upcast its datums,
announce its range in the progress log, insert it as one Avro block under its
deduplication token (:mod:`consumers.inserter`), send its poison to the dead-letter topic
and wait for the acknowledgement, then commit ``last_offset + 1`` for its partition.
Offsets are never committed past what landed.

Faults: a transient ClickHouse failure pauses every assigned partition, and the insert is
retried with capped, full-jitter exponential backoff while the consumer keeps polling (it
stays in the group; nothing is skipped). A batch whose partition is revoked meanwhile is
abandoned uncommitted; its next owner re-forms the announced range from the progress log,
so the insert deduplicates. :meth:`ClickHouseWriter.stop` (SIGTERM, SIGINT) lets the
current insert finish or abandons its retries, commits what landed, and leaves the group.
Too many poison records raise :class:`~consumers.dead_letters.DeadLetterLimitExceeded`
before anything of that batch is dead-lettered or committed.
"""

from __future__ import annotations

import itertools
import logging
import operator
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumers.batches import Batch, PartitionBuffer
from consumers.dead_letters import DeadLetterBudget, DeadLetterPublisher
from consumers.inserter import BatchInserter, is_data_error
from consumers.progress import ProgressLog
from consumers.telemetry import NoObserver, WriterObserver
from runtime.backoff import Backoff, UniformSource
from runtime.group_consumer import GroupConsumer, committing_member
from runtime.kafka_connection import KafkaConnection
from runtime.kafka_logs import librdkafka_logger

_LOG = logging.getLogger("auditlog.writer")
_CLIENT_LOG = librdkafka_logger("writer")
_T = TypeVar("_T")
_POLL_S = 0.2
_partition_of = operator.methodcaller("partition")
_error_of = operator.methodcaller("error")
_OFFSET_INVALID = -1001


@dataclass(frozen=True)
class WriterConfig:
    """What one writer process does; built from settings at the edge."""

    kafka: KafkaConnection
    topic: str = "audit.events"
    group_id: str = "clickhouse-writer"
    table: str = "audit.events"
    progress_table: str = "audit.writer_progress"
    batch_max_records: int = 50_000
    batch_max_bytes: int = 32 * 1024 * 1024
    flush_interval_s: float = 1.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    exit_when_idle_s: float | None = None
    librdkafka: Mapping[str, Any] = field(default_factory=dict)

    def consumer_properties(self) -> dict[str, Any]:
        return {
            **committing_member(self.kafka, self.group_id, _CLIENT_LOG),
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
            **self.librdkafka,
        }


class _Abandoned(Exception):
    """The batch's partition was revoked, or the writer is stopping, while retrying."""


@dataclass
class WriterStats:
    """What the writer did, for ``--exit-when-idle`` reports and tests."""

    records: int = 0
    rows: int = 0
    batches: int = 0
    dead_lettered: int = 0
    retries: int = 0


class ClickHouseWriter:
    """Consumes ``config.topic`` in ``config.group_id`` and writes it to ClickHouse.

    ``client`` is a clickhouse-connect client for this thread only; ``dead_letters`` and
    ``budget`` handle poison. ``observer`` hears of everything that happens (metrics,
    health; see :mod:`consumers.telemetry`). ``consumer`` (built from
    ``config.consumer_properties()`` when not given), ``clock`` and ``rng`` (the retry
    jitter) are seams for tests.
    """

    def __init__(
        self,
        config: WriterConfig,
        client: Client,
        *,
        dead_letters: DeadLetterPublisher,
        budget: DeadLetterBudget,
        observer: WriterObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        consumer: GroupConsumer | None = None,
        rng: UniformSource | None = None,
    ) -> None:
        self.config = config
        self.stats = WriterStats()
        self._inserter = BatchInserter(client, config.table)
        self._progress = ProgressLog(client, config.table, config.progress_table)
        self._dead_letters = dead_letters
        self._budget = budget
        self._observer: WriterObserver = observer or NoObserver()
        self._clock = clock
        self._consumer: GroupConsumer = consumer or Consumer(config.consumer_properties())
        self._backoff = Backoff(config.retry_initial_s, config.retry_max_s)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._buffers: dict[int, PartitionBuffer] = {}
        self._ready: deque[Batch] = deque()
        self._unchecked: set[int] = set()
        self._revoked: set[int] = set()
        self._paused = False
        self._stop = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to end after the current insert (safe from a signal handler)."""
        self._stop.set()
        self._observer.stopping()

    @property
    def assigned(self) -> list[int]:
        return sorted(self._buffers)

    def run(self) -> WriterStats:
        """Consume and write until :meth:`stop`, or until idle for ``exit_when_idle_s``.
        Leaves the group on the way out. Raises on a fatal Kafka error, a dead-letter
        failure or the dead-letter limit (offsets of the failing batch stay uncommitted)."""
        self._consumer.subscribe(
            [self.config.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        last_record_at = self._clock()
        try:
            while not self._stop.is_set():
                if self._unchecked:
                    self._check_progress()
                received = self._receive(self.config.batch_max_records)
                now = self._clock()
                if received:
                    last_record_at = now
                for buffer in self._buffers.values():
                    batch = buffer.due(now)
                    if batch is not None:
                        self._ready.append(batch)
                while self._ready and not self._stop.is_set():
                    self._write(self._ready.popleft())
                idle_for = now - last_record_at
                if self.config.exit_when_idle_s is not None and self._caught_up(idle_for):
                    _LOG.info("idle, exiting", extra={"idle_s": round(idle_for, 1)})
                    break
        finally:
            self._consumer.close()
        return self.stats

    def _caught_up(self, idle_for: float) -> bool:
        """Idle long enough, with partitions assigned, everything read written, and every
        assigned partition read up to its end."""
        assert self.config.exit_when_idle_s is not None
        if idle_for < self.config.exit_when_idle_s or self._unchecked or not self._buffers:
            return False
        for buffer in list(self._buffers.values()):
            batch = buffer.flush()
            if batch is not None:
                self._write(batch)
        if self._ready:
            return False
        assigned = self._partitions(self._buffers)
        # A partition with nothing new since the last commit has no position yet.
        committed = {tp.partition: tp.offset for tp in self._consumer.committed(assigned, 10)}
        for tp in self._consumer.position(assigned):
            # The fetcher keeps the high watermark current; ask the broker only if unknown.
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                _low, high = self._consumer.get_watermark_offsets(tp, timeout=10)
            offset = tp.offset if tp.offset >= 0 else committed.get(tp.partition, -1)
            if high > 0 and offset < high:
                return False
        return True

    # -- consuming ----------------------------------------------------------------------

    def _receive(self, max_records: int) -> int:
        """Consume what is there (up to ``max_records``) into the buffers, a run of one
        partition's records at a time (``consume`` returns them in such runs)."""
        messages = self._consumer.consume(num_messages=max_records, timeout=_POLL_S)
        now = self._clock()
        for partition, run in itertools.groupby(messages, _partition_of):
            records = list(run)
            if any(map(_error_of, records)):
                records = self._without_errors(records)
            buffer = self._buffers.get(partition) if partition is not None else None
            if buffer is None or not records:
                continue  # revoked in the meantime: its next owner reads it again
            self._ready.extend(buffer.extend(records, now))
        self.stats.records += len(messages)
        if messages:
            self._observer.consumed(len(messages))
        return len(messages)

    def _without_errors(self, messages: list[Message]) -> list[Message]:
        """The records of ``messages``; its errors (end of partition...) handled."""
        records = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(message)
            else:
                self._on_error(error)
        return records

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        if error.code() != KafkaError._PARTITION_EOF:
            _LOG.warning("consumer error: %s", error.str())

    # -- writing ------------------------------------------------------------------------

    def _write(self, batch: Batch) -> None:
        if batch.partition not in self._buffers:
            return  # revoked after the batch was cut
        prepared = self._inserter.prepare(batch)
        self._budget.observe_batch(
            len(batch.records), [p.offset - batch.first_offset for p in prepared.poison]
        )
        self._budget.check()
        try:
            self._retrying(lambda: self._progress.announce(batch), batch.partition)
            started = self._clock()
            inserted = self._retrying(lambda: self._inserter.insert(prepared), batch.partition)
        except _Abandoned:
            _LOG.info(
                "batch abandoned uncommitted",
                extra={"partition": batch.partition, "first_offset": batch.first_offset},
            )
            return
        seconds = self._clock() - started
        for poison in inserted.poison:
            self._dead_letters.publish(batch.topic, poison)
        if inserted.poison:
            self._dead_letters.flush()
        self._commit(batch)
        self.stats.batches += 1
        self.stats.rows += inserted.rows
        self.stats.dead_lettered += len(inserted.poison)
        self._observer.written(batch, inserted, seconds)
        _LOG.debug(
            "batch written",
            extra={
                "partition": batch.partition,
                "first_offset": batch.first_offset,
                "last_offset": batch.last_offset,
                "rows": inserted.rows,
                "dead_lettered": len(inserted.poison),
                "seconds": round(seconds, 3),
            },
        )

    def _commit(self, batch: Batch) -> None:
        offsets = [TopicPartition(batch.topic, batch.partition, batch.last_offset + 1)]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
            _low, high = self._consumer.get_watermark_offsets(offsets[0], cached=True)
            self._observer.committed(batch.partition, batch.last_offset + 1, high)
        except KafkaException as exc:
            # Lost the partition in a rebalance: the rows landed; its next owner re-forms
            # the announced range and the insert deduplicates.
            _LOG.warning(
                "commit failed: %s",
                exc,
                extra={"partition": batch.partition, "last_offset": batch.last_offset},
            )

    def _retrying(self, action: Callable[[], _T], partition: int | None = None) -> _T:
        """Run ``action`` until it succeeds, backing off (capped, full jitter) while
        ClickHouse fails transiently, with every partition paused and the consumer polling.
        Raises :class:`_Abandoned` when ``partition`` is revoked or the writer stops."""
        attempt = 0
        while True:
            try:
                result = action()
            except Exception as exc:
                if not _transient(exc):
                    raise
                delay = self._backoff.delay(attempt, self._rng)
                attempt += 1
                self.stats.retries += 1
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
            if self._stop.is_set() or (partition is not None and partition not in self._buffers):
                raise _Abandoned
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            self._receive_while_paused(min(remaining, _POLL_S))

    def _receive_while_paused(self, timeout_s: float) -> None:
        message = self._consumer.poll(timeout_s)
        if message is not None and message.error() is None:
            partition = message.partition()
            buffer = self._buffers.get(partition) if partition is not None else None
            if buffer is not None:  # assigned while paused, before the pause reached it
                self._ready.extend(buffer.add(message, self._clock()))

    def _pause_all(self) -> None:
        if not self._paused:
            partitions = self._partitions(self._buffers)
            self._consumer.pause(partitions)
            self._observer.paused(partitions)
            self._paused = True

    def _resume_all(self) -> None:
        """Resume every partition except those still waiting for their progress check."""
        partitions = self._partitions(set(self._buffers) - self._unchecked)
        self._consumer.resume(partitions)
        self._observer.resumed(partitions)
        self._paused = False

    def _partitions(self, partitions: Mapping[int, object] | set[int]) -> list[TopicPartition]:
        return [TopicPartition(self.config.topic, p) for p in partitions]

    # -- rebalancing ----------------------------------------------------------------------

    def _on_assign(self, consumer: GroupConsumer, partitions: list[TopicPartition]) -> None:
        mine = [tp for tp in partitions if tp.topic == self.config.topic]
        for tp in mine:
            self._buffers[tp.partition] = PartitionBuffer(
                self.config.topic,
                tp.partition,
                self.config.batch_max_records,
                self.config.batch_max_bytes,
                self.config.flush_interval_s,
            )
            self._unchecked.add(tp.partition)
        # Nothing is read before the progress log was checked for announced ranges.
        consumer.pause(mine)
        self._observer.assigned(mine, consumer.memberid())
        _LOG.info("assigned", extra={"partitions": [tp.partition for tp in mine]})

    def _on_revoke(self, _consumer: GroupConsumer, partitions: list[TopicPartition]) -> None:
        mine = [tp for tp in partitions if tp.topic == self.config.topic]
        gone = {tp.partition for tp in mine}
        self._observer.revoked(mine)
        for partition in gone:
            self._buffers.pop(partition, None)
            self._unchecked.discard(partition)
        self._ready = deque(b for b in self._ready if b.partition not in gone)
        _LOG.info("revoked", extra={"partitions": sorted(gone)})

    def _check_progress(self) -> None:
        """For newly assigned partitions: if the progress log announced a range starting
        at the next offset to read, that range must be formed again exactly."""
        partitions = sorted(self._unchecked)
        committed = self._consumer.committed(self._partitions(set(partitions)), timeout=30)
        starts: dict[int, int] = {}
        for tp in committed:
            offset = tp.offset
            if offset < 0 or offset == _OFFSET_INVALID:
                low, _high = self._consumer.get_watermark_offsets(tp, timeout=30)
                offset = low
            starts[tp.partition] = offset
        try:
            announced = self._retrying(
                lambda: self._progress.announced(self.config.topic, partitions)
            )
        except _Abandoned:
            return  # stopping: the partitions stay paused and unchecked, nothing was read
        for partition in partitions:
            buffer = self._buffers.get(partition)
            if buffer is None:
                continue
            range_ = announced.get(partition)
            if range_ is not None and range_.first_offset == starts[partition]:
                buffer.announced_last = range_.last_offset
                _LOG.info(
                    "re-forming an announced range",
                    extra={
                        "partition": partition,
                        "first_offset": range_.first_offset,
                        "last_offset": range_.last_offset,
                    },
                )
        self._unchecked.difference_update(partitions)
        if not self._paused:
            self._consumer.resume(self._partitions(set(partitions)))


def _transient(error: BaseException) -> bool:
    """Failures worth retrying: ClickHouse unreachable, overloaded or timing out."""
    if isinstance(error, OperationalError | OSError):
        return True
    return isinstance(error, DatabaseError) and not is_data_error(error)
