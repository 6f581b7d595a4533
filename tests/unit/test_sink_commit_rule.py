"""The commit rule (:mod:`sinks.commit_rule`): the group never commits past a record a lane
of the group still holds, and is never held back by lanes behind it. Pure: real lanes
(pure state), no broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sinks.commit_rule import offset_to_commit
from sinks.destinations.model import BatchLimits, Destination, SecretValue, WebhookTarget
from sinks.lane import Lane, LaneMode, Stream

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
AT_MS = int(AT.timestamp() * 1000)


def _lane(
    held: range = range(0),
    *,
    start: int = 100,
    mode: LaneMode = "live",
    stream: Stream = "live",
    in_flight: int = 0,
    handed_over_at: int = 0,
) -> Lane:
    """A lane from ``start`` holding the records ``held`` (batches of two records), the
    first ``in_flight`` batches of them handed to delivery."""
    destination = Destination(
        id="wh-commit",
        tenant_id="acme",
        target=WebhookTarget(url="https://example.com/", signing_secret=SecretValue(ref="env:S")),
        batch=BatchLimits(max_records=2),
        created_at=AT,
        updated_at=AT,
    )
    lane = Lane(
        destination,
        0,
        done_until=start,
        mode="live",
        stream=stream,
        replay_end=10_000 if stream == "replay" else None,
    )
    for offset in held:
        lane.add(offset, b"{}", AT_MS, AT_MS, 0.0)
    for _ in range(in_flight):
        assert lane.next_batch(0.0) is not None
    lane.in_sync_from = handed_over_at
    lane.mode = mode
    return lane


@pytest.mark.parametrize(
    ("position", "committed", "lanes", "expected"),
    [
        pytest.param(120, 100, [], 120, id="no lanes: the group's position"),
        pytest.param(100, 100, [], None, id="nothing new since the last commit"),
        pytest.param(120, 100, [_lane()], 120, id="an idle lane holds nothing back"),
        pytest.param(120, 100, [_lane(range(105, 108))], 105, id="an in-sync lane's open batch"),
        pytest.param(
            120,
            100,
            [_lane(range(103, 110), in_flight=1)],
            103,
            id="an in-sync lane's batch in flight",
        ),
        pytest.param(
            120,
            90,
            [_lane(range(104, 106)), _lane(range(101, 103))],
            101,
            id="the lowest record any in-sync lane holds",
        ),
        pytest.param(
            120,
            100,
            [_lane(range(111, 113), handed_over_at=130)],
            111,
            id="handed over from its reader, not in sync yet: what it holds counts",
        ),
        pytest.param(120, 100, [_lane(range(101, 104), mode="catchup")], 120, id="a parked lane"),
        pytest.param(120, 100, [_lane(range(101, 104), mode="paused")], 120, id="a paused lane"),
        pytest.param(
            120,
            100,
            [_lane(range(101, 104), mode="catchup", stream="replay")],
            120,
            id="a replay",
        ),
        pytest.param(
            120,
            100,
            [_lane(range(101, 104), mode="catchup"), _lane(range(110, 112))],
            110,
            id="a parked lane beside an in-sync one",
        ),
        pytest.param(120, 105, [_lane(range(105, 107))], None, id="held at the committed offset"),
        pytest.param(
            120, 110, [_lane(range(105, 107))], None, id="never below the committed offset"
        ),
    ],
)
def test_the_offset_to_commit(
    position: int, committed: int, lanes: list[Lane], expected: int | None
) -> None:
    assert offset_to_commit(position, committed, lanes) == expected


def test_a_delivered_batch_lets_the_commit_move_to_the_next_held_record() -> None:
    lane = _lane(range(100, 105))
    assert offset_to_commit(120, 90, [lane]) == 100
    batch = lane.next_batch(0.0)
    assert batch is not None
    assert offset_to_commit(120, 90, [lane]) == 100, "in flight: still held"
    lane.delivered(batch)
    assert offset_to_commit(120, 90, [lane]) == 102
