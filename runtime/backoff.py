"""Capped exponential backoff with full jitter: the one retry schedule of the writer and the
sink workers.

Failed attempt ``n`` (0 for the first failure) waits a uniform random time in
``[0, min(max_s, base_s * 2**n)]`` (AWS's "full jitter"). The exponent is bounded, so the
schedule stays finite however long an outage lasts: a writer retrying ClickHouse for a week
computes its ten-millionth delay as easily as its first. Pure: the caller owns the clock,
the sleeping and the randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Beyond this exponent base_s * 2**n exceeds max_s for any sane configuration; the bound
# keeps the product a finite float (2.0**1024 raises OverflowError).
_MAX_EXPONENT = 64


class UniformSource(Protocol):
    """Where jitter comes from: :class:`random.Random` (seeded in tests) fits."""

    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter; raises ``ValueError`` unless
    ``0 < base_s <= max_s``."""

    base_s: float = 0.5
    max_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.max_s:
            raise ValueError(f"backoff needs 0 < base_s <= max_s, got {self.base_s}, {self.max_s}")

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failed attempt ``attempt`` (0 for the first failure)."""
        exponent = min(max(attempt, 0), _MAX_EXPONENT)
        return min(self.max_s, self.base_s * 2.0**exponent)

    def delay(self, attempt: int, rng: UniformSource) -> float:
        """A wait in ``[0, ceiling(attempt)]``, uniformly at random."""
        return rng.uniform(0.0, self.ceiling(attempt))
