"""The destinations a sink worker leaves behind when it stops: what ``auditlog sink``
reports (and, after ``--exit-when-idle``, exits non-zero for).

A lane is behind (:attr:`sinks.lane.Lane.behind`) when its deliveries fail (a retry is
pending, parked or not) or when it reads on its own behind the group (parked, resumed,
replaying). Paused destinations are not listed: they are where their owner left them.
Stopping with lanes behind loses nothing: the group never commits past an in-sync lane's
undelivered records, and a lane behind the group keeps its position in the progress
topic, so the next run goes on from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LaneBehind:
    """One destination in one partition, not delivered up to the group's position."""

    destination_id: str
    kind: str
    partition: int
    stream: str  # "live", or "replay"
    lag_offsets: int  # the partition's offsets between the lane's position and the group's
    consecutive_failures: int
    last_error: str | None  # the last failure's message, while the lane fails
    last_error_at: datetime | None = None


def describe(behind: Sequence[LaneBehind]) -> list[str]:
    """One line per destination and stream: its partitions, how far behind, the most
    recent error of its failing partitions."""
    grouped: dict[tuple[str, str, str], list[LaneBehind]] = {}
    for lane in behind:
        grouped.setdefault((lane.destination_id, lane.kind, lane.stream), []).append(lane)
    lines = []
    for (destination_id, kind, stream), lanes in sorted(grouped.items()):
        lanes.sort(key=lambda lane: lane.partition)
        partitions = ", ".join(str(lane.partition) for lane in lanes)
        what = "replay" if stream == "replay" else "destination"
        line = (
            f"behind: {what} {destination_id} ({kind}), {_plural(len(lanes), 'partition')} "
            f"{partitions}: "
            f"{sum(lane.lag_offsets for lane in lanes)} offsets behind the group"
        )
        failures = max(lane.consecutive_failures for lane in lanes)
        failing = [lane for lane in lanes if lane.last_error]
        if failures:
            line += f", {failures} failed {_plural(failures, 'attempt')} in a row"
        if failing:
            latest = max(failing, key=lambda lane: lane.last_error_at or _NEVER)
            line += f"; last error: {latest.last_error}"
        else:
            line += "; catching up, no error"
        lines.append(line)
    return lines


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"
