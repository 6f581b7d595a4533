"""How far each consumer group is behind the events topic, per partition and in total,
judged against :class:`~auditlog.doctor.model.LagThresholds`. Pure: the offsets are read
by :func:`auditlog.doctor.probes_kafka.read_group`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auditlog.doctor.model import CheckResult, LagThresholds, Problem, Status, result, skipped


@dataclass(frozen=True)
class PartitionOffsets:
    """``committed`` None: the group never committed in this partition."""

    partition: int
    committed: int | None
    start: int
    end: int

    @property
    def lag(self) -> int:
        """Records not yet consumed: from the committed offset (or, with none, from the
        oldest record kept) to the end."""
        position = self.start if self.committed is None else max(self.committed, self.start)
        return max(self.end - position, 0)


@dataclass(frozen=True)
class GroupOffsets:
    group: str
    topic: str
    partitions: tuple[PartitionOffsets, ...]
    members: int | None  # None: the broker did not say

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def never_committed(self) -> bool:
        return all(p.committed is None for p in self.partitions)


@dataclass(frozen=True)
class ConsumerGroup:
    """A group the doctor checks: which process runs it, and whether it is expected to
    run (the sinks only with destinations, the appender only with signing keys)."""

    check: str
    group: str
    command: str
    in_use: bool = True


def check_lag(
    consumer: ConsumerGroup, offsets: GroupOffsets | None, thresholds: LagThresholds
) -> CheckResult:
    if offsets is None:
        return skipped(consumer.check, "Kafka did not answer")
    name, group = consumer.check, consumer.group
    total = offsets.total_lag
    members = "unknown" if offsets.members is None else str(offsets.members)
    worst = max(offsets.partitions, key=lambda p: p.lag, default=None)
    details: dict[str, Any] = {
        "group": group,
        "topic": offsets.topic,
        "members": offsets.members,
        "total_lag": total,
        "partitions": [
            {"partition": p.partition, "committed": p.committed, "end": p.end, "lag": p.lag}
            for p in offsets.partitions
        ],
    }
    if offsets.never_committed and not offsets.members and not consumer.in_use:
        return result(name, f"group {group}: not in use (no offsets, no members)", **details)
    summary = (
        f"group {group}: lag {total} records in {len(offsets.partitions)} partitions"
        + (f" (most: partition {worst.partition}, {worst.lag})" if worst and worst.lag else "")
        + f", {members} members"
    )
    status = thresholds.status(total)
    problems = []
    if status is not Status.OK:
        limit = thresholds.fail_records if status is Status.FAIL else thresholds.warn_records
        if offsets.members == 0:
            fix = f"no process of the group is running: start `{consumer.command}`"
        else:
            fix = (
                f"the group is not keeping up: run more `{consumer.command}` processes (at "
                f"most one per partition, {len(offsets.partitions)}; docs/capacity.md), and "
                "check its logs and metrics for errors"
            )
        problems.append(
            Problem(status, f"group {group} is {total} records behind (limit {limit})", fix)
        )
    return result(name, summary, problems, **details)
