"""A lane: one destination in one partition of the events topic. Pure state, no I/O.

A lane batches the destination's records of its partition, hands one batch at a time to
delivery (so batches reach the destination in offset order, and progress can say exactly
what was delivered), and keeps its delivery health. Its ``mode`` says who feeds it:

- ``live``: the sink group's consumer (the lane keeps up);
- ``catchup``: its own reader, from ``done_until`` (the lane was parked because its
  destination kept failing, was resumed after a pause, or is a replay);
- ``paused``: nobody (the destination is paused; ``done_until`` is where it resumes).

Offsets (``first_*``/``last_*`` are inclusive, ``*_until`` and ``*_end`` exclusive):

- ``done_until``: every record below it is done for this destination (delivered, filtered
  out, or another tenant's);
- ``offered_until``: records below it were already offered to the lane (taken or
  skipped); offered again (after a hand-over from a reader, a restart) they are ignored;
- :attr:`Lane.unsent_from`: from here on nothing is delivered nor in flight (after the
  batch in flight, else ``done_until``): where a catch-up reader starts;
- :meth:`Lane.first_held`: the lowest offset the lane holds (open, ready or in flight) and
  has not delivered; None when it holds nothing;
- ``in_sync_from``: after a hand-over from its reader the lane counts as in sync (the group
  may commit past its records) once ``done_until`` reaches it;
- ``replay_end``: a replay's lane takes nothing from here on.

A batch closes when it holds ``max_records`` records or ``max_bytes`` bytes, or when its
first record has waited ``max_age_s``. A batch keeps the shape (:mod:`sinks.batch_shape`:
filters, format, compression, S3 prefix) it was opened with: a destination change that
alters the shape closes the open batch, and applies from the next one.

Re-forming: a lane created for a batch that was announced before a restart
(``announced_last``, its last offset, and ``announced_shape``) starts at the batch's first
offset, takes records with the announced shape's filters, and closes the batch exactly at
``announced_last``: no limit, age or destination change cuts it earlier. Should the lane
drop the batch before it was handed to delivery (parked, paused), it re-forms it again
from there.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal, get_args

from sinks.batch_shape import BatchShape
from sinks.destinations.model import Destination, Filters

LaneMode = Literal["live", "catchup", "paused"]
LANE_MODES: Final[tuple[LaneMode, ...]] = get_args(LaneMode)

#: Closed batches a live lane may hold behind the one in flight before it is parked (and
#: then reads at its own pace): bounds a lane's memory to about this many ``max_bytes``.
MAX_READY_BATCHES = 4
NO_FILTERS = Filters()
Stream = Literal["live", "replay"]


@dataclass
class Batch:
    """Records closed for one delivery, with the shape they were taken and are encoded
    with; ``record_times`` are their Kafka timestamps (ms), for the delivery latency
    metric."""

    first_offset: int
    last_offset: int
    lines: list[bytes]
    first_event_at: datetime
    size_bytes: int
    shape: BatchShape
    record_times_ms: list[int] = field(default_factory=list)
    # Positions in ``lines`` of integrity records (the account's log copy), in order.
    copies: list[int] = field(default_factory=list)

    @property
    def record_count(self) -> int:
        return len(self.lines)


@dataclass
class _Open:
    opened_at_s: float
    first_offset: int
    first_event_ms: int  # occurred_at of the first event, epoch milliseconds
    shape: BatchShape
    lines: list[bytes] = field(default_factory=list)
    record_times_ms: list[int] = field(default_factory=list)
    last_offset: int = -1
    size_bytes: int = 0
    copies: list[int] = field(default_factory=list)

    def close(self) -> Batch:
        return Batch(
            self.first_offset,
            self.last_offset,
            self.lines,
            datetime.fromtimestamp(self.first_event_ms / 1000, UTC),
            self.size_bytes,
            self.shape,
            self.record_times_ms,
            self.copies,  # the same list: add_copy marks a line after add may have closed
        )


class Lane:
    """See the module docstring. ``now_s`` arguments are monotonic seconds."""

    announced_last: int | None  # re-forming the announced batch: its last offset
    shape: BatchShape  # records are taken with it now (the announced one while re-forming)
    filters: Filters  # the shape's filters
    filtered: bool  # any filter at all (else the router need not read the headers)

    def __init__(
        self,
        destination: Destination,
        partition: int,
        *,
        done_until: int,
        mode: LaneMode,
        stream: Stream = "live",
        announced_last: int | None = None,
        announced_shape: BatchShape | None = None,
        replay_end: int | None = None,
    ) -> None:
        """``announced_last``, ``announced_shape``: the last offset and the shape of a batch
        announced before a restart, to re-form from ``done_until`` (its first offset);
        without a shape (a progress record of an older release) the destination's own."""
        self._destination = destination
        self.created_ms = destination.created_at.timestamp() * 1000
        self._destination_shape = BatchShape.of(destination)
        self._announced: tuple[int, BatchShape] | None = None
        if announced_last is not None:
            self._announced = (announced_last, announced_shape or self._destination_shape)
        self.partition = partition
        self.stream: Stream = stream
        self.mode: LaneMode = mode
        self.done_until = done_until
        self.offered_until = done_until
        self.replay_end = replay_end  # a replay ends here (exclusive)
        self._open: _Open | None = None
        self.ready: deque[Batch] = deque()
        self.in_flight: Batch | None = None
        self.retry_at_s: float | None = None
        self.sending = False  # a delivery of ``in_flight`` is running now
        self.attempt = 0
        self.failing_since_s: float | None = None
        self.in_sync_from = 0  # in sync once done_until reaches it (after a hand-over)
        self._reform(self._announced is not None)

    def _reform(self, reforming: bool) -> None:
        """Start (or end) re-forming the announced batch: records are taken with its shape
        while it lasts, with the destination's after."""
        if reforming and self._announced is not None:
            self.announced_last = self._announced[0]
            self.shape = self._announced[1]
        else:
            self.announced_last = None
            self.shape = self._destination_shape
        self.filters = self.shape.filters
        self.filtered = self.filters != NO_FILTERS

    @property
    def destination(self) -> Destination:
        return self._destination

    @destination.setter
    def destination(self, destination: Destination) -> None:
        """A changed destination. New limits apply from the next record on; a new shape
        from the next batch on (the open one is closed), or after the batch being
        re-formed."""
        self._destination = destination
        self.created_ms = destination.created_at.timestamp() * 1000
        shape = BatchShape.of(destination)
        if shape == self._destination_shape:
            self._destination_shape = shape  # the same shape, at the new revision
            return
        self._destination_shape = shape
        if self.announced_last is None:
            self._close()
            self._reform(False)

    # -- feeding -------------------------------------------------------------------------

    def wants(self, offset: int) -> bool:
        """Whether a record at ``offset`` is new to this lane."""
        if offset < self.offered_until:
            return False
        return self.replay_end is None or offset < self.replay_end

    def skip(self, offset: int) -> None:
        """A record of the partition that is not for this destination (filtered out)."""
        self.offered_until = offset + 1
        if self.announced_last is not None and offset >= self.announced_last:
            self._close()  # the announced batch ends here
        if self._open is None and not self.ready and self.in_flight is None:
            self.done_until = offset + 1

    def add(
        self, offset: int, line: bytes, event_at_ms: int, record_time_ms: int, now_s: float
    ) -> _Open:
        """A record for this destination, encoded as ``line``; ``event_at_ms``: its
        ``occurred_at`` (epoch milliseconds), ``record_time_ms``: its Kafka timestamp.
        Returns the batch it went into (closed already, maybe)."""
        limits = self._destination.batch
        current = self._open
        if self.announced_last is not None:
            if offset > self.announced_last:
                self._close()  # the announced batch's last record is gone: it ends before
                current = None
        elif current is not None and current.size_bytes + len(line) > limits.max_bytes:
            self._close()
            current = None
        if current is None:
            current = self._open = _Open(now_s, offset, event_at_ms, self.shape)
        current.lines.append(line)
        current.record_times_ms.append(record_time_ms)
        current.last_offset = offset
        current.size_bytes += len(line)
        self.offered_until = offset + 1
        if self.announced_last is not None:
            if offset >= self.announced_last:
                self._close()
        elif len(current.lines) >= limits.max_records:
            self._close()
        return current

    def add_copy(self, offset: int, line: bytes, record_time_ms: int, now_s: float) -> None:
        """An integrity record of the account (its line as published): a line of the batch
        like an event's, marked as a copy record; its Kafka time stands in for the event
        time (the S3 time prefix of a batch it opens)."""
        taken = self.add(offset, line, record_time_ms, record_time_ms, now_s)
        taken.copies.append(len(taken.lines) - 1)

    def _close(self) -> None:
        """Close the open batch (if any); re-forming ends with it."""
        if self._open is not None:
            self.ready.append(self._open.close())
            self._open = None
        if self.announced_last is not None:
            self._reform(False)

    def tick(self, now_s: float) -> None:
        """Close the open batch if it waited long enough (and no announced range is being
        re-formed)."""
        current = self._open
        if (
            current is not None
            and self.announced_last is None
            and now_s - current.opened_at_s >= self.destination.batch.max_age_s
        ):
            self._close()

    def flush_open(self) -> bool:
        """Close the open batch now (a replay reached its end, shutdown, the worker's
        memory budget); whether one was closed (never one being re-formed)."""
        if self.announced_last is None and self._open is not None:
            self._close()
            return True
        return False

    @property
    def open_bytes(self) -> int:
        """The bytes of the open batch's lines (0: none open)."""
        return 0 if self._open is None else self._open.size_bytes

    @property
    def held_bytes(self) -> int:
        """The bytes of every line the lane holds: open, waiting and in flight."""
        held = 0 if self._open is None else self._open.size_bytes
        for batch in self.ready:
            held += batch.size_bytes
        if self.in_flight is not None:
            held += self.in_flight.size_bytes
        return held

    @property
    def has_room(self) -> bool:
        """False when a closed batch already waits behind the one in flight: a reader
        should stop reading, and a live lane in that state cannot keep up."""
        return not self.ready

    @property
    def backlog_full(self) -> bool:
        """More closed batches wait than a lane may hold (:data:`MAX_READY_BATCHES`): the
        destination does not keep up with its events."""
        return len(self.ready) > MAX_READY_BATCHES

    # -- delivery ------------------------------------------------------------------------

    def next_batch(self, now_s: float) -> Batch | None:
        """The batch to send now, if any: a retry whose time has come, or the next ready
        one when nothing is in flight; never while a send of this lane is running."""
        if self.mode == "paused" or self.sending:
            return None
        if self.in_flight is not None:
            if self.retry_at_s is not None and now_s >= self.retry_at_s:
                self.retry_at_s = None
                self.sending = True
                return self.in_flight
            return None
        if self.ready:
            self.in_flight = self.ready.popleft()
            self.retry_at_s = None
            self.sending = True
            self._announced = None  # a re-formed batch is kept in flight from now on
            return self.in_flight
        return None

    def delivered(self, batch: Batch) -> None:
        self.sending = False
        if batch is self.in_flight:
            self.in_flight = None
        self.done_until = max(self.done_until, batch.last_offset + 1)
        if self._open is None and not self.ready and self.in_flight is None:
            self.done_until = max(self.done_until, self.offered_until)
        self.attempt = 0
        self.retry_at_s = None
        self.failing_since_s = None

    def failed(self, now_s: float, retry_in_s: float) -> None:
        self.sending = False
        self.attempt += 1
        self.retry_at_s = now_s + retry_in_s
        if self.failing_since_s is None:
            self.failing_since_s = now_s

    def failing_for_s(self, now_s: float) -> float:
        return 0.0 if self.failing_since_s is None else now_s - self.failing_since_s

    # -- mode changes --------------------------------------------------------------------

    def drop_unsent(self) -> None:
        """Forget what is buffered but not in flight (parking, pausing): a reader reads it
        again from :attr:`unsent_from`, and an announced batch that was not handed to
        delivery yet is re-formed again."""
        self._open = None
        self.ready.clear()
        self.offered_until = self.unsent_from
        self._reform(self._announced is not None)

    @property
    def unsent_from(self) -> int:
        """Where a reader continues: after the batch in flight, or at ``done_until``."""
        if self.in_flight is not None:
            return self.in_flight.last_offset + 1
        return self.done_until

    def first_held(self) -> int | None:
        """The lowest offset held and not yet delivered (None: nothing held)."""
        if self.in_flight is not None:
            return self.in_flight.first_offset
        if self.ready:
            return self.ready[0].first_offset
        if self._open is not None:
            return self._open.first_offset
        return None

    @property
    def idle(self) -> bool:
        return self._open is None and not self.ready and self.in_flight is None

    @property
    def failing(self) -> bool:
        """Its last delivery failed: a retry is pending."""
        return self.failing_since_s is not None

    @property
    def has_work(self) -> bool:
        """Records to read or deliver: what a worker that exits when idle waits for. A
        paused lane has none, nor a parked one whose deliveries fail (a permanent error
        parks at once, retryable ones after ``park_after_s``): it is behind (see
        :attr:`behind`). A live lane retrying a transient failure still has work, so a
        short outage does not end a batch run."""
        if self.mode == "paused" or (self.mode == "catchup" and self.failing):
            return False
        return self.mode == "catchup" or not self.idle

    @property
    def behind(self) -> bool:
        """Failing, or reading on its own behind the group (parked, resumed, replaying). A
        paused lane is not: it is where its owner left it."""
        return self.mode != "paused" and (self.failing or self.mode == "catchup")

    def lag(self, position: int) -> int:
        """Offsets of the partition between this lane's position and ``position`` (the
        group's): an upper bound of its records not delivered yet."""
        return max(0, position - self.done_until)

    @property
    def in_sync(self) -> bool:
        return self.mode == "live" and self.done_until >= self.in_sync_from
