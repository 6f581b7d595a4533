"""The integrity appender: the ``integrity-log`` consumer group, one Merkle log per account
(docs/integrity.md).

Loop (one thread): on assignment a partition stays paused until the heads of the accounts
last seen in it are loaded from ClickHouse. Each record is read
(:class:`integrity.reading.LeafReader`) and appended by the pure rule of
:mod:`integrity.appending` (a record at or before its account's ``last_offset`` is
already a leaf). Every ``batch_max_records`` records or ``flush_interval_s`` seconds a
partition's batch is stored: with ``copies``, its ``auditlog.leaves`` records are first
published into the account's partition and acknowledged (:mod:`integrity.copy_publisher`,
the streamed copy every destination receives), then its leaves, then its accounts' heads,
under deduplication tokens of its offset range (:mod:`integrity.heads`), THEN its offsets
are committed, synchronously. A record carrying the integrity header is no leaf: it only
moves the offsets. Every ``checkpoint interval`` everything pending is stored and committed
first, then the accounts due are signed (:mod:`integrity.checkpointer`), and, with a
``pruner``, their prune statements when due (:mod:`integrity.pruner`, once a day).

Faults: transient ClickHouse failures are retried with every partition paused
(:mod:`integrity.retrying`). A revoked or lost partition's state and pending batch are
dropped uncommitted at once; nothing is appended for it afterwards (its next owner computes
the same leaves). :meth:`IntegrityAppender.stop` (SIGTERM, SIGINT) ends the loop: pending
batches are stored and committed, grown accounts signed, the group left.
"""

from __future__ import annotations

import itertools
import logging
import operator
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from integrity.appender_config import AppenderConfig, AppenderStats
from integrity.appending import ForeignAccount, PartitionLog
from integrity.checkpoint_store import CheckpointStore
from integrity.checkpointer import (
    Checkpointer,
    CheckpointRow,
    CheckpointSchedule,
    NoSigningKey,
    Signers,
)
from integrity.copy_publisher import CopyPublisher
from integrity.heads import LogStore
from integrity.metrics import IntegrityMetrics, integrity_metrics
from integrity.pruner import Pruner
from integrity.reading import Leaf, LeafReader, Skipped, without_errors
from integrity.retrying import Abandoned, Retrier, read_to_end
from runtime.backoff import Backoff
from runtime.health import HealthState
from schemas.headers import any_integrity, is_integrity
from schemas.wire import Decoder

_LOG = logging.getLogger("auditlog.integrity")
_partition_of = operator.methodcaller("partition")
INTEGRITY_RECORD = "integrity-record"
"""The skip reason of an integrity record: counted, not logged, not in ``stats.skipped``."""


