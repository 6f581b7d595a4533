"""The partitions a sink worker owns and their lanes (:mod:`sinks.lane`: one destination in
one partition), and how each lane comes to be and follows its destination.

**Creating a lane.** A lane is created from its progress record (:mod:`sinks.progress`;
where it starts: :mod:`sinks.lane_start`) when the partition is assigned (destinations
behind the group, an announced batch to re-form, an unfinished replay:
:meth:`LaneRegistry.assign`), or when the group hands out the first record of its tenant
(:meth:`LaneRegistry.lane`). A lane that is not created in sync writes its record at once,
so the next owner sees it behind the group even if nothing else happens.

**Following destination changes** (:meth:`LaneRegistry.apply_change`): a changed
destination applies to its lanes (new limits from the next record, a new shape from the next
batch); paused (or back to ownership verification after a target change), its lanes stop
where they are (unsent records dropped, readers closed); deliverable again, they catch up
from there and retry a held batch at once; removed, its lanes and progress records go; a
new replay request replaces the lane of the previous one.

**Parking** (:meth:`LaneRegistry.park`): see :mod:`sinks.failure_policy`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from confluent_kafka import Message

from sinks.behind import LaneBehind
from sinks.destinations.model import Destination
from sinks.destinations.store import CatalogChange, DestinationCatalog
from sinks.lane import LANE_MODES, Batch, Lane, LaneMode, Stream
from sinks.lane_start import live_lane, replay_lane
from sinks.metrics import SinkMetrics
from sinks.progress import ProgressStore
from sinks.progress_update import next_progress
from sinks.stats import SinkStats

_LOG = logging.getLogger("auditlog.sink")
LaneKey = tuple[str, int, str]  # destination id, partition, stream


@dataclass
class OwnedPartition:
    """A partition of the events topic assigned to this worker, and its lanes. ``held``:
    records handed out by the group but not routed yet, oldest first, because partner
    membership is not known as of their time (:mod:`sinks.routing`); ``position`` is after
    the last record routed, so the group never commits past a held record."""

    position: int  # the group consumer's position: next offset it hands out
    committed: int
    lanes: dict[LaneKey, Lane] = field(default_factory=dict)
    held: deque[Message] = field(default_factory=deque)
    paused: bool = False  # the group consumer was paused: too many records held


class LaneRegistry:
    """See the module docstring. ``stop_reading(key)``: close the catch-up reader of a lane
    that leaves or is paused (:meth:`sinks.catchup.CatchUp.close`). ``clock``: monotonic
    seconds; ``wall_clock``: the time progress records carry. Used by the worker loop's
    thread only."""

    def __init__(
        self,
        *,
        catalog: DestinationCatalog,
        progress: ProgressStore,
        metrics: SinkMetrics,
        stats: SinkStats,
        stop_reading: Callable[[LaneKey], None],
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
    ) -> None:
        self._catalog = catalog
        self._progress = progress
        self._metrics = metrics
        self._stats = stats
        self._stop_reading = stop_reading
        self._clock = clock
        self._wall_clock = wall_clock
        self.partitions: dict[int, OwnedPartition] = {}

    # -- partitions ----------------------------------------------------------------------

    def assign(self, partition: int, start: int) -> None:
        """Take ``partition`` on, the group's committed offset being ``start``, with the
        lanes that must exist before any record arrives."""
        part = self.partitions[partition] = OwnedPartition(start, start)
        for destination in self._catalog.all():
            self._restore_lanes(destination, partition, part)

    def release(self, partition: int) -> None:
        """Give ``partition`` up with its lanes (a batch in flight is re-formed by the next
        owner)."""
        part = self.partitions.pop(partition, None)
        if part is None:
            return
        for key in list(part.lanes):
            self._stop_reading(key)

    def _restore_lanes(
        self, destination: Destination, partition: int, part: OwnedPartition
    ) -> None:
        """Lanes that must exist before any record arrives: destinations behind the group
        (parked, paused), an announced batch to re-form, an unfinished replay."""
        record = self._progress.get(destination.id, partition)
        if record is not None and (not record.in_sync or record.announced_last is not None):
            self.lane(destination, partition, part, "live")
        replay = destination.replay
        if replay is not None and partition in replay.offsets:
            done = self._progress.get(destination.id, partition, "replay")
            if done is None or done.replay_id != replay.id or not done.replay_done:
                self.lane(destination, partition, part, "replay")

    def lanes(self) -> Iterator[tuple[OwnedPartition, LaneKey, Lane]]:
        """Every lane with its partition and key (a snapshot: lanes may be dropped while
        iterating)."""
        for part in list(self.partitions.values()):
            for key, lane in list(part.lanes.items()):
                yield part, key, lane

    def holds(self, key: LaneKey, lane: Lane) -> bool:
        """Whether ``lane`` is still the registry's lane for ``key`` (not revoked, removed
        or replaced meanwhile)."""
        part = self.partitions.get(key[1])
        return part is not None and part.lanes.get(key) is lane

    # -- lanes ---------------------------------------------------------------------------

    def lane(
        self,
        destination: Destination,
        partition: int,
        part: OwnedPartition,
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
            lane = replay_lane(destination, partition, record, position=part.position)
        else:
            lane = live_lane(
                destination,
                partition,
                record,
                position=part.position,
                committed=part.committed,
                first_seen=first_seen,
            )
        part.lanes[key] = lane
        if lane.mode != "live":
            self.write_progress(lane)
        return lane

    def drop_lane(self, part: OwnedPartition, key: LaneKey) -> None:
        self._stop_reading(key)
        part.lanes.pop(key, None)

    def park(self, lane: Lane, why: str) -> None:
        """Let the group move on without ``lane``: it drops its unsent records and goes on
        from its position on its own reader."""
        lane.drop_unsent()
        lane.mode = "catchup"
        self._stats.parked += 1
        self._metrics.parked.labels(lane.destination.id).inc()
        self.write_progress(lane)
        _LOG.warning(
            "destination parked: it continues on its own, the others flow",
            extra={"destination": lane.destination.id, "partition": lane.partition, "why": why},
        )

    # -- destination changes -------------------------------------------------------------

    def apply_change(self, change: CatalogChange) -> None:
        """A destination was added, changed or removed in the store."""
        before, after = change.before, change.after
        if after is None:
            assert before is not None
            self._remove(before)
            return
        for part_id, part in self.partitions.items():
            for key, lane in list(part.lanes.items()):
                if key[0] == after.id:
                    self._follow_state(key, lane, after)
            if after.replay is not None and (before is None or before.replay != after.replay):
                key = (after.id, part_id, "replay")
                if key in part.lanes:
                    self.drop_lane(part, key)
                if part_id in after.replay.offsets:
                    self.lane(after, part_id, part, "replay")

    def _remove(self, destination: Destination) -> None:
        for part_id, part in self.partitions.items():
            for key in [k for k in part.lanes if k[0] == destination.id]:
                self.drop_lane(part, key)
            self._progress.forget(destination.id, [part_id])
        self._metrics.forget(destination.id)
        _LOG.info("destination removed", extra={"destination": destination.id})

    def _follow_state(self, key: LaneKey, lane: Lane, destination: Destination) -> None:
        """Apply a changed destination to one of its lanes. Paused (or back to pending
        ownership verification after a target change): the lane stops where it is;
        active again: it catches up from there."""
        lane.destination = destination
        if not destination.deliverable and lane.mode != "paused":
            self._stop_reading(key)
            lane.drop_unsent()
            lane.mode = "paused"
            self.write_progress(lane)
        elif destination.deliverable and lane.mode == "paused":
            lane.mode = "catchup"
            if lane.in_flight is not None:
                lane.retry_at_s = self._clock()  # retry the held batch now
            self.write_progress(lane)

    # -- progress, and what is left behind -----------------------------------------------

    def write_progress(
        self,
        lane: Lane,
        *,
        announced: Batch | None = None,
        delivered: int = 0,
        error: str | None = None,
        replay_done: bool = False,
    ) -> None:
        """Queue the lane's next progress record (:mod:`sinks.progress_update`); the
        worker's checkpoint (or a delivery, for an announcement) makes it durable."""
        destination = lane.destination
        part = self.partitions.get(lane.partition)
        self._progress.write(
            next_progress(
                self._progress.get(destination.id, lane.partition, lane.stream),
                lane,
                position=part.position if part else lane.done_until,
                now=self._wall_clock(),
                announced=announced,
                delivered=delivered,
                error=error,
                replay_done=replay_done,
            )
        )

    def has_work(self) -> bool:
        """Some lane has work (:attr:`sinks.lane.Lane.has_work`)."""
        return any(
            lane.has_work for part in self.partitions.values() for lane in part.lanes.values()
        )

    def behind(self) -> list[LaneBehind]:
        """The lanes left behind (:attr:`sinks.lane.Lane.behind`), with their last error."""
        found = []
        for part, _key, lane in self.lanes():
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
                    lane.lag(part.position),
                    lane.attempt,
                    failed.last_error if failed else None,
                    failed.last_error_at if failed else None,
                )
            )
        return found

    def report(self) -> None:
        """Set the lane gauges: lanes by mode, and per destination its lag and its lanes by
        mode."""
        lanes_by_mode = dict.fromkeys(LANE_MODES, 0)
        lag: dict[str, int] = {}
        destination_lanes: dict[str, dict[LaneMode, int]] = {}
        for part in self.partitions.values():
            for lane in part.lanes.values():
                lanes_by_mode[lane.mode] += 1
                destination_id = lane.destination.id
                modes = destination_lanes.setdefault(destination_id, dict.fromkeys(LANE_MODES, 0))
                modes[lane.mode] += 1
                lag[destination_id] = lag.get(destination_id, 0) + lane.lag(part.position)
        for mode, count in lanes_by_mode.items():
            self._metrics.lanes.labels(mode).set(count)
        for destination_id, behind in lag.items():
            self._metrics.lag_records.labels(destination_id).set(behind)
        for destination_id, modes in destination_lanes.items():
            for mode, count in modes.items():
                self._metrics.destination_lanes.labels(destination_id, mode).set(count)
