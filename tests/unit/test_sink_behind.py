"""What ``auditlog sink`` says about the destinations it leaves behind."""

from __future__ import annotations

from datetime import UTC, datetime

from sinks.behind import LaneBehind, describe

EARLY = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
LATE = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)


def test_one_line_per_destination_with_partitions_lag_and_the_latest_error() -> None:
    lines = describe(
        [
            LaneBehind("wh-b", "webhook", 2, "live", 30, 4, "HTTP 500 from x", EARLY),
            LaneBehind("s3-a", "s3", 1, "live", 5, 1, "NoSuchBucket", EARLY),
            LaneBehind("wh-b", "webhook", 0, "live", 12, 7, "HTTP 503 from x", LATE),
            LaneBehind("wh-b", "webhook", 3, "replay", 100, 0, None),
        ]
    )
    assert lines == [
        "behind: destination s3-a (s3), partition 1: 5 offsets behind the group, "
        "1 failed attempt in a row; last error: NoSuchBucket",
        "behind: destination wh-b (webhook), partitions 0, 2: 42 offsets behind the group, "
        "7 failed attempts in a row; last error: HTTP 503 from x",
        "behind: replay wh-b (webhook), partition 3: 100 offsets behind the group; "
        "catching up, no error",
    ]
    assert describe([]) == []
