"""Catch-up readers: lanes behind the sink group read their partition on their own.

A lane is behind the group when it was parked (its destination kept failing or could not
keep up), when its destination was resumed after a pause, when the batch it must re-form
starts before the group's position, and always for a replay. Such a lane (``catchup``
mode) gets a reader of its own (:class:`sinks.reader.PartitionReader`: ``assign``, no
group, no commits) from :attr:`sinks.lane.Lane.unsent_from`: after its batch in flight,
else at its ``done_until``. The reader is read only while the lane has nothing in flight
and room for a batch, so a failing destination reads nothing more until it answers.

- **Expired offsets.** If the topic's retention removed records before the lane read them
  (paused or failing longer than the retention), the lane jumps to the first offset still
  held, and the gap is recorded as the lane's error in the progress topic and logged.
- **Hand-over.** Once a live-stream lane has been offered everything below the group's
  position, its reader is closed and the lane is fed by the group again (``live``). It is
  in sync once its ``done_until`` reaches ``in_sync_from`` (what the reader had offered);
  the commit rule (:mod:`sinks.commit_rule`) counts what it holds from the hand-over on.
- **Undecided records.** ``offer`` returns False for a record a partner destination's lane
  cannot take or skip yet (membership not known as of its time, :mod:`sinks.routing`): the
  reader is rewound to it and the lane reads it again on a later turn.
- **Replay end.** A replay reads up to its end (``replay_end``, the group's position when
  the worker saw the request); its last batch is closed then, and once delivered the lane is removed
  and its record marked ``replay_done``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Message

from sinks.lane import Lane
from sinks.lane_registry import LaneKey, LaneRegistry, OwnedPartition
from sinks.metrics import SinkMetrics
from sinks.reader import PartitionReader

_LOG = logging.getLogger("auditlog.sink")
ReaderFactory = Callable[[int, int], PartitionReader]
Offer = Callable[[Lane, Message, float], bool]
READ_RECORDS = 500  # records a lane's reader hands over per turn of the loop


class CatchUp:
    """The readers of the lanes behind the group. ``make_reader(partition, start)``
    builds one. Used by the worker loop's thread only."""

    def __init__(self, make_reader: ReaderFactory, metrics: SinkMetrics) -> None:
        self._make_reader = make_reader
        self._metrics = metrics
        self._readers: dict[LaneKey, PartitionReader] = {}

    @property
    def reading(self) -> bool:
        """Some lane has a reader open."""
        return bool(self._readers)

    def feed(self, registry: LaneRegistry, offer: Offer, now: float) -> bool:
        """Feed the lanes that are behind the group from their own readers (``offer``
        gives a record to a lane); hand a lane back to the group's stream once it reached
        the group's position. True when some record was read."""
        did = False
        for part, key, lane in registry.lanes():
            if lane.mode != "catchup" or lane.in_flight is not None or not lane.has_room:
                continue
            if self._finished_reading(registry, part, key, lane):
                continue
            reader = self._readers.get(key) or self._open(registry, key, lane)
            messages = reader.read(READ_RECORDS)
            if messages:
                did = True
                self._metrics.records_consumed.labels("lane").inc(len(messages))
            for message in messages:
                if not offer(lane, message, now):
                    # Not decided yet (a partner destination: sinks.routing): read again.
                    offset = message.offset()
                    if offset is not None:
                        reader.rewind(offset)
                    break
            self._finished_reading(registry, part, key, lane)
        return did

    def _open(self, registry: LaneRegistry, key: LaneKey, lane: Lane) -> PartitionReader:
        start = lane.unsent_from
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
            lane.done_until = lane.offered_until = first
            registry.write_progress(
                lane,
                error=(
                    f"offsets {start} to {first - 1} of partition {lane.partition} expired "
                    "from the topic before they were delivered (paused or failing longer "
                    "than the topic's retention)"
                ),
            )
        self._readers[key] = reader
        return reader

    def _finished_reading(
        self, registry: LaneRegistry, part: OwnedPartition, key: LaneKey, lane: Lane
    ) -> bool:
        """True when the lane's reader is no longer needed (and closes it)."""
        if lane.stream == "replay":
            assert lane.replay_end is not None
            if lane.offered_until < lane.replay_end:
                return False
            self.close(key)
            lane.flush_open()
            if lane.idle:
                part.lanes.pop(key, None)
                registry.write_progress(lane, replay_done=True)
                _LOG.info(
                    "replay finished",
                    extra={"destination": lane.destination.id, "partition": lane.partition},
                )
            return True
        if lane.offered_until < part.position:
            return False
        self.close(key)
        lane.mode = "live"
        lane.in_sync_from = lane.offered_until
        if lane.idle:
            lane.done_until = max(lane.done_until, lane.offered_until)
        registry.write_progress(lane)
        _LOG.info(
            "destination caught up: back with the group",
            extra={"destination": lane.destination.id, "partition": lane.partition},
        )
        return True

    def close(self, key: LaneKey) -> None:
        """Close the reader of the lane ``key``, if it has one."""
        reader = self._readers.pop(key, None)
        if reader is not None:
            reader.close()

    def close_all(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
