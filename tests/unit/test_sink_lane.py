"""A lane's batching and delivery bookkeeping (pure: no broker, no destination)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sinks.batch_shape import BatchShape
from sinks.destinations.model import (
    BatchLimits,
    Destination,
    Filters,
    SecretValue,
    WebhookTarget,
)
from sinks.lane import MAX_READY_BATCHES, Lane

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
AT_MS = int(AT.timestamp() * 1000)


def _destination(**limits: float) -> Destination:
    return Destination(
        id="wh-test",
        tenant_id="acme",
        target=WebhookTarget(url="https://example.com/", signing_secret=SecretValue(ref="env:S")),
        batch=BatchLimits(**limits),  # type: ignore[arg-type]
        created_at=AT,
        updated_at=AT,
    )


def _changed(destination: Destination, **changes: Any) -> Destination:
    """``destination`` at its next revision, with ``changes``."""
    return destination.model_copy(update={**changes, "revision": destination.revision + 1})


LOGINS_OUT = Filters(exclude_actions=frozenset({"user.login"}))


def _lane(start: int = 0, **limits: float) -> Lane:
    return Lane(_destination(**limits), 3, done_until=start, mode="live")


def _add(lane: Lane, offset: int, size: int = 10, now_s: float = 0.0) -> None:
    lane.add(offset, b"x" * size, AT_MS, 1, now_s)


def test_a_batch_closes_at_max_records_and_keeps_offsets() -> None:
    lane = _lane(100, max_records=3)
    for offset in (100, 102, 105, 106):
        _add(lane, offset)
    batch = lane.next_batch(0.0)
    assert batch is not None
    assert (batch.first_offset, batch.last_offset, batch.record_count) == (100, 105, 3)
    assert batch.first_event_at == AT
    assert lane.first_held() == 100
    lane.delivered(batch)
    assert lane.done_until == 106
    assert lane.first_held() == 106  # the open batch


def test_a_batch_closes_before_it_would_exceed_max_bytes() -> None:
    lane = _lane(max_bytes=1024, max_records=100)
    _add(lane, 0, size=600)
    _add(lane, 1, size=600)
    batch = lane.next_batch(0.0)
    assert batch is not None
    assert batch.record_count == 1


def test_a_batch_closes_after_max_age_but_not_while_reforming_an_announced_one() -> None:
    lane = _lane(max_age_s=5)
    _add(lane, 0, now_s=0.0)
    lane.tick(4.9)
    assert lane.next_batch(4.9) is None
    lane.tick(5.0)
    assert lane.next_batch(5.0) is not None

    announced = Lane(_destination(max_age_s=5), 0, done_until=10, mode="live", announced_last=12)
    announced.add(10, b"a", AT_MS, 1, 0.0)
    announced.tick(100.0)
    assert announced.next_batch(100.0) is None, "an announced batch waits for its last record"
    announced.skip(11)
    announced.add(12, b"c", AT_MS, 1, 100.0)
    batch = announced.next_batch(100.0)
    assert batch is not None
    assert (batch.first_offset, batch.last_offset) == (10, 12)


def test_one_send_at_a_time_and_a_retry_resends_the_same_batch() -> None:
    lane = _lane(max_records=1)
    _add(lane, 0)
    _add(lane, 1)
    first = lane.next_batch(0.0)
    assert first is not None
    assert lane.next_batch(0.0) is None, "one delivery of a lane at a time"
    lane.failed(now_s=1.0, retry_in_s=2.0)
    assert lane.next_batch(2.9) is None
    assert lane.next_batch(3.0) is first
    assert lane.failing_for_s(4.0) == 3.0
    lane.delivered(first)
    assert lane.failing_for_s(4.0) == 0.0
    second = lane.next_batch(4.0)
    assert second is not None
    assert second.first_offset == 1


def test_skipped_records_advance_an_idle_lane_only() -> None:
    lane = _lane(10)
    lane.skip(10)
    lane.skip(11)
    assert lane.done_until == 12
    assert not lane.wants(11)
    assert lane.wants(12)
    _add(lane, 12)
    lane.skip(13)
    assert lane.done_until == 12, "a held record keeps the lane's position"


def test_parking_drops_unsent_records_and_resumes_after_the_batch_in_flight() -> None:
    lane = _lane(0, max_records=2)
    for offset in range(7):
        _add(lane, offset)
    in_flight = lane.next_batch(0.0)
    assert in_flight is not None
    assert in_flight.last_offset == 1
    lane.drop_unsent()
    assert lane.unsent_from == 2
    assert lane.first_held() == 0
    assert lane.wants(2), "a reader offers the dropped records again"


def test_backlog_full_after_the_allowed_ready_batches() -> None:
    lane = _lane(0, max_records=1)
    for offset in range(MAX_READY_BATCHES):
        _add(lane, offset)
    assert not lane.backlog_full
    _add(lane, MAX_READY_BATCHES)
    assert lane.backlog_full


def test_a_replay_lane_stops_at_its_end() -> None:
    lane = Lane(_destination(), 0, done_until=5, mode="catchup", stream="replay", replay_end=9)
    assert lane.wants(8)
    assert not lane.wants(9)
    assert not lane.wants(4)


def test_a_lane_knows_whether_its_destination_filters() -> None:
    lane = _lane()
    assert not lane.filtered, "no filters: the router need not read the headers"
    lane.destination = _destination().model_copy(
        update={"filters": Filters(exclude_actions=frozenset({"user.login"}))}
    )
    assert lane.filtered


# -- re-forming an announced batch, and a batch's shape ---------------------------------


def test_an_announced_batch_is_re_formed_whole_whatever_the_limits_are_now() -> None:
    """Announced as offsets 10-15 before a restart; the limits were lowered since: the
    batch is formed again exactly, not cut at the new record or byte limit."""
    lane = Lane(
        _destination(max_records=2, max_bytes=1024),
        0,
        done_until=10,
        mode="live",
        announced_last=15,
    )
    for offset in range(10, 16):
        _add(lane, offset, size=600)
    batch = lane.next_batch(0.0)
    assert batch is not None
    assert (batch.first_offset, batch.last_offset, batch.record_count) == (10, 15, 6)
    _add(lane, 16, size=600)
    _add(lane, 17, size=600)
    after = lane.ready[0]
    assert (after.first_offset, after.last_offset) == (16, 16), "the new limits apply after it"


def test_an_announced_batch_takes_records_with_its_announced_shape() -> None:
    """Announced under revision 1 (no filters, NDJSON, gzip); the destination is at revision
    3 now (logins filtered out, a JSON array, no compression): the batch is re-formed with
    the announced filters and encoded as announced; the next batch takes the new shape."""
    announced = BatchShape.of(_destination())
    now = _changed(_destination(), filters=LOGINS_OUT)
    now = _changed(now, format="json_array", compression="none")
    assert now.revision == 3
    lane = Lane(now, 0, done_until=10, mode="live", announced_last=11, announced_shape=announced)
    assert (lane.filtered, lane.filters.accepts("account_security", "user.login")) == (False, True)
    _add(lane, 10)
    _add(lane, 11)
    batch = lane.next_batch(0.0)
    assert batch is not None
    assert batch.shape == announced
    assert (batch.shape.format, batch.shape.compression) == ("ndjson", "gzip")
    assert (lane.filtered, lane.filters.accepts("account_security", "user.login")) == (
        True,
        False,
    ), "the destination's filters from the next batch on"
    _add(lane, 12)
    lane.flush_open()
    assert lane.ready[0].shape == BatchShape.of(now)


def test_an_announced_batch_without_a_shape_takes_the_destinations() -> None:
    """A progress record of an older release has no shape: the best left is the
    destination's own (the range is still re-formed whole)."""
    now = _changed(_destination(max_records=1), filters=LOGINS_OUT)
    lane = Lane(now, 0, done_until=10, mode="live", announced_last=11)
    assert lane.shape == BatchShape.of(now)
    _add(lane, 10)
    assert lane.next_batch(0.0) is None, "not cut at max_records"


