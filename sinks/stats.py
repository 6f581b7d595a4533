"""What a sink worker's run did, counted as it goes (read by ``auditlog sink``, the tests
and the benchmarks while the worker runs): records consumed, batches and records delivered,
failed attempts, lanes parked, records naming two tenants, what the memory budget did; at
the end, the lanes left
behind (:mod:`sinks.behind`) and whether it stopped for ``exit_when_idle_s``."""

from __future__ import annotations

from dataclasses import dataclass, field

from sinks.behind import LaneBehind


@dataclass
class SinkStats:
    """What a run did; ``behind``: the lanes not delivered when it stopped (see
    :mod:`sinks.behind`); ``idle_exit``: it stopped for ``exit_when_idle_s``."""

    records: int = 0
    delivered_records: int = 0
    batches: int = 0
    failed_attempts: int = 0
    parked: int = 0
    tenant_mismatches: int = 0  # records naming two tenants, never delivered
    closed_early: int = 0  # open batches closed for the memory budget (sinks.memory_budget)
    group_holds: int = 0  # times the group was paused for the memory budget
    idle_exit: bool = False
    behind: list[LaneBehind] = field(default_factory=list)
