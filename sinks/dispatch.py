"""Dispatch: sending lanes' batches on the delivery executor and acting on what comes back.

**Sending** (:meth:`Dispatch.send_due`). Each turn of the loop, every lane closes a batch
that waited long enough and hands over the batch due now (:meth:`sinks.lane.Lane.next_batch`:
one in flight per lane, so a destination receives a partition's batches in offset order).
Before a batch is sent the first time, its range and shape are *announced* in the progress
topic (:mod:`sinks.progress_update`); the delivery (:func:`sinks.delivery.deliver`, on the
executor) makes that announcement durable before it sends. The ordering rule of the sinks is
thus announce -> send -> commit: a worker that restarts or takes the partition over
re-forms the announced batch exactly, so S3 receives the same key and a webhook the same
idempotency key and body, and a redelivery (crash between send and progress, revocation
with a send in flight, retry after a timeout) is a byte-identical duplicate under the same
key. A live lane whose closed batches pile up behind the one in flight is parked.

**Senders.** One per destination revision (its credentials, URL), built on first use on a
delivery thread; a destination change forgets the senders of older revisions (not closed:
a delivery may still use one).

**Collecting** (:meth:`Dispatch.collect`). A finished delivery whose lane is gone (its
partition revoked, the destination removed) is ignored: the next owner re-forms the batch.
A success moves the lane on and records the progress ("delivered"); a failure goes through
the failure policy (:mod:`sinks.failure_policy`): the retry delay, parking, an automatic
pause.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from datetime import datetime

from runtime.metric_helpers import observe_ages
from sinks.delivery import DeliveryResult, deliver
from sinks.destinations.model import Destination
from sinks.destinations.store import CatalogChange
from sinks.failure_policy import Failure, FailurePolicy
from sinks.lane import Lane
from sinks.lane_registry import LaneKey, LaneRegistry
from sinks.metrics import SinkMetrics
from sinks.progress import ProgressStore
from sinks.senders.base import Sender
from sinks.stats import SinkStats

_LOG = logging.getLogger("auditlog.sink")
AutoPause = Callable[[Destination, str, datetime], None]
SenderFactory = Callable[[Destination], Sender]


class Dispatch:
    """See the module docstring. Used by the worker loop's thread only (senders are built
    on delivery threads, under a lock)."""

    def __init__(
        self,
        *,
        topic: str,
        executor: Executor,
        senders: SenderFactory,
        progress: ProgressStore,
        policy: FailurePolicy,
        auto_pause: AutoPause,
        metrics: SinkMetrics,
        stats: SinkStats,
        rng: random.Random,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
    ) -> None:
        self._topic = topic
        self._executor = executor
        self._make_sender = senders
        self._progress = progress
        self._policy = policy
        self._auto_pause = auto_pause
        self._metrics = metrics
        self._stats = stats
        self._rng = rng
        self._clock = clock
        self._wall_clock = wall_clock
        self._in_flight: dict[Future[DeliveryResult], tuple[LaneKey, Lane]] = {}
        self._senders: dict[tuple[str, int], Sender] = {}
        self._senders_lock = threading.Lock()
        self._paused_by_us: set[str] = set()

    @property
    def in_flight(self) -> bool:
        return bool(self._in_flight)

    def has_work(self) -> bool:
        """A lane with a delivery in flight has work (:attr:`sinks.lane.Lane.has_work`)."""
        return any(lane.has_work for _, lane in self._in_flight.values())

    # -- sending -------------------------------------------------------------------------

    def send_due(self, registry: LaneRegistry, now: float) -> None:
        """Close due batches, announce and send what is due, park live lanes that cannot
        keep up."""
        for _part, key, lane in registry.lanes():
            lane.tick(now)
            batch = lane.next_batch(now)
            if batch is None:
                if lane.mode == "live" and lane.backlog_full:
                    registry.park(lane, "it does not keep up: batches wait behind the one sent")
                continue
            if lane.attempt == 0:  # the first attempt: announce the range and shape
                registry.write_progress(lane, announced=batch)
            destination = lane.destination
            future = self._executor.submit(
                deliver,
                destination,
                self._topic,
                lane.partition,
                batch,
                sender=functools.partial(self._sender, destination),
                make_durable=self._progress.flush,
                clock=self._clock,
                replay_id=_replay_id(lane),
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

    def destination_changed(self, change: CatalogChange) -> None:
        """Forget the senders of the destination's older revisions (a sender is built for
        one revision: its secrets, its URL), and, once it is deliverable again, that this
        worker paused it."""
        after = change.after
        with self._senders_lock:
            for built in [k for k in self._senders if k[0] == change.destination_id]:
                if after is None or built[1] != after.revision:
                    del self._senders[built]  # a delivery thread may still use it: not closed
        if after is not None and after.deliverable:
            self._paused_by_us.discard(after.id)

    # -- collecting ----------------------------------------------------------------------

    def collect(self, registry: LaneRegistry, wait_s: float = 0.0) -> bool:
        """Act on finished deliveries (waiting up to ``wait_s`` for one); True if any
        succeeded (a failure is no progress)."""
        if wait_s and self._in_flight:
            wait(self._in_flight, timeout=wait_s, return_when=FIRST_COMPLETED)
        finished = [f for f in self._in_flight if f.done()]
        succeeded = False
        for future in finished:
            key, lane = self._in_flight.pop(future)
            if not registry.holds(key, lane):
                continue  # revoked or removed meanwhile: the next owner re-forms the batch
            result = future.result()
            succeeded |= result.ok
            if result.ok:
                self._delivered(registry, lane, result)
            else:
                self._failed(registry, lane, result)
        return succeeded

    def drain(self, registry: LaneRegistry, timeout_s: float) -> None:
        """Wait for the deliveries in flight (at most ``timeout_s``) and act on them."""
        deadline = self._clock() + timeout_s
        while self._in_flight and self._clock() < deadline:
            self.collect(registry, wait_s=0.2)

    def _delivered(self, registry: LaneRegistry, lane: Lane, result: DeliveryResult) -> None:
        kind, destination_id = lane.destination.kind, lane.destination.id
        self._metrics.delivery_seconds.labels(kind).observe(result.elapsed_s)
        batch = result.batch
        lane.delivered(batch)
        self._stats.batches += 1
        self._stats.delivered_records += batch.record_count
        self._metrics.batches.labels(kind, "delivered").inc()
        self._metrics.records_delivered.labels(destination_id).inc(batch.record_count)
        self._metrics.consecutive_failures.labels(destination_id).set(0)
        now_s = self._wall_clock().timestamp()
        self._metrics.last_success.labels(destination_id).set(now_s)
        observe_ages(self._metrics.latency, now_s, batch.record_times_ms)
        registry.write_progress(lane, delivered=batch.record_count)

    def _failed(self, registry: LaneRegistry, lane: Lane, result: DeliveryResult) -> None:
        now = self._clock()
        kind, destination_id = lane.destination.kind, lane.destination.id
        self._metrics.delivery_seconds.labels(kind).observe(result.elapsed_s)
        error = result.error
        assert error is not None
        decision = self._policy.decide(
            Failure(
                error,
                lane.attempt,
                lane.failing_since_s,
                lane.mode,
                now,
                pause_requested=destination_id in self._paused_by_us,
            ),
            self._rng,
        )
        self._stats.failed_attempts += 1
        outcome = "permanent" if decision.permanent else "retryable"
        self._metrics.batches.labels(kind, outcome).inc()
        lane.failed(now, decision.retry_in_s)
        self._metrics.consecutive_failures.labels(destination_id).set(lane.attempt)
        _LOG.warning(
            "delivery failed",
            extra={
                "destination": destination_id,
                "partition": lane.partition,
                "attempt": lane.attempt,
                "permanent": decision.permanent,
                "retry_in_s": round(decision.retry_in_s, 3),
                "error": str(error),
            },
        )
        registry.write_progress(lane, error=str(error))
        if decision.park:
            registry.park(lane, decision.park_reason(error))
        if decision.pause:
            self._pause_automatically(lane, str(error))

    def _pause_automatically(self, lane: Lane, error: str) -> None:
        record = self._progress.get(lane.destination.id, lane.partition, lane.stream)
        since = record.failing_since if record and record.failing_since else self._wall_clock()
        try:
            self._auto_pause(lane.destination, error, since)
        except Exception as exc:  # noqa: BLE001 - retried at the next failure
            _LOG.error("automatic pause failed: %s", exc)
            return
        self._paused_by_us.add(lane.destination.id)
        self._metrics.auto_paused.labels(lane.destination.id).inc()

    def close(self) -> None:
        """Stop the executor (deliveries not started are cancelled) and close the
        senders."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        for sender in self._senders.values():
            sender.close()


def _replay_id(lane: Lane) -> str | None:
    """The replay a batch of ``lane`` belongs to (None: the live stream)."""
    replay = lane.destination.replay
    return replay.id if lane.stream == "replay" and replay is not None else None