def test_a_destination_change_does_not_touch_the_batch_being_re_formed() -> None:
    lane = Lane(_destination(), 0, done_until=10, mode="live", announced_last=12)
    announced = lane.shape
    _add(lane, 10)
    lane.destination = _changed(_destination(max_records=1), filters=LOGINS_OUT)
    assert lane.shape == announced
    assert lane.announced_last == 12
    _add(lane, 11)
    _add(lane, 12)
    batch = lane.next_batch(0.0)
    assert batch is not None
    assert (batch.first_offset, batch.last_offset, batch.shape) == (10, 12, announced)
    assert lane.filters == LOGINS_OUT


def test_a_batch_re_formed_but_dropped_before_it_was_sent_is_re_formed_again() -> None:
    """Parked or paused while it re-forms the announced batch: when it reads again, it
    forms that batch again, with its shape, not one cut by the destination's limits."""
    announced = BatchShape.of(_destination())
    now = _changed(_destination(max_records=1), filters=LOGINS_OUT)
    lane = Lane(now, 0, done_until=10, mode="live", announced_last=12, announced_shape=announced)
    _add(lane, 10)
    _add(lane, 11)
    lane.drop_unsent()
    assert (lane.unsent_from, lane.announced_last, lane.shape) == (10, 12, announced)
    assert lane.wants(10)
    for offset in (10, 11, 12):
        _add(lane, offset)
    batch = lane.next_batch(0.0)
    assert batch is not None
    assert (batch.first_offset, batch.last_offset, batch.shape) == (10, 12, announced)
    lane.drop_unsent()
    assert lane.announced_last is None, "in flight now: a retry resends it as it is"
    assert lane.unsent_from == 13


