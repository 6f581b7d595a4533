"""The sink worker: the ``stream-sinks`` consumer group, replicating each tenant's events to
its destinations.

Loop (one thread; deliveries on a thread pool):

1. apply destination changes from the store (no restart needed) and progress written by
   other workers;
2. consume records; route each by its key (the tenant) and headers (category, action) to
   the lanes (:mod:`sinks.lane`) of the tenant's destinations in that partition; decode and
   encode a record only when some lane takes it;
3. feed the lanes that fell behind from their own readers (:mod:`sinks.reader`);
4. send due batches (one in flight per lane, so a destination receives a partition's
   batches in order); act on finished deliveries: record progress, or schedule a retry
   with full-jitter backoff (honouring ``Retry-After``);
5. every second, checkpoint: make progress durable, then commit per partition the offset
   below which every in-sync lane has delivered.

A failing destination never holds the others back: after ``park_after_s`` of failures,
a permanent error, or a backlog it cannot send, its lane is *parked*: its unsent records
are dropped from memory, its position is written to the progress topic, and the group
moves on. The lane retries its batch alone, then catches up with its own reader and
re-joins the group's stream. A destination failing for ``auto_pause_after_s`` is paused
(through the store, published as an audit event); resume continues from where it stopped
while the topic still holds the events.

Exactly-once effect per batch: before a batch is sent, its range and shape (filters,
format, compression, S3 prefix: :mod:`sinks.batch_shape`) are announced in the progress
topic; a worker that restarts or takes a partition over re-forms the announced batch
exactly, whatever changed in the destination meanwhile, so S3 writes the same key and a
webhook receives the same idempotency key and body. A redelivery (crash between send and
progress, revocation, retry after a timeout) is therefore a byte-identical duplicate.

``exit_when_idle_s``: the worker exits once the group read every partition to its end and
no lane has work (:attr:`sinks.lane.Lane.has_work`) for that long; parked lanes whose
deliveries fail, and paused ones, do not count. :attr:`SinkStats.behind` lists the lanes
left behind.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Required, TypedDict

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from runtime.backoff import Backoff
from runtime.health import HealthState
from runtime.kafka_connection import KafkaConnection
from runtime.kafka_failover import FAILOVER_WAIT_S, while_failing_over
from runtime.kafka_logs import librdkafka_logger
from runtime.metric_helpers import observe_ages
from runtime.redaction import redact_text
from schemas.headers import ACTION, CATEGORY
from schemas.tenancy import header_tenants, tenant_disagreement
from schemas.wire import Decoder, WireError
from sinks.batch_shape import BatchShape
from sinks.behind import LaneBehind
from sinks.delivery import DeliveryResult, deliver, is_permanent
from sinks.destinations.model import Destination
from sinks.destinations.store import CatalogChange, DestinationCatalog
from sinks.lane import Batch, Lane, LaneMode, Stream
from sinks.metrics import SinkMetrics
from sinks.progress import LaneProgress, ProgressStore
from sinks.reader import PartitionReader
from sinks.retry import next_delay
from sinks.senders.base import RetryableDeliveryError, Sender
from sinks.transcode import EventTranscoder

_LOG = logging.getLogger("auditlog.sink")
_CLIENT_LOG = librdkafka_logger("sink")
_OFFSET_INVALID = -1001
LaneKey = tuple[str, int, str]  # destination id, partition, stream


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
            "logger": _CLIENT_LOG,
        }


@dataclass
class SinkStats:
    """What a run did; ``behind``: the lanes not delivered when it stopped (see
    :mod:`sinks.behind`); ``idle_exit``: it stopped for ``exit_when_idle_s``."""

    records: int = 0
    delivered_records: int = 0
    batches: int = 0
    failed_attempts: int = 0
    parked: int = 0
    tenant_mismatches: int = 0  # records naming two tenants, never delivered
    idle_exit: bool = False
    behind: list[LaneBehind] = field(default_factory=list)


AutoPause = Callable[[Destination, str, datetime], None]
SenderFactory = Callable[[Destination], Sender]
ReaderFactory = Callable[[int, int], PartitionReader]


@dataclass
class _Partition:
    live_next: int  # the group consumer's position: next offset it hands out
    committed: int
    lanes: dict[LaneKey, Lane] = field(default_factory=dict)


class SinkWorker:
    """See the module docstring. :meth:`run` blocks until :meth:`stop` (any thread) or
    idleness (``exit_when_idle_s``)."""

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
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._catalog = catalog
        self._progress = progress
        self._make_sender = senders
        self._make_reader = readers
        self._transcoder = EventTranscoder(decoder)
        self._metrics = metrics
        self._health = health
        self._auto_pause = auto_pause
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._backoff = Backoff(config.retry_base_s, config.retry_max_s)
        self._consumer = Consumer(config.consumer_properties())
        self._pool = ThreadPoolExecutor(config.delivery_threads, "auditlog-sink-delivery")
        self._partitions: dict[int, _Partition] = {}
        self._readers: dict[LaneKey, PartitionReader] = {}
        self._in_flight: dict[Future[DeliveryResult], tuple[LaneKey, Lane]] = {}
        self._senders: dict[tuple[str, int], Sender] = {}
        self._senders_lock = threading.Lock()
        self._paused_by_us: set[str] = set()
        self._stop = threading.Event()
        self._next_checkpoint = 0.0
        self.stats = SinkStats()

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
        idle_since = time.monotonic()
        try:
            while not self._stop.is_set():
                busy = self._cycle()
                now = time.monotonic()
                if busy or not self._all_idle():
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
            self._drain()
            self._checkpoint(force=True)
            self.stats.behind = self._behind()
        finally:
            self._close()
        return self.stats

    def _cycle(self) -> bool:
        """One turn of the loop; True when it did something."""
        for change in self._catalog.refresh(0):
            self._apply_change(change)
        self._progress.refresh(0)
        # Deliveries or readers pending: come back soon, but do not spin (it would take the
        # CPU the delivery threads need).
        wait_s = 0.005 if self._in_flight or self._readers else 0.1
        messages = self._consumer.consume(500, wait_s)
        now = time.monotonic()
        for message in messages:
            self._route_live(message, now)
        if messages:
            self.stats.records += len(messages)
            self._metrics.records_consumed.labels("group").inc(len(messages))
        read = self._read_behind(now)
        done = self._collect()
        self._advance(time.monotonic())
        self._checkpoint()
        return bool(messages) or read or done

    def _caught_up(self) -> bool:
        """Partitions assigned, each read up to its end (for ``exit_when_idle_s``)."""
        if not self._partitions:
            return False
        for partition, part in self._partitions.items():
            tp = TopicPartition(self._config.topic, partition)
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                _low, high = while_failing_over(
                    functools.partial(self._consumer.get_watermark_offsets, tp, timeout=10),
                    f"partition {partition}'s end offset",
                    _LOG,
                )
            if part.live_next < high:
                return False
        return True

    def _all_idle(self) -> bool:
        """No lane has work (:attr:`Lane.has_work`): paused lanes and parked lanes whose
        deliveries fail do not count, so a failing destination cannot hold an
        ``exit_when_idle_s`` run (it is reported as behind)."""
        if any(lane.has_work for _, lane in self._in_flight.values()):
            return False
        return not any(
            lane.has_work for part in self._partitions.values() for lane in part.lanes.values()
        )

    def _behind(self) -> list[LaneBehind]:
        """The lanes left behind (:attr:`Lane.behind`), with their last error."""
        found = []
        for part in self._partitions.values():
            for lane in part.lanes.values():
                if not lane.behind:
                    continue
                destination = lane.destination
                failed = (
                    self._progress.get(destination.id, lane.partition, lane.stream)
                    if lane.failing
                    else None
                )
                found.append(
                    LaneBehind(
                        destination.id,
                        destination.kind,
                        lane.partition,
                        lane.stream,
                        lane.lag(part.live_next),
                        lane.attempt,
                        failed.last_error if failed else None,
                        failed.last_error_at if failed else None,
                    )
                )
        return found

    def _drain(self) -> None:
        """Stop taking new records; wait for deliveries in flight (bounded)."""
        deadline = time.monotonic() + self._config.shutdown_timeout_s
        while self._in_flight and time.monotonic() < deadline:
            self._collect(wait_s=0.2)

    def _close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for sender in self._senders.values():
            sender.close()
        self._consumer.close()

    # -- assignment ----------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
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
                low, _ = while_failing_over(
                    functools.partial(consumer.get_watermark_offsets, tp, timeout=10),
                    f"partition {tp.partition}'s first offset",
                    _LOG,
                )
                start = low
            part = self._partitions[tp.partition] = _Partition(start, start)
            for destination in self._catalog.all():
                self._restore_lanes(destination, tp.partition, part)
        _LOG.info("assigned", extra={"partitions": sorted(tp.partition for tp in partitions)})

    def _restore_lanes(self, destination: Destination, partition: int, part: _Partition) -> None:
        """Lanes that must exist before any record arrives: destinations behind the group
        (parked, paused), an announced batch to re-form, an unfinished replay."""
        record = self._progress.get(destination.id, partition)
        if record is not None and (not record.in_sync or record.announced_last is not None):
            self._lane(destination, partition, part, "live")
        replay = destination.replay
        if replay is not None and partition in replay.offsets:
            done = self._progress.get(destination.id, partition, "replay")
            if done is None or done.replay_id != replay.id or not done.replay_done:
                self._lane(destination, partition, part, "replay")

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(partitions, commit=True)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(partitions, commit=False)

    def _release(self, partitions: list[TopicPartition], *, commit: bool) -> None:
        """Give partitions up: commit what every in-sync lane delivered (unless lost), and
        abandon their lanes (a batch in flight is re-formed by the next owner)."""
        if commit:
            self._checkpoint(force=True, only={tp.partition for tp in partitions})
        for tp in partitions:
            part = self._partitions.pop(tp.partition, None)
            if part is None:
                continue
            for key in list(part.lanes):
                reader = self._readers.pop(key, None)
                if reader is not None:
                    reader.close()
        self._health.revoke((tp.topic, tp.partition) for tp in partitions)
        _LOG.info("released", extra={"partitions": sorted(tp.partition for tp in partitions)})

    # -- lanes ---------------------------------------------------------------------------

    def _lane(
        self,
        destination: Destination,
        partition: int,
        part: _Partition,
        stream: Stream,
        first_seen: int | None = None,
    ) -> Lane:
        """The lane of ``destination`` in ``partition``, created on first use from the
        progress topic. ``first_seen``: the offset of the record that asks for it (no
        record of the tenant came before it in this assignment)."""
        key = (destination.id, partition, stream)
        lane = part.lanes.get(key)
        if lane is not None:
            return lane
        record = self._progress.get(destination.id, partition, stream)
        if stream == "replay":
            lane = self._replay_lane(destination, partition, part, record)
        else:
            lane = self._live_lane(destination, partition, part, record, first_seen)
        part.lanes[key] = lane
        if lane.mode != "live":
            self._write_progress(lane)
        return lane

    def _live_lane(
        self,
        destination: Destination,
        partition: int,
        part: _Partition,
        record: LaneProgress | None,
        first_seen: int | None,
    ) -> Lane:
        if record is None or record.in_sync:
            start = max(part.committed, record.next_offset if record else 0, first_seen or 0)
            behind = False
        else:
            start = record.next_offset
            behind = True
        mode: LaneMode = (
            "paused" if not destination.deliverable else "catchup" if behind else "live"
        )
        lane = Lane(destination, partition, mode=mode, **_start(record, start))
        if mode == "live" and lane.must_end_at is not None and lane.next_offset < part.live_next:
            lane.mode = "catchup"  # the announced batch starts before the group's position
        return lane

    def _replay_lane(
        self,
        destination: Destination,
        partition: int,
        part: _Partition,
        record: LaneProgress | None,
    ) -> Lane:
        replay = destination.replay
        assert replay is not None
        if record is not None and record.replay_id == replay.id and record.replay_end is not None:
            start, stop_at = record.next_offset, record.replay_end
        else:
            start, stop_at = replay.offsets[partition], part.live_next
        mode: LaneMode = "catchup" if destination.deliverable else "paused"
        same = record is not None and record.replay_id == replay.id
        return Lane(
            destination,
            partition,
            mode=mode,
            stream="replay",
            stop_at=stop_at,
            **_start(record if same else None, start),
        )

    def _apply_change(self, change: CatalogChange) -> None:
        """A destination was added, changed or removed in the store."""
        before, after = change.before, change.after
        with self._senders_lock:  # a sender is built for one revision (its secrets, URL)
            for built in [k for k in self._senders if k[0] == change.destination_id]:
                if after is None or built[1] != after.revision:
                    del self._senders[built]  # a delivery thread may still use it: not closed
        if after is None:
            assert before is not None
            self._remove(before)
            return
        for part_id, part in self._partitions.items():
            for key, lane in list(part.lanes.items()):
                if key[0] == after.id:
                    self._follow_state(key, lane, after)
            if after.replay is not None and (before is None or before.replay != after.replay):
                key = (after.id, part_id, "replay")
                if key in part.lanes:
                    self._drop_lane(part, key)
                if part_id in after.replay.offsets:
                    self._lane(after, part_id, part, "replay")
        if after.deliverable:
            self._paused_by_us.discard(after.id)

    def _remove(self, destination: Destination) -> None:
        for part_id, part in self._partitions.items():
            for key in [k for k in part.lanes if k[0] == destination.id]:
                self._drop_lane(part, key)
            self._progress.forget(destination.id, [part_id])
        self._metrics.forget(destination.id)
        _LOG.info("destination removed", extra={"destination": destination.id})

    def _follow_state(self, key: LaneKey, lane: Lane, destination: Destination) -> None:
        """Apply a changed destination to one of its lanes. Paused (or back to pending
        ownership verification after a target change): the lane stops where it is;
        active again: it catches up from there."""
        lane.destination = destination
        if not destination.deliverable and lane.mode != "paused":
            self._close_reader(key)
            lane.drop_unsent()
            lane.mode = "paused"
            self._write_progress(lane)
        elif destination.deliverable and lane.mode == "paused":
            lane.mode = "catchup"
            if lane.in_flight is not None:
                lane.retry_at_s = time.monotonic()  # retry the held batch now
            self._write_progress(lane)

    def _drop_lane(self, part: _Partition, key: LaneKey) -> None:
        self._close_reader(key)
        part.lanes.pop(key, None)

    def _close_reader(self, key: LaneKey) -> None:
        reader = self._readers.pop(key, None)
        if reader is not None:
            reader.close()

    # -- routing -------------------------------------------------------------------------

    def _route_live(self, message: Message, now: float) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                self._health.note_error(error.str())
                _LOG.warning("consumer error: %s", error.str())
            return
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None:
            return
        part = self._partitions.get(partition)
        if part is None:
            return
        part.live_next = offset + 1
        key = message.key()
        if not key:
            return
        destinations = self._catalog.for_tenant(key.decode(errors="replace"))
        if not destinations:
            return
        lanes = []
        known = part.lanes
        for destination in destinations:
            if destination.state == "pending_verification":
                continue
            lane = known.get((destination.id, partition, "live")) or self._lane(
                destination, partition, part, "live", offset
            )
            if lane.mode == "live" and lane.wants(offset):
                lanes.append(lane)
        if lanes:
            self._offer(message, offset, lanes, now)

    def _offer(self, message: Message, offset: int, lanes: list[Lane], now: float) -> None:
        """Give one record to ``lanes`` (all of its tenant): filtered by headers, decoded
        once if any lane takes it."""
        _, timestamp_ms = message.timestamp()
        routing: tuple[str, str] | None = None  # category, action: read only when filtered
        line: bytes | None = None
        event_at_ms = 0
        for lane in lanes:
            if lane.stream == "live" and 0 < timestamp_ms < lane.created_ms:
                lane.skip(offset)  # published before the destination existed
                continue
            if lane.filtered:
                if routing is None:
                    headers = dict(message.headers() or ())
                    routing = (_text(headers.get(CATEGORY)), _text(headers.get(ACTION)))
                if not lane.filters.accepts(*routing):
                    lane.skip(offset)
                    continue
            if line is None:
                try:
                    line, event_at_ms, tenant = self._transcoder.to_json(message.value() or b"")
                except WireError as exc:
                    self._metrics.undecodable.inc()
                    _LOG.warning(
                        "undecodable record skipped (the writer dead-letters it)",
                        extra={"partition": lane.partition, "offset": offset, "error": str(exc)},
                    )
                    for other in lanes:
                        other.skip(offset)
                    return
                why = tenant_disagreement(message.key(), header_tenants(message.headers()), tenant)
                if why is not None:
                    self.stats.tenant_mismatches += 1
                    self._metrics.tenant_mismatch.inc()
                    _LOG.warning(
                        "record naming two tenants skipped (the writer dead-letters it)",
                        extra={"partition": lane.partition, "offset": offset, "error": why},
                    )
                    for other in lanes:
                        other.skip(offset)
                    return
            lane.add(offset, line, event_at_ms, timestamp_ms, now)

    def _read_behind(self, now: float) -> bool:
        """Feed lanes that are behind the group from their own readers; hand a lane back to
        the group's stream once it reached the group's position."""
        did = False
        for part in list(self._partitions.values()):
            for key, lane in list(part.lanes.items()):
                if lane.mode != "catchup" or lane.in_flight is not None or not lane.has_room:
                    continue
                if self._finished_reading(part, key, lane):
                    continue
                reader = self._readers.get(key) or self._open_reader(key, lane)
                messages = reader.read(500)
                if messages:
                    did = True
                    self._metrics.records_consumed.labels("lane").inc(len(messages))
                for message in messages:
                    self._offer_behind(lane, message, now)
                self._finished_reading(part, key, lane)
        return did

    def _open_reader(self, key: LaneKey, lane: Lane) -> PartitionReader:
        start = lane.resume_from
        reader = self._make_reader(lane.partition, start)
        first = reader.log_start()
        if first > start:
            _LOG.error(
                "events expired from the topic before they were delivered",
                extra={
                    "destination": lane.destination.id,
                    "partition": lane.partition,
                    "from_offset": start,
                    "to_offset": first - 1,
                },
            )
            lane.next_offset = lane.seen_until = first
            self._write_progress(
                lane,
                error=(
                    f"offsets {start} to {first - 1} of partition {lane.partition} expired "
                    "from the topic before they were delivered (paused or failing longer "
                    "than the topic's retention)"
                ),
            )
        self._readers[key] = reader
        return reader

    def _offer_behind(self, lane: Lane, message: Message, now: float) -> None:
        offset = message.offset()
        if offset is None or not lane.wants(offset):
            return
        key = message.key()
        if not key or key.decode(errors="replace") != lane.destination.tenant_id:
            lane.skip(offset)
            return
        self._offer(message, offset, [lane], now)

    def _finished_reading(self, part: _Partition, key: LaneKey, lane: Lane) -> bool:
        """True when the lane's reader is no longer needed (and closes it)."""
        if lane.stream == "replay":
            assert lane.stop_at is not None
            if lane.seen_until < lane.stop_at:
                return False
            self._close_reader(key)
            lane.flush_open()
            if lane.idle:
                part.lanes.pop(key, None)
                self._write_progress(lane, replay_done=True)
                _LOG.info(
                    "replay finished",
                    extra={"destination": lane.destination.id, "partition": lane.partition},
                )
            return True
        if lane.seen_until < part.live_next:
            return False
        self._close_reader(key)
        lane.mode = "live"
        lane.sync_guard = lane.seen_until
        if lane.idle:
            lane.next_offset = max(lane.next_offset, lane.seen_until)
        self._write_progress(lane)
        _LOG.info(
            "destination caught up: back with the group",
            extra={"destination": lane.destination.id, "partition": lane.partition},
        )
        return True

    # -- delivery ------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        """Close due batches, send what is due, park and pause failing destinations."""
        for part in list(self._partitions.values()):
            for key, lane in list(part.lanes.items()):
                lane.tick(now)
                batch = lane.next_batch(now)
                if batch is None:
                    if lane.mode == "live" and lane.backlog_full:
                        self._park(lane, "it does not keep up: batches wait behind the one sent")
                    continue
                if lane.attempt == 0:  # the first attempt: announce the range and shape
                    self._write_progress(lane, announced=batch)
                destination = lane.destination
                future = self._pool.submit(
                    deliver,
                    destination,
                    self._config.topic,
                    lane.partition,
                    batch,
                    sender=functools.partial(self._sender, destination),
                    make_durable=self._progress.flush,
                )
                self._in_flight[future] = (key, lane)

    def _sender(self, destination: Destination) -> Sender:
        """The destination's sender at this revision (built on first use, on a delivery
        thread; a sender that cannot be built fails that delivery)."""
        key = (destination.id, destination.revision)
        with self._senders_lock:
            sender = self._senders.get(key)
            if sender is None:
                sender = self._senders[key] = self._make_sender(destination)
            return sender

    def _collect(self, wait_s: float = 0.0) -> bool:
        """Act on finished deliveries; True if any succeeded (a failure is no progress)."""
        if wait_s and self._in_flight:
            wait(self._in_flight, timeout=wait_s, return_when=FIRST_COMPLETED)
        finished = [f for f in self._in_flight if f.done()]
        succeeded = False
        for future in finished:
            key, lane = self._in_flight.pop(future)
            part = self._partitions.get(lane.partition)
            if part is None or part.lanes.get(key) is not lane:
                continue  # revoked or removed meanwhile: the next owner re-forms the batch
            result = future.result()
            succeeded |= result.ok
            self._finished(lane, result)
        return succeeded

    def _finished(self, lane: Lane, result: DeliveryResult) -> None:
        now = time.monotonic()
        kind = lane.destination.kind
        destination_id = lane.destination.id
        self._metrics.delivery_seconds.labels(kind).observe(result.elapsed_s)
        if result.ok:
            batch = result.batch
            lane.delivered(batch)
            self.stats.batches += 1
            self.stats.delivered_records += batch.record_count
            self._metrics.batches.labels(kind, "delivered").inc()
            self._metrics.records_delivered.labels(destination_id).inc(batch.record_count)
            self._metrics.consecutive_failures.labels(destination_id).set(0)
            self._metrics.last_success.labels(destination_id).set(time.time())
            observe_ages(self._metrics.latency, time.time(), batch.record_times_ms)
            self._write_progress(lane, delivered=batch.record_count)
            return
        error = result.error
        assert error is not None
        permanent = is_permanent(result)
        self.stats.failed_attempts += 1
        self._metrics.batches.labels(kind, "permanent" if permanent else "retryable").inc()
        if permanent:
            delay = self._backoff.max_s
        elif isinstance(error, RetryableDeliveryError):
            delay = next_delay(error, lane.attempt, self._backoff, self._rng)
        else:  # a sender raised the base class: retry as if no Retry-After was given
            delay = self._backoff.delay(lane.attempt, self._rng)
        lane.failed(now, delay)
        self._metrics.consecutive_failures.labels(destination_id).set(lane.attempt)
        _LOG.warning(
            "delivery failed",
            extra={
                "destination": destination_id,
                "partition": lane.partition,
                "attempt": lane.attempt,
                "permanent": permanent,
                "retry_in_s": round(delay, 3),
                "error": str(error),
            },
        )
        self._write_progress(lane, error=str(error))
        if lane.mode == "live" and (
            permanent or lane.failing_for_s(now) >= self._config.park_after_s
        ):
            self._park(lane, f"{'permanent error' if permanent else 'failing'}: {error}")
        if (
            lane.failing_for_s(now) >= self._config.auto_pause_after_s
            and destination_id not in self._paused_by_us
        ):
            self._pause_automatically(lane, str(error))

    def _park(self, lane: Lane, why: str) -> None:
        lane.drop_unsent()
        lane.mode = "catchup"
        self.stats.parked += 1
        self._write_progress(lane)
        _LOG.warning(
            "destination parked: it continues on its own, the others flow",
            extra={"destination": lane.destination.id, "partition": lane.partition, "why": why},
        )

    def _pause_automatically(self, lane: Lane, error: str) -> None:
        record = self._progress.get(lane.destination.id, lane.partition, lane.stream)
        since = record.failing_since if record and record.failing_since else datetime.now(UTC)
        try:
            self._auto_pause(lane.destination, error, since)
        except Exception as exc:  # noqa: BLE001 - retried at the next failure
            _LOG.error("automatic pause failed: %s", exc)
            return
        self._paused_by_us.add(lane.destination.id)

    # -- progress and commits ------------------------------------------------------------

    def _write_progress(
        self,
        lane: Lane,
        *,
        announced: Batch | None = None,
        delivered: int = 0,
        error: str | None = None,
        replay_done: bool = False,
    ) -> None:
        destination = lane.destination
        record = self._progress.get(destination.id, lane.partition, lane.stream)
        if record is None:
            record = LaneProgress(destination.id, lane.partition, lane.next_offset)
        part = self._partitions.get(lane.partition)
        live_next = part.live_next if part else lane.next_offset
        now = datetime.now(UTC)
        changes: dict[str, object] = {
            "next_offset": lane.next_offset,
            "in_sync": lane.in_sync if lane.stream == "live" else True,
            "lag_records": lane.lag(live_next),
            "stream": lane.stream,
        }
        if announced is not None:
            changes.update(
                announced_first=announced.first_offset,
                announced_last=announced.last_offset,
                announced_shape=announced.shape,
            )
        elif delivered:
            changes.update(announced_first=None, announced_last=None, announced_shape=None)
        if lane.stream == "replay" and destination.replay is not None:
            changes["replay_id"] = destination.replay.id
            changes["replay_end"] = lane.stop_at
            changes["replay_done"] = replay_done
        if delivered:
            changes.update(
                delivered_records=record.delivered_records + delivered,
                delivered_batches=record.delivered_batches + 1,
                last_success_at=now,
                consecutive_failures=0,
                failing_since=None,
            )
        if error is not None:
            changes.update(
                last_error=redact_text(error)[:1000],
                last_error_at=now,
                consecutive_failures=record.consecutive_failures + 1,
                failing_since=record.failing_since or now,
            )
        self._progress.write(record.replace(**changes))

    def _checkpoint(self, *, force: bool = False, only: set[int] | None = None) -> None:
        """Make progress durable, then commit each partition up to the first record an
        in-sync lane still holds."""
        now = time.monotonic()
        if not force and now < self._next_checkpoint:
            return
        self._next_checkpoint = now + self._config.checkpoint_interval_s
        offsets = []
        lanes_by_mode = {"live": 0, "catchup": 0, "paused": 0}
        lag: dict[str, int] = {}
        for partition, part in self._partitions.items():
            safe = part.live_next
            for lane in part.lanes.values():
                lanes_by_mode[lane.mode] += 1
                lag[lane.destination.id] = lag.get(lane.destination.id, 0) + lane.lag(
                    part.live_next
                )
                if lane.mode == "live" and lane.stream == "live":
                    pending = lane.first_pending()
                    if pending is not None:
                        safe = min(safe, pending)
            if safe > part.committed and (only is None or partition in only):
                offsets.append(TopicPartition(self._config.topic, partition, safe))
        for mode, count in lanes_by_mode.items():
            self._metrics.lanes.labels(mode).set(count)
        for destination_id, behind in lag.items():
            self._metrics.lag_records.labels(destination_id).set(behind)
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
            committed = self._partitions.get(tp.partition)
            if committed is not None:
                committed.committed = tp.offset


class _Start(TypedDict, total=False):
    next_offset: Required[int]
    must_end_at: int
    announced_shape: BatchShape | None


def _start(record: LaneProgress | None, start: int) -> _Start:
    """Where a lane starts: at ``start``; or, when ``record`` announced a batch from there
    on, at that batch's first offset (every record before it is done), to re-form it up to
    its last offset with its shape."""
    if (
        record is None
        or record.announced_first is None
        or record.announced_last is None
        or record.announced_first < start
    ):
        return {"next_offset": start}
    return {
        "next_offset": record.announced_first,
        "must_end_at": record.announced_last,
        "announced_shape": record.announced_shape,
    }


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
