"""The next progress record of a lane after something happened to it. Pure: the current
record, the lane and the time in, the record to write out (:mod:`sinks.progress` says what
each field means).

Events, and what they change besides the lane's position and health summary (``done_until``,
``in_sync``, ``lag_records``, ``stream``), which every write refreshes:

- ``announced``: a batch is about to be sent for the first time: its range and shape are
  recorded *before* the send (announce -> send -> commit), so that a worker that restarts
  or takes the partition over re-forms exactly this batch (same records, S3 key, webhook
  idempotency key and body);
- ``delivered``: the batch landed: the announcement is cleared, counters go up, the
  failure streak ends;
- ``error``: an attempt failed (or records expired before delivery): the error (redacted,
  bounded), its time, the streak and when it began;
- ``replay_done``: a replay delivered its whole range;
- none of these: a mode change (created behind the group, parked, paused, resumed, caught
  up) that moves only the position.
"""

from __future__ import annotations

from datetime import datetime

from runtime.redaction import redact_text
from sinks.lane import Batch, Lane
from sinks.progress import LaneProgress

MAX_ERROR_CHARS = 1000


def next_progress(
    record: LaneProgress | None,
    lane: Lane,
    *,
    position: int,
    now: datetime,
    announced: Batch | None = None,
    delivered: int = 0,
    error: str | None = None,
    replay_done: bool = False,
) -> LaneProgress:
    """``record`` (None: the lane has none yet) after the event; ``position``: the group's
    position in the lane's partition (for the lag), ``now``: the wall-clock time."""
    destination = lane.destination
    if record is None:
        record = LaneProgress(destination.id, lane.partition, lane.done_until)
    changes: dict[str, object] = {
        "done_until": lane.done_until,
        "in_sync": lane.in_sync if lane.stream == "live" else True,
        "lag_records": lane.lag(position),
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
        changes["replay_end"] = lane.replay_end
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
            last_error=redact_text(error)[:MAX_ERROR_CHARS],
            last_error_at=now,
            consecutive_failures=record.consecutive_failures + 1,
            failing_since=record.failing_since or now,
        )
    return record.replace(updated_at=now, **changes)
