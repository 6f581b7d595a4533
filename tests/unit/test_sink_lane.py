"""A lane's batching and delivery bookkeeping (pure: no broker, no destination)."""

from __future__ import annotations

from datetime import UTC, datetime

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


def _lane(start: int = 0, **limits: float) -> Lane:
    return Lane(_destination(**limits), 3, next_offset=start, mode="live")


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
    assert lane.first_pending() == 100
    lane.delivered(batch)
    assert lane.next_offset == 106
    assert lane.first_pending() == 106  # the open batch


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

    announced = Lane(_destination(max_age_s=5), 0, next_offset=10, mode="live", must_end_at=12)
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
    assert lane.next_offset == 12
    assert not lane.wants(11)
    assert lane.wants(12)
    _add(lane, 12)
    lane.skip(13)
    assert lane.next_offset == 12, "a held record keeps the lane's position"


def test_parking_drops_unsent_records_and_resumes_after_the_batch_in_flight() -> None:
    lane = _lane(0, max_records=2)
    for offset in range(7):
        _add(lane, offset)
    in_flight = lane.next_batch(0.0)
    assert in_flight is not None
    assert in_flight.last_offset == 1
    lane.drop_unsent()
    assert lane.resume_from == 2
    assert lane.first_pending() == 0
    assert lane.wants(2), "a reader offers the dropped records again"


def test_backlog_full_after_the_allowed_ready_batches() -> None:
    lane = _lane(0, max_records=1)
    for offset in range(MAX_READY_BATCHES):
        _add(lane, offset)
    assert not lane.backlog_full
    _add(lane, MAX_READY_BATCHES)
    assert lane.backlog_full


def test_a_replay_lane_stops_at_its_end() -> None:
    lane = Lane(_destination(), 0, next_offset=5, mode="catchup", stream="replay", stop_at=9)
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
