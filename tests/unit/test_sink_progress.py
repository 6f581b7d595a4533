"""The progress record on the wire: ``done_until`` travels as ``"next_offset"``, so workers
of the release before the rename and of this one read each other's records in a rolling
upgrade."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sinks.progress import LaneProgress

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_a_record_written_before_the_rename_reads_with_its_position() -> None:
    old = (
        b'{"destination_id":"wh-1","partition":2,"next_offset":7,"stream":"live",'
        b'"in_sync":false,"announced_first":7,"announced_last":9,'
        b'"last_success_at":"2026-11-25T10:00:00+00:00","updated_at":null}'
    )
    record = LaneProgress.from_json(old)
    assert (record.done_until, record.in_sync, record.announced_last) == (7, False, 9)
    assert record.last_success_at == AT


def test_the_position_is_written_under_next_offset_and_reads_back() -> None:
    record = LaneProgress("wh-1", 2, 41, in_sync=False, updated_at=AT)
    written = json.loads(record.to_json())
    assert written["next_offset"] == 41
    assert "done_until" not in written
    assert LaneProgress.from_json(record.to_json()) == record
