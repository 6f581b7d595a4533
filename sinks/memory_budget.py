"""The sink worker's bound on the events its lanes hold in memory. No I/O.

Every lane holds its open batch, the closed batches waiting behind the one in flight
(parked beyond :data:`sinks.lane.MAX_READY_BATCHES`), and the batch in flight: each one's
events as JSON lines. Per lane that is bounded by the destination's ``max_bytes``, but not
across lanes: a backlog of a few hundred tenants keeps an open batch per lane for up to
``max_age_s`` (30 s), hundreds of megabytes at 100k events/s. Two worker-wide limits bound
it (:class:`MemoryBudget`, checked by the worker loop a few times a second):

- ``max_open_bytes``: the open batches together. Beyond it the largest are closed early
  (:meth:`MemoryBudget.close_largest`), so they go out at once instead of waiting for
  their age. A batch closes at any record anyway (``max_records``, ``max_bytes``, its age):
  where it closes is decided here and announced as usual, so exactly-once is unchanged. A
  batch being re-formed is never closed early (it ends at its announced last offset).
- ``max_held_bytes``: everything the ``live`` lanes hold (open, waiting, in flight). Beyond
  it the worker stops taking records from the group (:meth:`MemoryBudget.hold_group`:
  its partitions are paused) until the deliveries bring it back under three quarters of
  the limit: the deliveries do not keep up, and reading on would only fill memory. Lanes in
  catch-up (parked, resumed, replaying) read at their own pace and hold at most their batch
  in flight and one more, so they do not count; a live lane whose deliveries fail is parked
  after ``park_after_s``, so it holds the group back at most that long.

Sizes are the JSON lines' bytes; a held event takes about a third more (its bytes object,
its Kafka timestamp, list slots: about 1.1 KiB for an 800-byte line, measured).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sinks.lane import Lane

MIB: Final = 1 << 20


@dataclass(frozen=True)
class MemoryBudget:
    """See the module docstring."""

    max_open_bytes: int = 128 * MIB
    max_held_bytes: int = 512 * MIB

    def __post_init__(self) -> None:
        # Open batches alone must not keep the group paused: once the deliveries drained
        # the rest, what stays open is under the level where the group resumes.
        if not 0 < self.max_open_bytes < self.max_held_bytes * 3 // 4:
            raise ValueError("max_open_bytes must be positive and under 3/4 of max_held_bytes")

    def close_largest(self, lanes: Iterable[Lane]) -> int:
        """Close the largest open batches until the others hold at most
        ``max_open_bytes``; how many were closed. A lane with a closed batch already
        waiting keeps its open one (it could not go out sooner)."""
        open_lanes = [(lane.open_bytes, id(lane), lane) for lane in lanes if lane.open_bytes]
        total = sum(size for size, _, _ in open_lanes)
        if total <= self.max_open_bytes:
            return 0
        closed = 0
        for size, _, lane in sorted(open_lanes, reverse=True):
            if total <= self.max_open_bytes:
                break
            if lane.ready or not lane.flush_open():
                continue
            total -= size
            closed += 1
        return closed

    def hold_group(self, lanes: Iterable[Lane], holding: bool) -> bool:
        """Whether the group's partitions should be paused now, ``holding`` telling
        whether they are: over ``max_held_bytes`` held by live lanes, until back under
        three quarters of it."""
        held = sum(lane.held_bytes for lane in lanes if lane.mode == "live")
        if holding:
            return held > self.max_held_bytes * 3 // 4
        return held > self.max_held_bytes
