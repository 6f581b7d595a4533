"""The sink worker: the ``stream-sinks`` consumer group, replicating each tenant's events to
its destinations.

The loop (one thread; deliveries on an executor), one turn of :meth:`SinkWorker._cycle`:

1. apply destination changes from the store (no restart needed: :mod:`sinks.lane_registry`,
   :mod:`sinks.dispatch`) and take in progress written by other workers;
2. route the records held for partner membership whose time is decided now, then consume
   records of the group and route each to the lanes of its tenant's destinations and of
   its partner's (:mod:`sinks.routing`; a partition holding more than
   :data:`MAX_HELD_RECORDS` is paused until it holds half as many);
3. feed the lanes that fell behind the group from their own readers (:mod:`sinks.catchup`);
4. act on finished deliveries, then announce and send due batches (:mod:`sinks.dispatch`;
   failures: :mod:`sinks.failure_policy`);
5. every ``checkpoint_interval_s``, checkpoint: make progress records durable, then commit
   per partition what :mod:`sinks.commit_rule` allows.

The ordering rule is announce -> send -> commit: a batch's range and shape are durable in
the progress topic before it is sent, and the group commits past a record only once every
lane of the group that held it has delivered it. A crash anywhere loses nothing; a batch
sent again by the next owner is re-formed exactly (same S3 key, same webhook idempotency
key and body). A failing destination never holds the others back: its lane is parked and
catches up on its own.

``exit_when_idle_s``: the worker exits once the group read every partition to its end and
no lane has work (:attr:`sinks.lane.Lane.has_work`) for that long; parked lanes whose
deliveries fail, and paused ones, do not count. :attr:`sinks.stats.SinkStats.behind`
lists the lanes left behind (:mod:`sinks.behind`).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from runtime.backoff import Backoff
from runtime.group_consumer import GroupConsumer
from runtime.health import HealthState
from runtime.kafka_connection import KafkaConnection
from runtime.kafka_failover import FAILOVER_WAIT_S, while_failing_over
from runtime.kafka_logs import librdkafka_logger
from schemas.wire import Decoder
from sinks.catchup import CatchUp, ReaderFactory
from sinks.commit_rule import offset_to_commit
from sinks.destinations.store import DestinationCatalog
from sinks.dispatch import AutoPause, Dispatch, SenderFactory
from sinks.failure_policy import FailurePolicy
from sinks.lane_registry import LaneRegistry
from sinks.membership import Membership
from sinks.memory_budget import MemoryBudget
from sinks.metrics import SinkMetrics
from sinks.progress import ProgressStore
from sinks.routing import Router
from sinks.stats import SinkStats

_LOG = logging.getLogger("auditlog.sink")
_CLIENT_LOG = librdkafka_logger("sink")
#: Records a partition may hold waiting for partner membership before it is paused.
MAX_HELD_RECORDS = 50_000
CONSUME_RECORDS = 2000  # records asked of the group consumer per turn of the loop (each
# turn also walks every lane: fewer, larger turns cost less per record)
BUDGET_CHECK_S = 0.05  # how often the loop checks the memory budget (sinks.memory_budget)
# librdkafka's queue of records fetched ahead for the group (its default is 64 MiB): a
# quarter of a second at 100k events/s, and part of the worker's bound on memory.
QUEUED_MAX_KBYTES = 16384


@dataclass(frozen=True)
class SinkConfig:
    """What one worker does; built from settings at the edge."""

    kafka: KafkaConnection
    topic: str = "audit.events"
    group_id: str = "stream-sinks"
    retry_base_s: float = 0.5
    retry_max_s: float = 60.0
    park_after_s: float = 60.0
    auto_pause_after_s: float = 7 * 24 * 3600.0
    delivery_threads: int = 16
    checkpoint_interval_s: float = 1.0
    exit_when_idle_s: float | None = None
    shutdown_timeout_s: float = 30.0
    memory: MemoryBudget = field(default_factory=MemoryBudget)

    def consumer_properties(self) -> dict[str, object]:
        return {
            **self.kafka.properties(),
            "group.id": self.group_id,
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 30000,
            "max.poll.interval.ms": 300000,
            "queued.max.messages.kbytes": QUEUED_MAX_KBYTES,
            "logger": _CLIENT_LOG,
        }

    def failure_policy(self) -> FailurePolicy:
        return FailurePolicy(
            Backoff(self.retry_base_s, self.retry_max_s),
            park_after_s=self.park_after_s,
            auto_pause_after_s=self.auto_pause_after_s,
        )


class SinkWorker:
    """See the module docstring. :meth:`run` blocks until :meth:`stop` (any thread) or
    idleness (``exit_when_idle_s``).

    Seams, built for real in :func:`auditlog.sink_wiring.sink_worker`: ``consumer``, the group
    consumer (subscribed by :meth:`run`, closed when it returns); ``executor``, where
    deliveries run (shut down when :meth:`run` returns); ``clock``, monotonic seconds
    (batch ages, retries, checkpoints, idleness); ``wall_clock``, the time progress records
    and metrics carry; ``rng``, the retry jitter; ``readers`` and ``senders``."""

    def __init__(
        self,
        config: SinkConfig,
        *,
        catalog: DestinationCatalog,
        progress: ProgressStore,
        senders: SenderFactory,
        readers: ReaderFactory,
        decoder: Decoder,
        metrics: SinkMetrics,
        health: HealthState,
        auto_pause: AutoPause,
        consumer: GroupConsumer,
        executor: Executor,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
        rng: random.Random | None = None,
        membership: Membership | None = None,
    ) -> None:
        """``membership``: who managed which account when, followed from the accounts
        topic by its :class:`sinks.membership.MembershipFollower` (None: no account is
        any partner's; partner destinations receive nothing)."""
        self._config = config
        self._catalog = catalog
        self._progress = progress
        self._metrics = metrics
        self._health = health
        self._clock = clock
        self._consumer = consumer
        self.stats = SinkStats()
        self._catchup = CatchUp(readers, metrics)
        self._lanes = LaneRegistry(
            catalog=catalog,
            progress=progress,
            metrics=metrics,
            stats=self.stats,
            stop_reading=self._catchup.close,
            clock=self._clock,
            wall_clock=wall_clock,
        )
        self._membership = membership
        self._wall_clock = wall_clock
        self._router = Router(catalog, decoder, metrics, self.stats, membership)
        self._dispatch = Dispatch(
            topic=config.topic,
            executor=executor,
            senders=senders,
            progress=progress,
            policy=config.failure_policy(),
            auto_pause=auto_pause,
            metrics=metrics,
            stats=self.stats,
            rng=rng or random.Random(),  # noqa: S311 - jitter, not secrets
            clock=clock,
            wall_clock=wall_clock,
        )
        self._stop = threading.Event()
        self._next_checkpoint = 0.0
        self._next_budget_check = 0.0
        self._holding = False  # the group's partitions are paused for the memory budget

    # -- lifecycle -----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to finish in-flight deliveries, commit and return."""
        self._stop.set()

    def run(self) -> SinkStats:
        self._catalog.load()
        self._progress.load()
        self._consumer.subscribe(
            [self._config.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        idle_since = self._clock()
        try:
            while not self._stop.is_set():
                busy = self._cycle()
                now = self._clock()
                if busy or self._dispatch.has_work() or self._lanes.has_work():
                    idle_since = now
                elif (
                    self._config.exit_when_idle_s is not None
                    and now - idle_since >= self._config.exit_when_idle_s
                    and self._caught_up()
                ):
                    _LOG.info("idle: exiting")
                    self.stats.idle_exit = True
                    break
            self._health.stopping()
            self._dispatch.drain(self._lanes, self._config.shutdown_timeout_s)
            self._checkpoint(force=True)
            self.stats.behind = self._lanes.behind()
        finally:
            self._catchup.close_all()
            self._dispatch.close()
            self._consumer.close()
        return self.stats

    def _cycle(self) -> bool:
        """One turn of the loop; True when it did something."""
        for change in self._catalog.refresh(0):
            self._dispatch.destination_changed(change)
            self._lanes.apply_change(change)
        self._progress.refresh(0)
        # Deliveries or readers pending: come back soon, but do not spin (it would take the
        # CPU the delivery threads need).
        wait_s = 0.005 if self._dispatch.in_flight or self._catchup.reading else 0.1
        released = self._router.release(self._lanes, self._clock())
        messages = self._consumer.consume(CONSUME_RECORDS, wait_s)
        now = self._clock()
        for message in messages:
            if message.error() is None:
                self._router.route(message, self._lanes, now)
            else:
                self._consumer_error(message)
        self._bound_held()
        if messages:
            self.stats.records += len(messages)
            self._metrics.records_consumed.labels("group").inc(len(messages))
        read = self._catchup.feed(self._lanes, self._router.offer_behind, now)
        done = self._dispatch.collect(self._lanes)
        self._keep_budget()
        self._dispatch.send_due(self._lanes, self._clock())
        self._checkpoint()
        return bool(messages) or read or done or released > 0

    def _report_membership(self) -> None:
        held = sum(len(part.held) for part in self._lanes.partitions.values())
        self._metrics.held_records.set(held)
        membership = self._membership
        if membership is not None:
            now_ms = self._wall_clock().timestamp() * 1000
            behind_s = max(0.0, (now_ms - membership.decided_until_ms) / 1000)
            self._metrics.membership_behind.set(min(behind_s, 1e9))
            self._metrics.membership_late_changes.set(membership.late_changes)

    def _bound_held(self) -> None:
        """Pause a partition holding too many records for partner membership (memory);
        resume it once it holds half as many."""
        for partition, part in self._lanes.partitions.items():
            held = len(part.held)
            if not part.paused and held > MAX_HELD_RECORDS:
                self._consumer.pause([TopicPartition(self._config.topic, partition)])
                part.paused = True
                _LOG.warning(
                    "partition paused: partner membership is not known as of its records "
                    "(is the accounts topic read?)",
                    extra={"partition": partition, "held": held},
                )
            elif part.paused and held <= MAX_HELD_RECORDS // 2 and not self._holding:
                self._consumer.resume([TopicPartition(self._config.topic, partition)])
                part.paused = False

    def _keep_budget(self) -> None:
        """A few times a second: close the largest open batches beyond the memory budget,
        and pause (or resume) the group's partitions (:mod:`sinks.memory_budget`)."""
        now = self._clock()
        if now < self._next_budget_check:
            return
        self._next_budget_check = now + BUDGET_CHECK_S
        lanes = [lane for _part, _key, lane in self._lanes.lanes()]
        self.stats.closed_early += self._config.memory.close_largest(lanes)
        hold = self._config.memory.hold_group(lanes, self._holding)
        if hold == self._holding:
            return
        topic, owned = self._config.topic, self._lanes.partitions
        if hold:
            self._consumer.pause([TopicPartition(topic, p) for p in owned])
            self.stats.group_holds += 1
            _LOG.info("memory budget reached: the group waits for deliveries")
        else:  # a partition held back for partner membership stays paused (_bound_held)
            self._consumer.resume(
                [TopicPartition(topic, p) for p, o in owned.items() if not o.paused]
            )
        self._holding = hold

    def _consumer_error(self, message: Message) -> None:
        error = message.error()
        if error is not None and error.code() != KafkaError._PARTITION_EOF:
            self._health.note_error(error.str())
            _LOG.warning("consumer error: %s", error.str())

    def _caught_up(self) -> bool:
        """Partitions assigned, each read up to its end (for ``exit_when_idle_s``)."""
        if not self._lanes.partitions:
            return False
        for partition, part in self._lanes.partitions.items():
            tp = TopicPartition(self._config.topic, partition)
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                _low, high = while_failing_over(
                    functools.partial(self._consumer.get_watermark_offsets, tp, timeout=10),
                    f"partition {partition}'s end offset",
                    _LOG,
                )
            if part.position < high:
                return False
        return True

    # -- assignment ----------------------------------------------------------------------

    def _on_assign(self, consumer: GroupConsumer, partitions: list[TopicPartition]) -> None:
        """Partitions assigned: each starts from the group's committed offset (the log
        start for a new group), with the lanes its progress records call for."""
        if not partitions:
            return
        self._health.set_member_id(consumer.memberid())
        self._health.assign((tp.topic, tp.partition) for tp in partitions)
        # Long enough for a failover: the progress topic's leader may be the broker that died.
        self._progress.catch_up(timeout_s=FAILOVER_WAIT_S)
        committed = while_failing_over(
            lambda: consumer.committed(partitions, timeout=30), "committed offsets", _LOG
        )
        for tp in committed:
            start = tp.offset
            if start < 0:
                start, _high = while_failing_over(
                    functools.partial(consumer.get_watermark_offsets, tp, timeout=10),
                    f"partition {tp.partition}'s first offset",
                    _LOG,
                )
            self._lanes.assign(tp.partition, start)
        if self._holding:  # waiting for deliveries (the memory budget): these too
            # assigned here, or the client's own assignment after this callback resumes them
            consumer.incremental_assign(partitions)
            consumer.pause(partitions)
        _LOG.info("assigned", extra={"partitions": sorted(tp.partition for tp in partitions)})

    def _on_revoke(self, consumer: GroupConsumer, partitions: list[TopicPartition]) -> None:
        self._release(partitions, commit=True)

    def _on_lost(self, consumer: GroupConsumer, partitions: list[TopicPartition]) -> None:
        self._release(partitions, commit=False)

    def _release(self, partitions: list[TopicPartition], *, commit: bool) -> None:
        """Give partitions up: commit what every in-sync lane delivered (unless lost), and
        abandon their lanes (a batch in flight is re-formed by the next owner)."""
        if commit:
            self._checkpoint(force=True, only={tp.partition for tp in partitions})
        for tp in partitions:
            part = self._lanes.partitions.get(tp.partition)
            if part is not None and part.paused:
                self._consumer.resume([TopicPartition(self._config.topic, tp.partition)])
            self._lanes.release(tp.partition)
        self._health.revoke((tp.topic, tp.partition) for tp in partitions)
        _LOG.info("released", extra={"partitions": sorted(tp.partition for tp in partitions)})

    # -- checkpoint ----------------------------------------------------------------------

    def _checkpoint(self, *, force: bool = False, only: set[int] | None = None) -> None:
        """Make progress durable, then commit each partition (all, or ``only`` these) as
        far as :func:`sinks.commit_rule.offset_to_commit` allows. A failed commit is
        retried at the next checkpoint."""
        now = self._clock()
        if not force and now < self._next_checkpoint:
            return
        self._next_checkpoint = now + self._config.checkpoint_interval_s
        self._lanes.report()
        self._report_membership()
        offsets = []
        for partition, part in self._lanes.partitions.items():
            safe = offset_to_commit(part.position, part.committed, part.lanes.values())
            if safe is not None and (only is None or partition in only):
                offsets.append(TopicPartition(self._config.topic, partition, safe))
        if not offsets:
            return
        try:
            self._progress.flush()
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except (KafkaException, RuntimeError) as exc:
            self._health.note_error(f"commit: {exc}")
            _LOG.warning("checkpoint failed, retried at the next one: %s", exc)
            return
        for tp in offsets:
            committed = self._lanes.partitions.get(tp.partition)
            if committed is not None:
                committed.committed = tp.offset
