"""Every destination's health from the store and the sinks' progress topic: failing,
parked (not in sync: the group went on without it), paused by hand or automatically,
waiting for its ownership proof. Pure: read by
:func:`auditlog.doctor.probes_kafka.read_destinations`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from auditlog.doctor.model import CheckResult, Problem, Status, count, result, skipped
from runtime.redaction import redact_text
from sinks.destinations.model import Destination
from sinks.progress import DestinationHealth, LaneProgress

NAME = "destinations"
AUTO_PAUSED = "paused automatically"


def check_destinations(
    destinations: Sequence[Destination] | None,
    progress: Sequence[LaneProgress],
    *,
    unread: str | None = None,
) -> CheckResult:
    """``destinations`` None: the store was not read (``unread`` says why)."""
    if destinations is None:
        if unread is None:
            return skipped(NAME, "Kafka did not answer")
        return result(
            NAME,
            "the destination store or the sinks' progress could not be read",
            [Problem(Status.FAIL, unread, "create the topics with `auditlog topics ensure`")],
        )
    states: Counter[str] = Counter()
    problems: list[Problem] = []
    details = []
    for destination in destinations:
        health = DestinationHealth(
            destination.id,
            sorted(
                (p for p in progress if p.destination_id == destination.id),
                key=lambda p: p.partition,
            ),
        )
        state, problem = judge(destination, health)
        states[state] += 1
        if problem is not None:
            problems.append(problem)
        details.append(
            {
                "id": destination.id,
                "tenant": destination.tenant_id,
                "kind": destination.kind,
                "state": state,
                "delivered_records": health.delivered_records,
                "consecutive_failures": health.consecutive_failures,
                "lag_records": health.lag_records,
                "last_error": _last_error(health),
            }
        )
    counted = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    return result(
        NAME,
        count(len(destinations), "destination") + (f": {counted}" if counted else ""),
        problems,
        destinations=details,
    )


def judge(destination: Destination, health: DestinationHealth) -> tuple[str, Problem | None]:
    """The destination's state in a word, and its problem (None: healthy)."""
    who = f"{destination.id} ({destination.kind} of {destination.tenant_id})"
    show = f"`auditlog destinations show {destination.id}`"
    if destination.state == "pending_verification":
        return "pending verification", Problem(
            Status.WARN,
            f"{who}: waits for its S3 ownership proof and receives nothing",
            f"`auditlog destinations verify {destination.id} TOKEN` with the token of the "
            "challenge object in the bucket",
        )
    if destination.state == "paused":
        reason = redact_text(destination.state_reason) or "no reason given"
        if destination.state_reason.startswith(AUTO_PAUSED):
            return "auto-paused", Problem(
                Status.FAIL,
                f"{who}: {reason}",
                f"make the endpoint answer (`auditlog destinations test {destination.id}`), "
                f"then `auditlog destinations resume {destination.id}`",
            )
        return "paused", Problem(
            Status.WARN,
            f"{who}: paused ({reason}); its events wait in the topic within its retention",
            f"`auditlog destinations resume {destination.id}` when it should receive again",
        )
    parked = sorted(p.partition for p in health.partitions if not p.in_sync)
    failing = health.consecutive_failures
    error = _last_error(health) or "none recorded"
    if parked:
        return "parked", Problem(
            Status.FAIL,
            f"{who}: parked, behind the group on partitions {', '.join(map(str, parked))} "
            f"({health.lag_records} records), {failing} failures in a row, last error: {error}",
            f"make the endpoint answer (`auditlog destinations test {destination.id}`); the "
            f"workers catch it up by themselves; {show}",
        )
    if failing:
        return "failing", Problem(
            Status.WARN,
            f"{who}: {failing} failed deliveries in a row (retrying), last error: {error}",
            f"`auditlog destinations test {destination.id}` shows what the endpoint answers; "
            f"{show}",
        )
    return "ok", None


def _last_error(health: DestinationHealth) -> str | None:
    last = health.last_error
    return None if last is None else redact_text(last[1])[:300]
