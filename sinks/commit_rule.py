"""The commit rule: how far the sink group may commit one partition of the events topic.

The group's committed offset is where the next owner of the partition starts reading for
every lane that keeps up with the group. It must therefore never pass a record that such a
lane still holds (open, closed and waiting, or in flight) and has not delivered: after a
crash nobody would read that record again for its destination. The lanes that count are the
group's own: ``live`` mode on the ``live`` stream (in sync, or handed over from a reader a
moment ago). The lanes that do not:

- parked (``catchup``) and ``paused`` lanes: behind the group, each keeps its own position
  (``done_until``) in the progress topic (:mod:`sinks.progress`) and reads on its own reader
  (:mod:`sinks.catchup`) when it goes on, so the group moves past them;
- replays: they read their own range of the partition, on their own reader.

Pure: no clock, no I/O. The worker makes the progress records durable before it commits
what this returns (announce -> send -> commit, see :mod:`sinks.dispatch`).
"""

from __future__ import annotations

from collections.abc import Iterable

from sinks.lane import Lane


def offset_to_commit(position: int, committed: int, lanes: Iterable[Lane]) -> int | None:
    """The offset the group may commit for a partition whose consumer ``position`` (the
    next offset it hands out) and ``committed`` offset are given, and whose lanes are
    ``lanes``: ``position``, or the first record a lane of the group still holds if that
    is lower. None when that is not beyond ``committed`` (nothing new to commit)."""
    safe = position
    for lane in lanes:
        if lane.mode == "live" and lane.stream == "live":
            held = lane.first_held()
            if held is not None and held < safe:
                safe = held
    return safe if safe > committed else None
