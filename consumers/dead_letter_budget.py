"""The limit that stops a consumer fed only garbage.

:class:`DeadLetterBudget` keeps the share and the run of dead-lettered records over a
sliding window against a :class:`DeadLetterLimit`; :meth:`~DeadLetterBudget.check` raises
:class:`DeadLetterLimitExceeded`, so a consumer fed only garbage stops with a clear error
instead of draining its topic into the dead-letter queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field

# --- the limit ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetterLimit:
    """When dead-lettering stops being a few bad records and becomes a broken input.

    Exceeded when more than ``max_ratio`` of the last ``window_records`` records examined
    were dead-lettered (judged only once at least ``min_records`` were seen), or when more
    than ``max_run`` consecutive records were. ``max_ratio = 1.0`` disables the share.
    """

    max_ratio: float = 0.5
    max_run: int = 1000
    window_records: int = 10_000
    min_records: int = 100

    def __post_init__(self) -> None:
        if not 0.0 < self.max_ratio <= 1.0:
            raise ValueError(f"max_ratio must be in (0, 1], got {self.max_ratio}")
        if self.max_run < 1:
            raise ValueError(f"max_run must be at least 1, got {self.max_run}")
        if self.min_records < 1:
            raise ValueError(f"min_records must be at least 1, got {self.min_records}")
        if self.window_records < self.min_records:
            raise ValueError(
                f"window_records ({self.window_records}) must be at least min_records "
                f"({self.min_records})"
            )

    def describe(self) -> str:
        return f"{self.max_ratio * 100:g}% of {self.window_records} / a run of {self.max_run}"


class DeadLetterLimitExceeded(RuntimeError):
    """Too many records were dead-lettered: the consumer stops (see :class:`DeadLetterLimit`).

    ``poisoned`` of the last ``seen`` records were dead-lettered, the last ``run`` of them
    consecutively, at the moment the limit was crossed.
    """

    def __init__(
        self,
        message: str,
        *,
        poisoned: int,
        seen: int,
        run: int,
        limit: DeadLetterLimit,
    ) -> None:
        super().__init__(message)
        self.poisoned = poisoned
        self.seen = seen
        self.run = run
        self.limit = limit


@dataclass
class DeadLetterBudget:
    """Counts outcomes (kept or dead-lettered) of the records examined, in order, against
    ``limit``. Pure and O(1) amortised per call, whatever ``count``.

    The limit is judged as if after every single record, so it trips at the first record
    that crosses it even inside a bulk :meth:`record`; once tripped it stays tripped, and
    :meth:`check` raises. Record outcomes before dead-lettering a batch and call
    :meth:`check` before publishing it, so a broken input stops the consumer instead of
    filling the dead-letter topic.
    """

    limit: DeadLetterLimit
    source_topic: str
    dead_letter_topic: str
    # The window, run-length encoded, oldest first.
    _segments: deque[_Segment] = field(default_factory=deque, init=False, repr=False)
    _seen: int = field(default=0, init=False)
    _poisoned: int = field(default=0, init=False)
    _run: int = field(default=0, init=False)
    _exceeded: DeadLetterLimitExceeded | None = field(default=None, init=False, repr=False)

    @property
    def seen(self) -> int:
        """Records in the window (at most ``limit.window_records``)."""
        return self._seen

    @property
    def poisoned(self) -> int:
        """Dead-lettered records in the window."""
        return self._poisoned

    @property
    def run(self) -> int:
        """Consecutive dead-lettered records up to the latest one (not bounded by the window)."""
        return self._run

    def record(self, poisoned: bool, count: int = 1) -> None:
        """Add ``count`` consecutive records, all dead-lettered or all kept."""
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        if count == 0:
            return
        limit = self.limit
        if not poisoned and self._exceeded is None:
            # The share only falls while records are kept, except that it starts to count
            # when the window reaches min_records: judge it there.
            before = self._seen
            if before < limit.min_records <= before + count:
                self._judge_ratio(self._poisoned, limit.min_records, run=0)
        if self._segments and self._segments[-1].poisoned == poisoned:
            self._segments[-1].count += count
        else:
            self._segments.append(_Segment(poisoned, count))
        self._seen += count
        if poisoned:
            self._poisoned += count
            self._run += count
        else:
            self._run = 0
        self._evict()
        if self._exceeded is None:
            if self._run > limit.max_run:
                self._trip(
                    f"{self._run} consecutive records were dead-lettered",
                    self._poisoned,
                    self._seen,
                    self._run,
                )
            else:
                # While records are dead-lettered the share only rises: the end is its peak.
                self._judge_ratio(self._poisoned, self._seen, self._run)

    def observe_batch(self, size: int, poisoned_positions: Collection[int]) -> None:
        """Add a batch of ``size`` records in order, of which those at
        ``poisoned_positions`` (indexes in ``range(size)``) were dead-lettered."""
        at = 0
        for position in sorted(set(poisoned_positions)):
            if not 0 <= position < size:
                raise ValueError(f"position {position} is outside a batch of {size}")
            self.record(False, position - at)
            self.record(True, 1)
            at = position + 1
        self.record(False, size - at)

    def check(self) -> None:
        """Raise :class:`DeadLetterLimitExceeded` if the limit was crossed."""
        if self._exceeded is not None:
            raise self._exceeded

    def _evict(self) -> None:
        excess = self._seen - self.limit.window_records
        while excess > 0:
            oldest = self._segments[0]
            dropped = min(excess, oldest.count)
            oldest.count -= dropped
            excess -= dropped
            self._seen -= dropped
            if oldest.poisoned:
                self._poisoned -= dropped
            if oldest.count == 0:
                self._segments.popleft()

    def _judge_ratio(self, poisoned: int, seen: int, run: int) -> None:
        if seen >= self.limit.min_records and poisoned > self.limit.max_ratio * seen:
            self._trip(
                f"{poisoned} of the last {seen} records were dead-lettered", poisoned, seen, run
            )

    def _trip(self, what: str, poisoned: int, seen: int, run: int) -> None:
        message = (
            f"{what} (limit: {self.limit.describe()}): stopping instead of draining "
            f"{self.source_topic} into {self.dead_letter_topic}; inspect the dead-letter topic"
        )
        self._exceeded = DeadLetterLimitExceeded(
            message, poisoned=poisoned, seen=seen, run=run, limit=self.limit
        )


@dataclass(slots=True)
class _Segment:
    """Consecutive records of one outcome."""

    poisoned: bool
    count: int