class IntegrityAppender:
    """Consumes ``config.topic`` in ``config.group_id`` and appends every record to its
    account's log. ``logs`` and ``checkpoints`` are the ClickHouse stores (one client, this
    thread only); ``signers`` gives the keys valid at a time. ``consumer``, ``clock`` (for
    batching and schedules) and ``wall_ms`` (checkpoint times) are seams for tests."""

    def __init__(
        self,
        config: AppenderConfig,
        logs: LogStore,
        checkpoints: CheckpointStore,
        signers: Signers,
        *,
        decoder: Decoder | None = None,
        metrics: IntegrityMetrics | None = None,
        health: HealthState | None = None,
        consumer: Consumer | None = None,
        pruner: Pruner | None = None,
        copies: CopyPublisher | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.config = config
        self.stats = AppenderStats()
        self._store = logs
        self._checkpoint_store = checkpoints
        self._decoder = decoder or Decoder()
        self._reader = LeafReader(self._decoder)
        self._metrics = metrics or integrity_metrics()
        self._appended = self._metrics.appended.labels(config.topic)
        self._already_appended = self._metrics.skipped.labels(config.topic, "already-appended")
        self._health = health or HealthState(config.group_id)
        self._consumer = consumer or Consumer(config.consumer_properties())
        self._clock = clock
        self._wall_ms = wall_ms
        self._pruner = pruner
        self._copies = copies
        self._stop = threading.Event()
        self._logs: dict[int, PartitionLog] = {}
        # Partitions assigned and not loaded yet, with records that arrived meanwhile.
        self._held: dict[int, list[Message]] = {}
        self._backlog: list[Message] = []
        self._schedule = CheckpointSchedule(config.checkpoints.interval_s, clock())
        self._checkpointer = Checkpointer(
            config.checkpoints,
            checkpoints,
            signers,
            on_signed=lambda reason, n: self._metrics.checkpoints_signed.labels(reason).inc(n),
        )
        self._retrier = Retrier(
            self._consumer,
            Backoff(config.retry_initial_s, config.retry_max_s),
            self._stop,
            assigned=lambda: self._partitions(self._logs),
            on_polled=self._backlog.append,
            on_retry=self._on_retry,
            clock=clock,
        )

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler)."""
        self._stop.set()
        self._health.stopping()

    @property
    def assigned(self) -> list[int]:
        return sorted(set(self._logs) | set(self._held))

    def run(self) -> AppenderStats:
        """Append until :meth:`stop` or idle for ``exit_when_idle_s``; stores, commits and
        signs what is pending on the way out, then leaves the group. Raises on a fatal Kafka
        error or a ClickHouse error that is not transient (nothing uncommitted is lost)."""
        self._consumer.subscribe(
            [self.config.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        last_record_at = self._clock()
        try:
            while not self._stop.is_set():
                self._load_assigned()
                messages, self._backlog = self._backlog, []
                messages += self._consumer.consume(self.config.batch_max_records, timeout=0.2)
                now = self._clock()
                if messages:
                    last_record_at = now
                self._process(messages, now)
                self._flush(
                    partial(PartitionLog.due, now_s=now, max_wait_s=self.config.flush_interval_s)
                )
                if self._schedule.tick(now):
                    self._sign(grown_only=False)
                if self._idle(now - last_record_at):
                    _LOG.info("idle, exiting")
                    break
            if self._flush(lambda _log: True):
                self._sign(grown_only=True)
        finally:
            self._consumer.close()
        return self.stats

    # -- reading and appending ----------------------------------------------------------

    def _process(self, messages: list[Message], now: float) -> None:
        for partition, run in itertools.groupby(messages, _partition_of):
            records = without_errors(run)
            if partition in self._held:
                self._held[partition].extend(records)
                continue
            log = self._logs.get(partition)
            if log is None or not records:
                continue  # revoked: its next owner reads these again
            self.stats.records += len(records)
            try:
                self._append(log, records, now)
            except Abandoned:
                continue  # this partition was revoked (or the process is stopping)

    def _append(self, log: PartitionLog, records: list[Message], now: float) -> None:
        if any_integrity(records):
            read = list(map(self._read_or_copy, records))
        else:
            read = list(map(self._reader.read, records))
        unknown = {r.tenant_id for r in read if type(r) is Leaf and not log.knows(r.tenant_id)}
        if unknown:
            self._adopt(log, unknown)
        appended = already = 0  # counted into the metrics once per call, not per record
        batch_max = self.config.batch_max_records
        try:
            for record in read:
                if isinstance(record, Skipped):
                    log.note_record(record.offset, now)
                    if record.reason == INTEGRITY_RECORD:
                        self._metrics.skipped.labels(self.config.topic, INTEGRITY_RECORD).inc()
                    else:
                        self._skipped(record.reason, record.offset, log.partition, record.detail)
                    continue
                try:
                    leaf = log.append(
                        record.tenant_id, record.offset, record.event_id, record.leaf_hash, now
                    )
                except ForeignAccount as exc:
                    self._skipped("other-partition", record.offset, log.partition, str(exc))
                    continue
                if leaf is None:
                    already += 1
                else:
                    appended += 1
                pending = log.pending
                full = pending is not None and pending.records >= batch_max
                if full and not self._store_batch(log):
                    return  # dropped with its partition
        finally:
            self._count(appended, already)

    def _count(self, appended: int, already: int) -> None:
        if appended:
            self._appended.inc(appended)
            self.stats.appended += appended
        if already:
            self._already_appended.inc(already)
            self.stats.skipped += already

    def _read_or_copy(self, record: Message) -> Leaf | Skipped:
        """An integrity record (the streamed copy, ours or forged) is no leaf, whatever its
        value: it only moves the offsets."""
        if is_integrity(record.headers()):
            return Skipped(record.offset() or 0, INTEGRITY_RECORD, "")
        return self._reader.read(record)

    def _adopt(self, log: PartitionLog, tenant_ids: set[str]) -> None:
        """Heads of accounts new to this partition's state: stored ones continue (a zombie
        may have started them), the others start empty."""
        mine = lambda: self._logs.get(log.partition) is log  # noqa: E731
        heads = self._retrier.run(lambda: self._store.heads_of(tenant_ids), mine)
        log.adopt(heads)
        log.start_new(tenant_ids)
        stored = [h.tenant_id for h in heads]
        if stored:
            self._checkpointer.remember(
                self._retrier.run(lambda: self._checkpoint_store.latest(stored), mine)
            )

    def _skipped(self, reason: str, offset: int, partition: int, detail: str) -> None:
        self._metrics.skipped.labels(self.config.topic, reason).inc()
        self.stats.skipped += 1
        level = logging.ERROR if reason == "other-partition" else logging.WARNING
        _LOG.log(
            level,
            "record not appended (%s): %s",
            reason,
            detail,
            extra={"partition": partition, "offset": offset},
        )

    # -- storing and committing ---------------------------------------------------------

    def _flush(self, wanted: Callable[[PartitionLog], bool]) -> bool:
        """Store and commit the pending batch of every partition ``wanted`` picks; True
        when all of them were stored (none abandoned)."""
        done = True
        for log in list(self._logs.values()):
            if log.pending is not None and wanted(log):
                done = self._store_batch(log) and done
        return done

    def _store_batch(self, log: PartitionLog) -> bool:
        batch = log.take()
        if batch is None:
            return True
        started = self._clock()
        if self._copies is not None and batch.leaves:
            # Before the leaves and heads are stored: once the heads are, a replay skips
            # these records, and could not publish them again.
            self._copies.leaves(batch)
        try:
            self._retrier.run(
                lambda: self._store.store(batch), lambda: self._logs.get(log.partition) is log
            )
        except Abandoned:
            # Revoked, or stopping: the state is ahead of what is stored, so none of it may
            # be stored after this batch. Its next owner (or the next run) goes on from the
            # stored heads and the committed offset.
            if self._logs.get(log.partition) is log:
                del self._logs[log.partition]
            _LOG.info(
                "batch dropped uncommitted",
                extra={"partition": batch.partition, "first_offset": batch.first_offset},
            )
            return False
        self._metrics.batch_insert_seconds.observe(self._clock() - started)
        next_offset = batch.last_offset + 1
        tp = TopicPartition(self.config.topic, batch.partition, next_offset)
        try:
            self._consumer.commit(offsets=[tp], asynchronous=False)
        except KafkaException as exc:
            # Lost the partition meanwhile: what was stored is what its next owner computes.
            _LOG.warning("commit failed: %s", exc, extra={"partition": batch.partition})
            return False
        self.stats.batches += 1
        self._health.insert_succeeded()
        _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
        self._metrics.lag(self.config.topic, batch.partition, high, next_offset)
        return True

    def _sign(self, *, grown_only: bool) -> None:
        """Store what is pending, then sign the owned accounts that are due: checkpoints,
        then (not on the way out) prune statements."""
        if not self._flush(lambda _log: True):
            return
        heads = [(a.tenant_id, a.frontier) for log in self._logs.values() for a in log]
        copies = self._copies
        publish = None
        if copies is not None:
            partitions = {a.tenant_id: log.partition for log in self._logs.values() for a in log}

            def publish(rows: Sequence[CheckpointRow]) -> int:
                return copies.checkpoints(rows, partitions)

        signed = self._signed(
            "checkpoints",
            lambda: self._checkpointer.sign_due(
                heads, self._wall_ms(), grown_only=grown_only, publish=publish
            ),
        )
        if signed is None:
            return
        self.stats.checkpoints += signed
        pruner = self._pruner
        if pruner is not None and not grown_only:
            tenant_ids = [tenant_id for tenant_id, _ in heads]
            signed = self._signed(
                "prune statements", lambda: pruner.sign_due(tenant_ids, self._wall_ms())
            )
            self.stats.prune_statements += signed or 0

    def _signed(self, what: str, action: Callable[[], Sequence[object]]) -> int | None:
        """How many notes ``action`` signed and stored (retried), or None when no key is
        valid (logged) or the process is stopping."""
        try:
            return len(self._retrier.run(action))
        except NoSigningKey as exc:
            _LOG.error("%s not signed: %s (run auditlog keys generate)", what, exc)
        except Abandoned:
            pass
        return None

    def _on_retry(self, error: BaseException) -> None:
        self.stats.retries += 1
        self._health.insert_failed(error)
        self._metrics.insert_retries.inc()

    # -- assignment ---------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        mine = [tp for tp in partitions if tp.topic == self.config.topic]
        for tp in mine:
            self._held.setdefault(tp.partition, [])
        # Nothing is read before the partition's heads are loaded. Assigned here, not by the
        # client after this callback: that assignment would resume them (records of a
        # partition not loaded yet are held in memory meanwhile, so this only saves that).
        consumer.incremental_assign(partitions)
        consumer.pause(mine)
        self._health.assign((tp.topic, tp.partition) for tp in mine)
        self._health.set_member_id(consumer.memberid())
        self._metrics.assigned_partitions.set(len(self.assigned))
        _LOG.info("assigned", extra={"partitions": [tp.partition for tp in mine]})

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            if tp.topic != self.config.topic:
                continue
            self._held.pop(tp.partition, None)
            log = self._logs.pop(tp.partition, None)
            if log is not None:
                self._checkpointer.forget(a.tenant_id for a in log)
            self._metrics.forget(self.config.topic, tp.partition)
        self._health.revoke((tp.topic, tp.partition) for tp in partitions)
        self._metrics.assigned_partitions.set(len(self.assigned))
        _LOG.info("revoked", extra={"partitions": sorted(tp.partition for tp in partitions)})

    def _load_assigned(self) -> None:
        """Load the heads (and latest checkpoints) of newly assigned partitions, then read."""
        waiting = sorted(self._held)
        if not waiting:
            return
        still = lambda: all(p in self._held for p in waiting)  # noqa: E731
        try:
            heads = self._retrier.run(lambda: self._store.heads_in(waiting), still)
            tenants = [h.tenant_id for rows in heads.values() for h in rows]
            latest = self._retrier.run(lambda: self._checkpoint_store.latest(tenants), still)
        except Abandoned:
            return  # revoked or stopping meanwhile: loaded again at the next assignment
        self._checkpointer.remember(latest)
        for partition in waiting:
            self._logs[partition] = PartitionLog(self.config.topic, partition, heads[partition])
            self._backlog.extend(self._held.pop(partition))
        self._consumer.resume(self._partitions(waiting))

    def _partitions(self, partitions: Iterable[int]) -> list[TopicPartition]:
        return [TopicPartition(self.config.topic, p) for p in partitions]

    # -- exiting when idle --------------------------------------------------------------

    def _idle(self, idle_for: float) -> bool:
        """Idle long enough, with partitions loaded, everything read stored and committed,
        and every assigned partition read to its end."""
        limit = self.config.exit_when_idle_s
        if limit is None or idle_for < limit or self._held or not self._logs:
            return False
        if not self._flush(lambda _log: True) or self._backlog:
            return False
        return read_to_end(self._consumer, self._partitions(self._logs))
