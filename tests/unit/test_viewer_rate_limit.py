"""The viewer's per-user token bucket, on a fake clock."""

from __future__ import annotations

import pytest

from viewer.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_rate_applies() -> None:
    clock = Clock()
    limiter = RateLimiter(per_s=2.0, burst=3, clock=clock)
    assert [limiter.take("u") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("u") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("u") == 0.0
    assert limiter.take("u") == pytest.approx(0.5)


def test_a_refused_request_takes_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(per_s=1.0, burst=1, clock=clock)
    assert limiter.take("u") == 0.0
    for _ in range(5):
        assert limiter.take("u") == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.take("u") == 0.0


def test_users_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(per_s=1.0, burst=1, clock=Clock())
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0.0


def test_an_idle_bucket_refills_only_up_to_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(per_s=10.0, burst=2, clock=clock)
    limiter.take("u")
    clock.now += 3600
    assert [limiter.take("u") for _ in range(2)] == [0.0, 0.0]
    assert limiter.take("u") > 0


def test_memory_is_bounded_least_recently_used_first() -> None:
    limiter = RateLimiter(per_s=1.0, burst=1, max_keys=2, clock=Clock())
    limiter.take("a")
    limiter.take("b")
    limiter.take("c")  # "a" is forgotten: it comes back with a full bucket
    assert limiter.take("a") == 0.0
    assert limiter.take("c") > 0


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(per_s=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(per_s=1, burst=0)
