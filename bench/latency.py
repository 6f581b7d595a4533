"""Latency samples: percentiles, and running a call serially or from concurrent clients.

Pure timing helpers; the calls they time block and raise as their callers do (a raising
call ends the run: a benchmark that counts failures as latencies would lie).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

_C = TypeVar("_C")


def percentile(sorted_ms: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ascending ``sorted_ms``, nearest rank."""
    if not sorted_ms:
        raise ValueError("no samples")
    rank = max(1, min(len(sorted_ms), round(q * len(sorted_ms) + 0.5)))
    return sorted_ms[rank - 1]


def summary(samples_ms: Sequence[float]) -> dict[str, Any]:
    """p50/p95/p99, max and count of ``samples_ms``, rounded to 0.1 ms."""
    ordered = sorted(samples_ms)
    return {
        "p50_ms": round(percentile(ordered, 0.50), 1),
        "p95_ms": round(percentile(ordered, 0.95), 1),
        "p99_ms": round(percentile(ordered, 0.99), 1),
        "max_ms": round(ordered[-1], 1),
        "runs": len(ordered),
    }


def timed_ms(call: Callable[[], object]) -> float:
    """Milliseconds ``call()`` took (wall clock)."""
    began = time.perf_counter()
    call()
    return (time.perf_counter() - began) * 1000.0


def run_serial(calls: Sequence[Callable[[], object]], *, warmup: int = 3) -> list[float]:
    """Time each of ``calls`` once, in order, after ``warmup`` untimed ones (the first
    calls, repeated); returns milliseconds in call order."""
    for call in calls[:warmup]:
        call()
    return [timed_ms(call) for call in calls]


def run_concurrent(
    clients: Sequence[_C],
    calls_per_client: Sequence[Sequence[Callable[[_C], object]]],
) -> tuple[list[float], float]:
    """Each client on a thread of its own runs its list of calls back to back, all
    threads released together; returns every call's milliseconds and the wall seconds
    from release to the last thread's end. The first exception of any thread is raised
    after all have ended."""
    gate = threading.Barrier(len(clients) + 1)
    samples: list[list[float]] = [[] for _ in clients]
    failures: list[BaseException] = []

    def work(index: int) -> None:
        client = clients[index]
        gate.wait()
        try:
            for call in calls_per_client[index]:
                samples[index].append(timed_ms(lambda c=call: c(client)))  # type: ignore[misc]
        except BaseException as ex:  # noqa: BLE001 - re-raised on the caller's thread
            failures.append(ex)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall_s = time.perf_counter() - began
    if failures:
        raise failures[0]
    return [ms for per_client in samples for ms in per_client], wall_s
