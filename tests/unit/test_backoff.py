"""The one backoff schedule of the writer and the sinks: capped, full jitter, finite for
any number of attempts."""

from __future__ import annotations

import math
import random

import pytest

from runtime.backoff import Backoff


def test_the_ceiling_doubles_from_base_up_to_max() -> None:
    backoff = Backoff(base_s=0.5, max_s=60.0)
    assert [backoff.ceiling(n) for n in range(9)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.ceiling(-3) == 0.5


def test_ten_thousand_attempts_stay_finite_and_capped() -> None:
    """Hours of outage: the writer's former ``base * 2**attempt`` raised OverflowError
    after about a thousand attempts."""
    backoff = Backoff(base_s=0.5, max_s=30.0)
    rng = random.Random(10)
    for attempt in range(10_000):
        ceiling = backoff.ceiling(attempt)
        delay = backoff.delay(attempt, rng)
        assert math.isfinite(ceiling)
        assert 0.0 <= delay <= ceiling <= 30.0
    assert backoff.ceiling(10**9) == 30.0


def test_full_jitter_stays_within_zero_and_the_ceiling() -> None:
    backoff = Backoff()
    rng = random.Random(7)
    for attempt in range(12):
        delays = [backoff.delay(attempt, rng) for _ in range(300)]
        assert all(0.0 <= d <= backoff.ceiling(attempt) for d in delays)
        # Full jitter spreads over the whole range, not just near the ceiling.
        assert min(delays) < 0.2 * backoff.ceiling(attempt)
        assert max(delays) > 0.8 * backoff.ceiling(attempt)


@pytest.mark.parametrize(("base_s", "max_s"), [(0, 1), (-1, 1), (10, 1)])
def test_backoff_refuses_nonsense(base_s: float, max_s: float) -> None:
    with pytest.raises(ValueError, match="0 < base_s <= max_s"):
        Backoff(base_s=base_s, max_s=max_s)
