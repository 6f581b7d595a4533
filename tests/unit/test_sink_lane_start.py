"""Where a lane starts (:mod:`sinks.lane_start`): from its progress record and the group's
offsets. Pure: no broker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sinks.batch_shape import BatchShape
from sinks.destinations.model import (
    Destination,
    ReplayRequest,
    SecretValue,
    WebhookTarget,
)
from sinks.lane import LaneMode
from sinks.lane_start import live_lane, replay_lane
from sinks.progress import LaneProgress

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
REPLAY = ReplayRequest(id="replay-1", since=AT, offsets={0: 5})


def _destination(**fields: Any) -> Destination:
    return Destination(
        id="wh-start",
        tenant_id="acme",
        target=WebhookTarget(url="https://example.com/", signing_secret=SecretValue(ref="env:S")),
        created_at=AT,
        updated_at=AT,
        **fields,
    )


def _record(done_until: int, **fields: Any) -> LaneProgress:
    return LaneProgress("wh-start", 0, done_until, **fields)


@pytest.mark.parametrize(
    ("record", "first_seen", "expected"),
    [
        pytest.param(None, None, (100, "live", None), id="no record: the committed offset"),
        pytest.param(None, 130, (130, "live", None), id="no record: the first record asking"),
        pytest.param(_record(120), None, (120, "live", None), id="in sync, further on"),
        pytest.param(_record(90), None, (100, "live", None), id="in sync, behind the commit"),
        pytest.param(
            _record(40, in_sync=False), 130, (40, "catchup", None), id="parked: its own position"
        ),
        pytest.param(
            _record(100, announced_first=100, announced_last=104),
            None,
            (100, "live", 104),
            id="an announced batch from the start is re-formed",
        ),
        pytest.param(
            _record(90, announced_first=90, announced_last=94),
            None,
            (100, "live", None),
            id="a batch announced before the start is done",
        ),
        pytest.param(
            _record(40, in_sync=False, announced_first=40, announced_last=44),
            None,
            (40, "catchup", 44),
            id="parked with an announced batch",
        ),
    ],
)
def test_a_live_lane_starts(
    record: LaneProgress | None,
    first_seen: int | None,
    expected: tuple[int, LaneMode, int | None],
) -> None:
    lane = live_lane(_destination(), 0, record, position=100, committed=100, first_seen=first_seen)
    assert (lane.done_until, lane.mode, lane.announced_last) == expected


def test_an_announced_batch_before_the_groups_position_is_read_on_its_own() -> None:
    record = _record(100, announced_first=100, announced_last=104)
    lane = live_lane(_destination(), 0, record, position=110, committed=100)
    assert (lane.done_until, lane.mode, lane.announced_last) == (100, "catchup", 104)


def test_an_announced_batch_is_re_formed_with_its_shape() -> None:
    shape = BatchShape.of(_destination(format="json_array", compression="none", revision=1))
    record = _record(100, announced_first=100, announced_last=104, announced_shape=shape)
    lane = live_lane(_destination(revision=4), 0, record, position=100, committed=100)
    assert lane.shape == shape


def test_a_paused_destination_gets_a_paused_lane_where_it_stopped() -> None:
    lane = live_lane(
        _destination(state="paused"), 0, _record(40, in_sync=False), position=90, committed=90
    )
    assert (lane.done_until, lane.mode) == (40, "paused")


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param(None, (5, 90, None), id="new: from its first offset to the group"),
        pytest.param(
            _record(20, stream="replay", replay_id="replay-1", replay_end=70),
            (20, 70, None),
            id="goes on to the end it had",
        ),
        pytest.param(
            _record(
                20,
                stream="replay",
                replay_id="replay-1",
                replay_end=70,
                announced_first=20,
                announced_last=29,
            ),
            (20, 70, 29),
            id="re-forms its announced batch",
        ),
        pytest.param(
            _record(
                20,
                stream="replay",
                replay_id="replay-0",
                replay_end=70,
                announced_first=20,
                announced_last=29,
            ),
            (5, 90, None),
            id="another replay's record is not its own",
        ),
    ],
)
def test_a_replay_lane_starts(
    record: LaneProgress | None, expected: tuple[int, int, int | None]
) -> None:
    lane = replay_lane(_destination(replay=REPLAY), 0, record, position=90)
    assert (lane.done_until, lane.replay_end, lane.announced_last) == expected
    assert (lane.stream, lane.mode) == ("replay", "catchup")
