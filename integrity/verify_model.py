"""What :func:`integrity.verification.check_log` reads and answers: one account's log as
the store holds it (:class:`StoredLog`, its leaves and events), the window of events to
check, the retention that tells expired events from deleted ones, and the findings and
report. Data only, no I/O; :mod:`integrity.stored_log` fills a :class:`StoredLog` from
ClickHouse.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from integrity.checkpoint import Checkpoint
from integrity.prune_statement import PruneStatement

# How long before a checkpoint an event must have been stored for its absence from the log
# to count: the appender and the writer read the topic at their own pace.
DEFAULT_GRACE = timedelta(minutes=5)
# The producer refuses events more than this far in the future (ValidationPolicy).
FUTURE_SKEW = timedelta(minutes=5)

Kind = Literal[
    "bad-record",  # a streamed copy's line that is no event nor integrity record
    "bad-checkpoint",
    "bad-prune-statement",
    "gap",
    "moved",
    "rewritten",
    "changed",
    "missing",
    "inserted",
]


@dataclass(frozen=True)
class Retention:
    """The account's retention, to tell events the TTL removed from deleted ones."""

    days: int
    now: datetime
    future_skew: timedelta = FUTURE_SKEW

    def removed_all_before(self, signed_at: datetime) -> bool:
        """Whether every event a log held at ``signed_at`` is past its TTL by now."""
        return signed_at < self.signed_before()

    def signed_before(self) -> datetime:
        """The events of a log held at a time before this one are all past their TTL by
        now: such an event occurred by ``time + future_skew``, and the table drops it at the
        start of the next month plus ``days``, which is by now exactly when that month
        begins no later than the start of the month holding ``now - days``."""
        latest_month = (self.now.astimezone(UTC) - timedelta(days=self.days)).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        return latest_month - self.future_skew


@dataclass(frozen=True, slots=True)
class StoredLeaf:
    index: int
    event_id: str
    leaf_hash: bytes
    partition: int
    offset: int


@dataclass(frozen=True)
class StoredEvent:
    event: Mapping[str, Any]  # the 13 contract fields, as integrity.leaf reads them
    ingested_at: datetime


@dataclass(frozen=True)
class Finding:
    kind: Kind
    message: str
    leaf_index: int | None = None
    event_id: str | None = None

    def line(self) -> str:
        where = [] if self.leaf_index is None else [f"leaf {self.leaf_index}"]
        where += [] if self.event_id is None else [f"event {self.event_id}"]
        return f"{self.kind}: {', '.join(where) + ': ' if where else ''}{self.message}"


@dataclass
class Report:
    account: str
    leaves: int = 0
    events: int = 0
    expired: int = 0  # leaves whose events the retention removed
    checkpoints: int = 0
    newest: Checkpoint | None = None
    findings: list[Finding] = field(default_factory=list)
    pruned_below: int = 0  # leaves below this: a valid prune statement says they expired
    retention_days: int | None = None  # used for the leaves above
    # The valid prune statement the retention days come from; None: the store's value.
    retention_statement: PruneStatement | None = None
    window: Window | None = None  # events outside it were not read: no finding about them

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class Window:
    """Events whose ``occurred_at`` is from ``start`` (inclusive) to ``end`` (exclusive);
    None: unbounded on that side."""

    start: datetime | None = None
    end: datetime | None = None

    def __str__(self) -> str:
        start = "..." if self.start is None else self.start.isoformat(timespec="seconds")
        end = "..." if self.end is None else self.end.isoformat(timespec="seconds")
        return f"{start} to {end}"


@dataclass(frozen=True)
class StoredLog:
    """What the store holds of one account: leaves in index order (from ``first_index``,
    the size of the pruned prefix), events by id (a mapping, or pairs read as they are
    iterated, once), checkpoint notes. With a ``window`` the events are only those whose
    ``occurred_at`` it holds, and ``stored`` says which of some event ids are stored at all
    (outside it)."""

    account: str
    leaves: Sequence[StoredLeaf]
    events: Mapping[str, StoredEvent] | Iterable[tuple[str, StoredEvent]]
    notes: Sequence[str]
    first_index: int = 0
    prefix_root: bytes | None = None  # the root of the pruned prefix, when there is one
    retention_days: int | None = None  # the account's, as the store holds it
    prune_notes: Sequence[str] = ()  # its signed prune statements
    window: Window | None = None
    stored: Callable[[Sequence[str]], Collection[str]] | None = None


def stored_events(log: StoredLog) -> Iterable[tuple[str, StoredEvent]]:
    """The log's events as (id, event) pairs, whichever form it holds them in (a stream is
    read as it is iterated, once)."""
    return log.events.items() if isinstance(log.events, Mapping) else log.events
