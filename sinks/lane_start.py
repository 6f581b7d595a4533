"""Where a lane starts: a lane of a destination in a partition, made from its progress
record (:mod:`sinks.progress`) and the group's offsets. Pure: no I/O, no clock.

- *Live start*: no record, or an in-sync one: from the group's committed offset, or the
  record's ``done_until`` if further, or the first record asking for the lane if further
  still (no record of the tenant came before it in this assignment); fed by the group
  (``live``).
- *Restore*: a record not in sync (the lane was parked, or paused): from its
  ``done_until``, on its own reader (``catchup``).
- A destination that is not deliverable (paused, waiting for ownership verification) gets
  a ``paused`` lane, wherever it starts.
- *Replay start*: a replay's own lane reads from the replay's first offset in the
  partition up to the group's position when the request was seen (``replay_end``); with
  a record of the same replay it goes on from there, up to the same end.
- *Re-forming*: a record that announced a batch starting at or after where the lane starts
  makes the lane start at the batch's first offset and form it again exactly, up to its
  announced last offset with its announced shape, whatever changed in the destination
  meanwhile (so the same S3 key and webhook idempotency key and body go out again). A live
  lane whose announced batch starts before the group's position reads it on its own reader
  first (``catchup``). A batch announced before the start is done: ignored.
"""

from __future__ import annotations

from typing import Required, TypedDict

from sinks.batch_shape import BatchShape
from sinks.destinations.model import Destination
from sinks.lane import Lane, LaneMode
from sinks.progress import LaneProgress


def live_lane(
    destination: Destination,
    partition: int,
    record: LaneProgress | None,
    *,
    position: int,
    committed: int,
    first_seen: int | None = None,
) -> Lane:
    """The lane of ``destination`` fed by the group in ``partition``, from its progress
    ``record`` (None: none yet), the group's ``position`` and ``committed`` offset, and
    ``first_seen``, the record that asks for the lane (None: created on assignment)."""
    if record is None or record.in_sync:
        start = max(committed, record.done_until if record else 0, first_seen or 0)
        behind = False
    else:
        start = record.done_until
        behind = True
    mode: LaneMode = "paused" if not destination.deliverable else "catchup" if behind else "live"
    lane = Lane(destination, partition, mode=mode, **_start(record, start))
    if mode == "live" and lane.announced_last is not None and lane.done_until < position:
        lane.mode = "catchup"  # the announced batch starts before the group's position
    return lane


def replay_lane(
    destination: Destination, partition: int, record: LaneProgress | None, *, position: int
) -> Lane:
    """The lane of ``destination``'s replay request in ``partition``, from the replay's
    progress ``record`` (None: none yet) and the group's ``position``."""
    replay = destination.replay
    assert replay is not None
    if record is not None and record.replay_id == replay.id and record.replay_end is not None:
        start, replay_end = record.done_until, record.replay_end
    else:
        start, replay_end = replay.offsets[partition], position
    mode: LaneMode = "catchup" if destination.deliverable else "paused"
    same = record is not None and record.replay_id == replay.id
    return Lane(
        destination,
        partition,
        mode=mode,
        stream="replay",
        replay_end=replay_end,
        **_start(record if same else None, start),
    )


class _Start(TypedDict, total=False):
    done_until: Required[int]
    announced_last: int
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
        return {"done_until": start}
    return {
        "done_until": record.announced_first,
        "announced_last": record.announced_last,
        "announced_shape": record.announced_shape,
    }
