"""What a doctor check says: a status, one line, and for each problem what is wrong and the
command that fixes it. Pure values; rendered by :mod:`auditlog.doctor.report`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Status(IntEnum):
    """Ordered by severity: the worst status of a run decides its exit code. ``skip``: not
    checked, because a service it needs did not answer (that check's FAIL says why)."""

    OK = 0
    SKIP = 1
    WARN = 2
    FAIL = 3

    @property
    def label(self) -> str:
        return {Status.OK: "ok", Status.SKIP: "skip", Status.WARN: "warn", Status.FAIL: "FAIL"}[
            self
        ]


@dataclass(frozen=True)
class Problem:
    """One thing wrong: ``what`` (a sentence) and ``fix`` (a command or an instruction)."""

    status: Status
    what: str
    fix: str


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``summary`` is its line, ``problems`` what is wrong (the
    status is the worst of theirs, ok when there are none), ``details`` the facts read, for
    ``--json``."""

    name: str
    summary: str
    problems: tuple[Problem, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False

    @property
    def status(self) -> Status:
        if self.skipped:
            return Status.SKIP
        return max((p.status for p in self.problems), default=Status.OK)


def result(
    name: str, summary: str, problems: Iterable[Problem] = (), **details: Any
) -> CheckResult:
    return CheckResult(name, summary, tuple(problems), dict(details))


def skipped(name: str, why: str) -> CheckResult:
    return CheckResult(name, f"not checked: {why}", skipped=True)


def count(n: int, noun: str) -> str:
    """``1 key``, ``2 keys``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def worst(results: Sequence[CheckResult]) -> Status:
    return max((r.status for r in results), default=Status.OK)


# Exit codes of `auditlog doctor` (README, "auditlog doctor"): 0 and 2 as every command's.
HEALTHY = 0
FAILED = 1
INVALID = 2
WARNINGS = 3


def exit_code(results: Sequence[CheckResult], *, strict: bool) -> int:
    """0 when nothing failed (warnings too, unless ``strict``), 1 when a check failed, 3
    when the worst is a warning and ``strict``."""
    status = worst(results)
    if status is Status.FAIL:
        return FAILED
    if status is Status.WARN and strict:
        return WARNINGS
    return HEALTHY


@dataclass(frozen=True)
class LagThresholds:
    """Records a consumer group may be behind: at ``warn_records`` in total a warning, at
    ``fail_records`` a failure."""

    warn_records: int = 10_000
    fail_records: int = 1_000_000

    def __post_init__(self) -> None:
        if self.warn_records < 1 or self.fail_records < self.warn_records:
            raise ValueError(
                f"lag thresholds: need 1 <= warn ({self.warn_records}) <= fail "
                f"({self.fail_records})"
            )

    def status(self, lag_records: int) -> Status:
        if lag_records >= self.fail_records:
            return Status.FAIL
        if lag_records >= self.warn_records:
            return Status.WARN
        return Status.OK