def test_an_announced_batch_whose_last_record_is_gone_ends_before_the_gap() -> None:
    lane = Lane(_destination(), 0, done_until=10, mode="live", announced_last=12)
    _add(lane, 10)
    _add(lane, 14)
    batch = lane.next_batch(0.0)
    assert batch is not None
    assert (batch.first_offset, batch.last_offset) == (10, 10)
    assert lane.announced_last is None


def test_a_batch_keeps_the_shape_it_was_formed_with() -> None:
    """A change of filters or encoding closes the open batch (each batch has one shape,
    which a restart can re-form) and applies from the next one; a batch in flight is
    retried as it was formed. A change of limits alone closes nothing."""
    before = _destination()
    lane = Lane(before, 0, done_until=0, mode="live")
    _add(lane, 0)
    first = lane.next_batch(0.0)
    assert first is None
    lane.destination = _changed(before, batch=BatchLimits(max_records=5))
    assert (lane.first_held(), len(lane.ready)) == (0, 0), "new limits: the batch stays open"
    _add(lane, 1)
    changed = _changed(lane.destination, format="json_array")
    lane.destination = changed
    closed = lane.next_batch(0.0)
    assert closed is not None
    assert (closed.last_offset, closed.shape) == (1, BatchShape.of(before))
    _add(lane, 2)
    lane.failed(now_s=0.0, retry_in_s=1.0)
    lane.destination = _changed(changed, compression="none")
    assert lane.next_batch(1.0) is closed
    assert closed.shape.format == "ndjson"
    lane.delivered(closed)
    following = lane.next_batch(1.0)
    assert following is not None
    assert following.shape == BatchShape.of(changed)


# -- what an idle worker waits for ------------------------------------------------------


def test_a_parked_failing_or_paused_lane_is_no_work_and_a_failing_one_is_behind() -> None:
    lane = _lane(0, max_records=1)
    assert (lane.has_work, lane.behind) == (False, False)
    _add(lane, 0)
    assert (lane.has_work, lane.behind) == (True, False)
    batch = lane.next_batch(0.0)
    assert batch is not None
    lane.failed(now_s=0.0, retry_in_s=1.0)
    assert (lane.failing, lane.has_work, lane.behind) == (True, True, True), (
        "a live lane retrying a transient failure still has work: a blip ends no batch run"
    )
    lane.mode = "catchup"  # parked (at once for a permanent error, after park_after_s else)
    assert (lane.has_work, lane.behind) == (False, True), "parked and failing: no work"
    lane.delivered(batch)
    assert (lane.has_work, lane.behind) == (True, True), "answering again: catching up is work"
    lane.mode = "paused"
    assert (lane.has_work, lane.behind) == (False, False), "paused: where its owner left it"
