"""What to generate: how many events, for how many tenants, from which seed and start time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DEFAULT_START = datetime(2026, 11, 1, tzinfo=UTC)
"""The default first timestamp: fixed, so that output is reproducible without options."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GeneratorConfig:
    """Settings of one generator run; the run is a pure function of them (and the catalog).

    ``events``: exactly how many events :func:`~producers.generator.generate` yields (>= 0).
    ``tenants``: how many accounts may appear (>= 1); their sizes follow a Zipf law of
    exponent ``tenant_skew``, so a few big accounts produce most events and a long tail of
    small ones produces few. A tenant that is never picked does not appear.
    ``seed``: the same seed, config and catalog give byte-identical events.
    ``start``: simulated time of the first event; must be timezone-aware (converted to UTC).
    ``mean_gap_ms``: the average simulated time between two consecutive events across all
    tenants, over a week. Approximate: sessions are started at the rate that yields it, and
    a session's events spread over minutes, so a run shorter than about an hour of simulated
    time spans longer than ``events * mean_gap_ms`` while sessions build up.
    ``diurnal``: when true, sessions start more often on weekday working hours (UTC) than at
    night and at weekends (the weekly mean stays ``mean_gap_ms``); when false, at a steady
    rate, so that a long run spans about ``events * mean_gap_ms`` from any start.

    Raises ``ValueError`` when a value is out of range or ``start`` is naive.
    """

    events: int
    tenants: int
    seed: int = 0
    start: datetime = DEFAULT_START
    mean_gap_ms: float = 500.0
    tenant_skew: float = 1.1
    diurnal: bool = True

    def __post_init__(self) -> None:
        if self.events < 0:
            raise ValueError(f"events must be >= 0, got {self.events}")
        if self.tenants < 1:
            raise ValueError(f"tenants must be >= 1, got {self.tenants}")
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError(f"start must be timezone-aware (UTC), got {self.start!r}")
        if not self.mean_gap_ms > 0:
            raise ValueError(f"mean_gap_ms must be > 0, got {self.mean_gap_ms}")
        if not 0 <= self.tenant_skew <= 4:
            raise ValueError(f"tenant_skew must be within [0, 4], got {self.tenant_skew}")
        object.__setattr__(self, "start", self.start.astimezone(UTC))

    @property
    def start_ms(self) -> int:
        """``start`` in whole milliseconds since the Unix epoch."""
        return (self.start - _EPOCH) // timedelta(milliseconds=1)
