"""The sink worker's memory budget: open batches closed early, the group held back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sinks.destinations.model import BatchLimits, Destination, SecretValue, WebhookTarget
from sinks.lane import Lane
from sinks.memory_budget import MemoryBudget

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
AT_MS = int(AT.timestamp() * 1000)


def _lane(partition: int = 0, **kwargs: object) -> Lane:
    destination = Destination(
        id=f"wh-{partition}",
        tenant_id="acme",
        target=WebhookTarget(url="https://example.com/", signing_secret=SecretValue(ref="env:S")),
        batch=BatchLimits(),
        created_at=AT,
        updated_at=AT,
    )
    return Lane(destination, partition, done_until=0, mode="live", **kwargs)  # type: ignore[arg-type]


def _fill(lane: Lane, records: int, size: int = 100, first: int = 0) -> None:
    for offset in range(first, first + records):
        lane.add(offset, b"x" * size, AT_MS, 1, 0.0)


def test_the_largest_open_batches_close_until_the_rest_fit() -> None:
    small, middle, large = _lane(0), _lane(1), _lane(2)
    _fill(small, 2)  # 200 bytes
    _fill(middle, 5)  # 500
    _fill(large, 9)  # 900
    budget = MemoryBudget(max_open_bytes=800, max_held_bytes=2000)
    assert budget.close_largest([small, middle, large]) == 1
    assert (small.open_bytes, middle.open_bytes, large.open_bytes) == (200, 500, 0)
    assert len(large.ready) == 1
    assert large.held_bytes == 900
    assert budget.close_largest([small, middle, large]) == 0  # 700 open: within


def test_a_lane_with_a_batch_waiting_or_re_forming_keeps_its_open_batch() -> None:
    waiting, reforming, other = _lane(0), _lane(1, announced_last=50), _lane(2)
    _fill(waiting, 5)
    assert waiting.flush_open()
    _fill(waiting, 9, first=5)  # 900 open behind a closed batch
    _fill(reforming, 8)  # 800 open, ends only at its announced offset 50
    _fill(other, 3)
    budget = MemoryBudget(max_open_bytes=100, max_held_bytes=2000)
    assert budget.close_largest([waiting, reforming, other]) == 1
    assert (waiting.open_bytes, reforming.open_bytes, other.open_bytes) == (900, 800, 0)
    assert reforming.announced_last == 50


def test_the_group_is_held_over_the_limit_until_under_three_quarters() -> None:
    lanes = [_lane(p) for p in range(4)]
    budget = MemoryBudget(max_open_bytes=100, max_held_bytes=1000)
    for lane in lanes:
        _fill(lane, 2)  # 800 held
    assert not budget.hold_group(lanes, holding=False)
    _fill(lanes[0], 3, first=2)  # 1,100
    assert budget.hold_group(lanes, holding=False)
    batch = lanes[0].next_batch(0.0)
    assert batch is None  # nothing closed yet: the open batch is held all the same
    assert lanes[0].flush_open()
    sent = lanes[0].next_batch(0.0)
    assert sent is not None
    assert lanes[0].held_bytes == 500
    assert budget.hold_group(lanes, holding=True)  # 1,100 in flight or open
    lanes[0].delivered(sent)  # 600 left
    assert not budget.hold_group(lanes, holding=True)


def test_lanes_in_catch_up_do_not_hold_the_group() -> None:
    parked = _lane(0)
    _fill(parked, 20)
    parked.mode = "catchup"
    assert not MemoryBudget(max_open_bytes=100, max_held_bytes=1000).hold_group([parked], False)


def test_open_batches_alone_cannot_keep_the_group_held() -> None:
    with pytest.raises(ValueError, match="3/4"):
        MemoryBudget(max_open_bytes=800, max_held_bytes=1000)
