"""Prometheus helpers every long-running process uses (the ClickHouse writer, the sink
workers, the integrity appender).

- :class:`BulkHistogram`: a histogram that takes a whole batch of observations at once.
- :func:`observe_ages`: the age of every record of a batch (now minus its Kafka
  timestamp) into a :class:`BulkHistogram`, without one ``observe`` per record: all records
  of a batch share ``now``, so the bucket counts follow from the sorted timestamps by one
  bisection per bucket bound. Measured here (Python 3.11, prometheus-client 0.26, 50k
  timestamps): ``Histogram.observe`` costs about 0.6 us per call, so 12 % of a core at 200k
  records/s; :func:`observe_ages` costs about 0.02 us per record (1 ms a batch) on a
  partition's nearly ordered timestamps, 0.16 us if shuffled.
- :data:`INSERT_BUCKETS_S`: the buckets of an insert's duration into ClickHouse.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from typing import Final, cast

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# How prometheus_client spells a bucket bound (``le``); the library leaves it untyped.
_format_bound = cast(Callable[[float], str], floatToGoString)

INSERT_BUCKETS_S: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class BulkHistogram(Collector):
    """A label-less Prometheus histogram that accepts a whole batch of observations at once.

    Exposed exactly like a ``prometheus_client.Histogram`` (``_bucket``, ``_count``,
    ``_sum``). Thread-safe: updates and scrapes take one lock.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        bounds = [float(bound) for bound in buckets]
        if bounds != sorted(set(bounds)) or not bounds or math.isinf(bounds[-1]):
            raise ValueError("buckets must be finite, distinct and increasing")
        self.name = name
        self.documentation = documentation
        self.upper_bounds: tuple[float, ...] = tuple(bounds)
        self._lock = threading.Lock()
        self._cumulative = [0] * (len(bounds) + 1)  # the last one is +Inf, i.e. the count
        self._sum = 0.0
        if registry is not None:
            registry.register(self)

    def observe(self, value: float) -> None:
        """Count one observation."""
        index = bisect_left(self.upper_bounds, value)
        with self._lock:
            for i in range(index, len(self._cumulative)):
                self._cumulative[i] += 1
            self._sum += value

    def add(self, cumulative_counts: Sequence[int], total: float) -> None:
        """Count a batch of observations given as its own histogram.

        ``cumulative_counts[i]`` is how many of the batch's values are ``<=
        upper_bounds[i]``; one more entry at the end is the number of values (+Inf).
        ``total`` is their sum.
        """
        if len(cumulative_counts) != len(self._cumulative):
            raise ValueError("one cumulative count per bucket, plus the total count")
        with self._lock:
            for i, count in enumerate(cumulative_counts):
                self._cumulative[i] += count
            self._sum += total

    def count(self) -> int:
        with self._lock:
            return self._cumulative[-1]

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative = list(self._cumulative)
            total = self._sum
        labels = [_format_bound(bound) for bound in self.upper_bounds] + ["+Inf"]
        yield HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=list(zip(labels, cumulative, strict=True)),
            sum_value=total,
        )


def observe_ages(histogram: BulkHistogram, now_s: float, timestamps_ms: Sequence[int]) -> None:
    """Count ``now_s - timestamp`` for every Kafka timestamp (ms) of a batch in
    ``histogram``; timestamps ``<= 0`` (unavailable) are skipped, ages below 0 (clock skew)
    count as 0. One sort and one bisection per bucket bound (see the module docstring)."""
    ordered = sorted(timestamps_ms)
    start = bisect_right(ordered, 0)
    counted = len(ordered) - start
    if counted == 0:
        return
    now_ms = now_s * 1000.0
    cumulative = [
        counted - (bisect_left(ordered, now_ms - bound * 1000.0, lo=start) - start)
        for bound in histogram.upper_bounds
    ]
    cumulative.append(counted)
    # Records stamped at or before now; later ones (clock skew) count as 0 s.
    past_end = bisect_right(ordered, now_ms, lo=start)
    past = past_end - start
    # Integer arithmetic for the large parts: n * now_ms is beyond a float's 53 bits.
    whole_s = math.floor(now_s)
    fraction_ms = (now_s - whole_s) * 1000.0
    total_ms = past * whole_s * 1000 - sum(ordered[start:past_end]) + past * fraction_ms
    histogram.add(cumulative, total_ms / 1000.0)
