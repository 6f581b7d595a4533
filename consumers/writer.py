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
stays in the group; nothing is skipped; :mod:`consumers.insert_retry`). A batch whose
partition is revoked meanwhile is abandoned uncommitted; its next owner re-forms the
announced range from the progress log, so the insert deduplicates.
:meth:`ClickHouseWriter.stop` (SIGTERM, SIGINT) lets the current insert finish or abandons
its retries, commits what landed, and leaves the group. Too many poison records raise
:class:`~consumers.dead_letter_budget.DeadLetterLimitExceeded` before anything of that batch
is dead-lettered or committed.
"""

from __future__ import annotations

import functools
import itertools
import logging
import operator
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumers.batches import Batch, PartitionBuffer
from consumers.dead_letter_budget import DeadLetterBudget
from consumers.dead_letter_publisher import DeadLetterPublisher
from consumers.insert_retry import POLL_S, Abandoned, InsertRetry
from consumers.inserter import BatchInserter
from consumers.progress import ProgressLog
from consumers.telemetry import NoObserver, WriterObserver
from consumers.writer_config import WriterConfig, WriterStats
from runtime.backoff import Backoff, UniformSource
from runtime.group_consumer import GroupConsumer
from runtime.kafka_failover import while_failing_over

_LOG = logging.getLogger("auditlog.writer")
_partition_of = operator.methodcaller("partition")
_error_of = operator.methodcaller("error")
_OFFSET_INVALID = -1001


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
        self._buffers: dict[int, PartitionBuffer] = {}
        self._ready: deque[Batch] = deque()
        self._unchecked: set[int] = set()
        self._rewound: set[int] = set()  # unchecked after a failed commit: seek back first
        self._stop = threading.Event()
        self._retry = InsertRetry(
            self._consumer,
            backoff=Backoff(config.retry_initial_s, config.retry_max_s),
            rng=rng or random.Random(),  # noqa: S311 - jitter, not cryptography
            clock=clock,
            observer=self._observer,
            assigned=lambda: self._partitions(self._buffers),
            readable=lambda: self._partitions(set(self._buffers) - self._unchecked),
            owns=self._buffers.__contains__,
            stopping=self._stop.is_set,
            take=self._take_while_paused,
            on_retry=self._count_retry,
        )

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
                self._cut_when_full()
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
        messages = self._consumer.consume(num_messages=max_records, timeout=POLL_S)
        now = self._clock()
        for partition, run in itertools.groupby(messages, _partition_of):
            records = list(run)
            if any(map(_error_of, records)):
                records = self._without_errors(records)
            buffer = self._buffer_for(partition)
            if buffer is None or not records:
                continue  # revoked (its next owner reads it again) or to be read again
            self._ready.extend(buffer.extend(records, now))
        self.stats.records += len(messages)
        if messages:
            self._observer.consumed(len(messages))
        return len(messages)

    def _cut_when_full(self) -> None:
        """Cut the fullest buffers while all of them together hold more than
        ``buffered_max_records`` records or ``buffered_max_bytes`` bytes, so the writer's
        memory does not grow with the number of partitions it owns. (A buffer re-forming
        an announced range is never cut early: it ends at the announced offset.)"""
        buffers = self._buffers.values()
        records = sum(len(b.records) for b in buffers)
        size = sum(b.size_bytes for b in buffers)
        config = self.config
        if records <= config.buffered_max_records and size <= config.buffered_max_bytes:
            return
        for buffer in sorted(buffers, key=lambda b: len(b.records), reverse=True):
            held = buffer.size_bytes
            batch = buffer.flush()
            if batch is None:
                continue
            self._ready.append(batch)
            records -= len(batch.records)
            size -= held
            if records <= config.buffered_max_records and size <= config.buffered_max_bytes:
                return

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
            self._retry.run(lambda: self._progress.announce(batch), batch.partition)
            started = self._clock()
            inserted = self._retry.run(lambda: self._inserter.insert(prepared), batch.partition)
        except Abandoned:
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
            _LOG.warning(
                "commit failed, reading the partition again from its committed offset: %s",
                exc,
                extra={"partition": batch.partition, "last_offset": batch.last_offset},
            )
            self._rewind(batch.partition)

    def _rewind(self, partition: int) -> None:
        """After a failed commit: forget what was read of ``partition`` and check it again
        as a new owner would (:meth:`_check_progress`), from its committed offset.

        The rows landed but the offset did not move (refused while the group rebalances,
        the coordinator moved, the member was fenced). Writing the partition's next batch
        would announce it over the one just written: should the partition then move, its
        next owner would find an announcement that does not start at the committed offset,
        cut freely, and insert both batches again under other tokens (docs/exactly-once.md,
        section 8, finding 1). Read again instead: the batch just written is re-formed from
        its announcement, deduplicated by ClickHouse, and committed again; if the partition
        was revoked meanwhile, its next owner does the same."""
        self._ready = deque(b for b in self._ready if b.partition != partition)
        if partition not in self._buffers:
            return  # revoked in the meantime
        self._buffers[partition] = self._new_buffer(partition)
        self._unchecked.add(partition)
        self._rewound.add(partition)
        self._consumer.pause(self._partitions({partition}))

    def _take_while_paused(self, message: Message) -> None:
        """A record polled while ClickHouse fails: a partition assigned before the pause
        reached it."""
        buffer = self._buffer_for(message.partition())
        if buffer is not None:
            self._ready.extend(buffer.add(message, self._clock()))

    def _buffer_for(self, partition: int | None) -> PartitionBuffer | None:
        """Where a record of ``partition`` goes: None when the partition was revoked, or is
        to be read again from its committed offset (:meth:`_rewind`): records fetched
        before the seek are not taken."""
        if partition is None or partition in self._rewound:
            return None
        return self._buffers.get(partition)

    def _count_retry(self) -> None:
        self.stats.retries += 1

    def _partitions(self, partitions: Mapping[int, object] | set[int]) -> list[TopicPartition]:
        return [TopicPartition(self.config.topic, p) for p in partitions]

    # -- rebalancing ----------------------------------------------------------------------

    def _on_assign(self, consumer: GroupConsumer, partitions: list[TopicPartition]) -> None:
        mine = [tp for tp in partitions if tp.topic == self.config.topic]
        for tp in mine:
            self._buffers[tp.partition] = self._new_buffer(tp.partition)
            self._unchecked.add(tp.partition)
        # Nothing is read before the progress log was checked for announced ranges. The
        # partitions are assigned here, not by the client after this callback: that
        # assignment would resume them, and their records would arrive unchecked (in the
        # same consume call), to be cut into ranges other than the announced ones.
        consumer.incremental_assign(partitions)
        consumer.pause(mine)
        self._observer.assigned(mine, consumer.memberid())
        _LOG.info("assigned", extra={"partitions": [tp.partition for tp in mine]})

    def _new_buffer(self, partition: int) -> PartitionBuffer:
        return PartitionBuffer(
            self.config.topic,
            partition,
            self.config.batch_max_records,
            self.config.batch_max_bytes,
            self.config.flush_interval_s,
        )

    def _on_revoke(self, _consumer: GroupConsumer, partitions: list[TopicPartition]) -> None:
        mine = [tp for tp in partitions if tp.topic == self.config.topic]
        gone = {tp.partition for tp in mine}
        self._observer.revoked(mine)
        for partition in gone:
            self._buffers.pop(partition, None)
            self._unchecked.discard(partition)
            self._rewound.discard(partition)
        self._ready = deque(b for b in self._ready if b.partition not in gone)
        _LOG.info("revoked", extra={"partitions": sorted(gone)})

    def _check_progress(self) -> None:
        """For newly assigned partitions: if the progress log announced a range starting
        at the next offset to read, that range must be formed again exactly."""
        partitions = sorted(self._unchecked)
        # Retried while a leader or the group coordinator moves (a broker of a cluster died).
        committed = while_failing_over(
            lambda: self._consumer.committed(self._partitions(set(partitions)), timeout=30),
            "committed offsets",
            _LOG,
        )
        starts: dict[int, int] = {}
        for tp in committed:
            offset = tp.offset
            if offset < 0 or offset == _OFFSET_INVALID:
                low, _high = while_failing_over(
                    functools.partial(self._consumer.get_watermark_offsets, tp, timeout=30),
                    f"partition {tp.partition}'s first offset",
                    _LOG,
                )
                offset = low
            starts[tp.partition] = offset
        try:
            announced = self._retry.run(
                lambda: self._progress.announced(self.config.topic, partitions)
            )
        except Abandoned:
            return  # stopping: the partitions stay paused and unchecked, nothing was read
        for partition in partitions:
            buffer = self._buffers.get(partition)
            if buffer is None:
                continue
            if partition in self._rewound and not self._seek(partition, starts[partition]):
                continue  # still paused and unchecked: tried again at the next turn
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
        checked = set(partitions) - self._rewound
        self._unchecked.difference_update(checked)
        if not self._retry.paused and checked:
            self._consumer.resume(self._partitions(checked))

    def _seek(self, partition: int, offset: int) -> bool:
        """Move a rewound partition back to ``offset`` (its committed one); False, and the
        partition stays paused, if the consumer refuses now (it never reads on from where
        it was: the records after the failed commit would be skipped)."""
        try:
            self._consumer.seek(TopicPartition(self.config.topic, partition, offset))
        except KafkaException as exc:
            _LOG.warning(
                "cannot read the partition again yet: %s", exc, extra={"partition": partition}
            )
            return False
        self._rewound.discard(partition)
        return True
