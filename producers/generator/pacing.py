"""Releasing items at a steady rate, for replaying generated events live (``--rate``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

MAX_BACKLOG_S = 1.0
"""How far behind schedule the pacer may fall before it forgets the missed slots."""


def paced(
    items: Iterable[T],
    rate_per_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> Iterator[T]:
    """Yield ``items`` at ``rate_per_s`` per second: item ``i`` not before ``start + i/rate``.

    Blocks (through ``sleep``) until each item's slot; ``clock`` and ``sleep`` are injectable
    for tests. When the consumer falls more than ``MAX_BACKLOG_S`` behind, the schedule is
    restarted from now instead of bursting to catch up. Raises ``ValueError`` (immediately)
    when ``rate_per_s`` is not positive.
    """
    if not rate_per_s > 0:
        raise ValueError(f"rate_per_s must be > 0, got {rate_per_s}")
    return _paced(iter(items), 1.0 / rate_per_s, clock, sleep)


def _paced(
    items: Iterator[T],
    interval_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], object],
) -> Iterator[T]:
    start = clock()
    slot = 0
    for item in items:
        due = start + slot * interval_s
        now = clock()
        if due > now:
            sleep(due - now)
        elif now - due > MAX_BACKLOG_S:
            start, slot = now, 0
        slot += 1
        yield item
