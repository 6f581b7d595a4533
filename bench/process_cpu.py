"""CPU time and resident size of a process, for benchmarks that report cost per event.

``own_cpu_s`` is this process's user + system time (``getrusage``: every thread, the
Kafka client's included); ``process_cpu_s`` reads another process's from ``/proc`` (the
ClickHouse gateway, which runs the engine in a process of its own), so a benchmark can
report the client's CPU per event and the engine's side by side, in the same run.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def own_cpu_s() -> float:
    """User + system seconds of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float:
    """User + system seconds of process ``pid`` so far (all its threads), from
    ``/proc/<pid>/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of ``pid`` (default: this process) now, from ``/proc``."""
    statm = Path(f"/proc/{pid or 'self'}/statm").read_text().split()
    return int(statm[1]) * _PAGE


def peak_rss_bytes() -> int:
    """This process's peak resident size so far (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class CpuMeter:
    """CPU seconds spent between :meth:`start` and :meth:`stop`, by this process and
    (when ``engine_pid`` is known) by the engine's process."""

    engine_pid: int | None = None
    own_s: float = 0.0
    engine_s: float | None = None

    def start(self) -> CpuMeter:
        self._own0 = own_cpu_s()
        self._engine0 = process_cpu_s(self.engine_pid) if self.engine_pid else None
        return self

    def stop(self) -> CpuMeter:
        self.own_s = own_cpu_s() - self._own0
        if self.engine_pid and self._engine0 is not None:
            self.engine_s = process_cpu_s(self.engine_pid) - self._engine0
        return self

    def per_event_us(self, events: int) -> dict[str, float | None]:
        return {
            "own_cpu_us_per_event": round(self.own_s * 1e6 / events, 2),
            "engine_cpu_us_per_event": (
                round(self.engine_s * 1e6 / events, 2) if self.engine_s is not None else None
            ),
        }
