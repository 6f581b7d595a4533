"""The failure policy (:mod:`sinks.failure_policy`): a failed delivery and its lane's
history -> the retry delay, parking, an automatic pause. Pure: a fixed random source."""

from __future__ import annotations

import pytest

from runtime.backoff import Backoff
from sinks.failure_policy import Decision, Failure, FailurePolicy
from sinks.lane import LaneMode
from sinks.retry import MAX_RETRY_AFTER_S
from sinks.senders.base import DeliveryError, PermanentDeliveryError, RetryableDeliveryError

POLICY = FailurePolicy(Backoff(0.5, 60.0), park_after_s=60.0, auto_pause_after_s=3600.0)


class Highest:
    """The jitter's highest draw: the backoff's ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _decide(
    error: DeliveryError,
    *,
    attempt: int = 0,
    since: float | None = None,
    mode: LaneMode = "live",
    now: float = 1000.0,
    pause_requested: bool = False,
) -> Decision:
    return POLICY.decide(Failure(error, attempt, since, mode, now, pause_requested), Highest())


RETRYABLE = RetryableDeliveryError("HTTP 503")
PERMANENT = PermanentDeliveryError("HTTP 404")


@pytest.mark.parametrize(
    ("attempt", "expected_s"),
    [(0, 0.5), (1, 1.0), (3, 4.0), (7, 60.0), (10_000, 60.0)],
)
def test_a_retryable_failure_waits_the_jittered_backoff(attempt: int, expected_s: float) -> None:
    decision = _decide(RETRYABLE, attempt=attempt, since=999.0)
    assert (decision.permanent, decision.retry_in_s) == (False, expected_s)
    assert (decision.park, decision.pause) == (False, False)


@pytest.mark.parametrize(
    ("asked_s", "expected_s"),
    [(30.0, 30.0), (0.1, 0.5), (10 * MAX_RETRY_AFTER_S, MAX_RETRY_AFTER_S)],
)
def test_retry_after_is_honoured_up_to_its_cap(asked_s: float, expected_s: float) -> None:
    decision = _decide(RetryableDeliveryError("HTTP 429", retry_after_s=asked_s))
    assert decision.retry_in_s == expected_s


def test_an_error_of_the_base_class_waits_the_backoff_alone() -> None:
    assert _decide(DeliveryError("unmapped"), attempt=2).retry_in_s == 2.0


@pytest.mark.parametrize(("mode", "park"), [("live", True), ("catchup", False), ("paused", False)])
def test_a_permanent_error_waits_the_longest_and_parks_a_live_lane_at_once(
    mode: LaneMode, park: bool
) -> None:
    decision = _decide(PERMANENT, mode=mode)
    assert (decision.permanent, decision.retry_in_s, decision.park) == (True, 60.0, park)
    assert decision.park_reason(PERMANENT) == "permanent error: HTTP 404"


@pytest.mark.parametrize(
    ("since", "now", "mode", "park"),
    [
        (None, 1000.0, "live", False),  # the first failure: failing for 0 s
        (940.1, 1000.0, "live", False),  # 59.9 s
        (940.0, 1000.0, "live", True),  # 60 s: park_after_s
        (0.0, 1000.0, "catchup", False),  # parked already: reads on its own
    ],
)
def test_a_live_lane_is_parked_after_park_after_s_of_failures(
    since: float | None, now: float, mode: LaneMode, park: bool
) -> None:
    decision = _decide(RETRYABLE, since=since, now=now, mode=mode)
    assert decision.park is park
    assert decision.failing_for_s == now - (now if since is None else since)
    if park:
        assert decision.park_reason(RETRYABLE) == "failing: HTTP 503"


@pytest.mark.parametrize(
    ("failing_for_s", "mode", "pause_requested", "pause"),
    [
        (3599.0, "catchup", False, False),
        (3600.0, "catchup", False, True),
        (3600.0, "live", False, True),
        (3600.0, "catchup", True, False),  # asked once already: not again
    ],
)
def test_a_destination_failing_for_auto_pause_after_s_is_paused_once(
    failing_for_s: float, mode: LaneMode, pause_requested: bool, pause: bool
) -> None:
    decision = _decide(
        RETRYABLE,
        since=10_000.0 - failing_for_s,
        now=10_000.0,
        mode=mode,
        pause_requested=pause_requested,
    )
    assert decision.pause is pause
