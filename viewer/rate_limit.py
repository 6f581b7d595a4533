"""Requests per user: a token bucket per key, in this process's memory.

Each key (the viewer uses account and user id) holds up to ``burst`` tokens, refilled at
``per_s`` tokens a second; a request takes one. :meth:`RateLimiter.take` answers how long
the caller must wait before the next request would be allowed (0.0: allowed now), which the
API returns as ``429`` with ``Retry-After``.

The limit is per process: behind a load balancer with N viewer replicas a user gets up to N
times the rate. That bounds what one user can make one replica do (a scripted client, a
runaway poller), which is the point; a global quota belongs to the gateway in front.

Memory is bounded: at most ``max_keys`` buckets are kept, least recently used first out
(a key that comes back starts with a full bucket, which only errs towards allowing).
Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self,
        *,
        per_s: float,
        burst: int,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_s <= 0 or burst < 1:
            raise ValueError("a rate limit needs per_s > 0 and burst >= 1")
        self._per_s = per_s
        self._burst = float(burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one request for ``key``: 0.0 when allowed, else the seconds to wait until
        one more would be (nothing is taken then)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = _Bucket(self._burst, now)
            else:
                bucket.tokens = min(
                    self._burst, bucket.tokens + (now - bucket.updated) * self._per_s
                )
                bucket.updated = now
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self._per_s
