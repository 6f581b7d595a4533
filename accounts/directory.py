"""The long-running side of the account facts: every account in memory, kept current by a
thread that follows the accounts topic.

Used by the viewer's request threads (may this account's log be read?) and, later, by the
sink workers (which accounts does a partner manage?). :meth:`AccountDirectory.start` loads
the whole table, then a daemon thread follows
:meth:`~runtime.compacted_table.CompactedTable.changes`, so a change written by
``auditlog accounts`` is visible within a poll interval, without a restart. Reads
(:meth:`~AccountDirectory.get`, :meth:`~AccountDirectory.accounts_managed_by`) never do
I/O: each refresh builds new lookup tables and swaps them in whole, so a reader on any
thread sees the directory before or after a change, never half of it.

Unreadable values are skipped with a warning (listed in ``invalid``) and the account is
left out, at start and while running alike (no facts: the audit log reads as not enabled).
A record grants access, and the unreadable value may be a revocation: failing closed keeps
every replica, restarted or not, from serving a grant that was taken back.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from accounts.model import AccountFacts
from accounts.record import ACCOUNT_RECORDS, AccountRecord, parse_table
from runtime.backoff import Backoff, UniformSource
from runtime.compacted_table import CompactedTable, TableError, TableSource
from runtime.kafka_connection import KafkaConnection
from runtime.keyed_records import RecordChange

log = logging.getLogger(__name__)

__all__ = ["AccountChange", "AccountDirectory", "DirectoryHealth", "TableError"]


class AccountChange(RecordChange[AccountRecord]):
    """One account's record before a change and after it (``None``: absent)."""

    @property
    def account_id(self) -> str:
        return self.present.account_id


@dataclass(frozen=True)
class DirectoryHealth:
    """What ``/health`` reports of the directory."""

    healthy: bool
    running: bool
    last_error: str | None
    seconds_since_read: float | None
    """Since the last successful read of the topic (None: never read)."""
    accounts: int
    invalid: int


_NO_ACCOUNTS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Snapshot:
    records: Mapping[str, AccountRecord] = field(default_factory=dict)
    facts: Mapping[str, AccountFacts] = field(default_factory=dict)
    by_partner: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _snapshot(records: dict[str, AccountRecord]) -> _Snapshot:
    by_partner: dict[str, set[str]] = {}
    for record in records.values():
        if record.partner_id is not None:
            by_partner.setdefault(record.partner_id, set()).add(record.account_id)
    return _Snapshot(
        records=records,
        facts={account_id: record.facts for account_id, record in records.items()},
        by_partner={partner: frozenset(ids) for partner, ids in by_partner.items()},
    )


class AccountDirectory:
    """Every account's facts in memory, followed on a daemon thread.

    Lifecycle: :meth:`start` (blocks up to ``load_timeout_s`` for the whole table; raises
    :class:`~runtime.compacted_table.TableError` when the topic is missing, saying to
    create it with ``auditlog topics ensure``, or cannot be read), then reads from any
    thread, then :meth:`stop` (joins the thread and closes the table). A read error on the
    thread does not stop it: it is recorded (:meth:`health`), the thread backs off and reads
    again, and readers keep the last facts loaded.

    ``source``: the Kafka connection (the directory reads ``topic`` with a
    :class:`~runtime.compacted_table.CompactedTable` of ``client_id``), or any
    :class:`~runtime.compacted_table.TableSource` (a fake in unit tests).

    Without :meth:`start`, a caller may drive it by hand: :meth:`load`, then
    :meth:`refresh` (one thread at a time).

    ``on_change`` is called on the directory's thread with the changes of each refresh
    that had any (an exception it raises is logged and does not stop the thread).
    """

    def __init__(
        self,
        source: TableSource | KafkaConnection,
        topic: str = "",
        *,
        client_id: str = "auditlog-account-directory",
        poll_interval_s: float = 0.5,
        load_timeout_s: float = 30.0,
        stale_after_s: float = 60.0,
        backoff: Backoff | None = None,
        on_change: Callable[[list[AccountChange]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: UniformSource | None = None,
    ) -> None:
        self._table: TableSource = (
            CompactedTable(source, topic, client_id=client_id)
            if isinstance(source, KafkaConnection)
            else source
        )
        self._topic = topic
        self._poll_interval_s = poll_interval_s
        self._load_timeout_s = load_timeout_s
        self._stale_after_s = stale_after_s
        self._backoff = backoff or Backoff(base_s=0.5, max_s=30.0)
        self._on_change = on_change
        self._clock = clock
        self._rng: UniformSource = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._snapshot = _Snapshot()
        self._invalid: Mapping[str, str] = MappingProxyType({})
        self._last_error: str | None = None
        self._last_read: float | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Load the whole table, then follow it on a daemon thread. Raises
        :class:`TableError` (nothing started) when the table cannot be loaded."""
        if self._thread is not None:
            raise RuntimeError("the account directory is started already")
        self.load(self._load_timeout_s)
        self._thread = threading.Thread(
            target=self._follow, name=f"account-directory-{self._topic}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop following (the thread ends within a poll interval), join it, close the
        table. Reads keep answering with the last facts. Idempotent."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("account directory thread did not stop within %.0f s", timeout_s)
                return  # the table is still in use on that thread: not closed under it
        if not self._closed:
            self._closed = True
            self._table.close()

    def __enter__(self) -> AccountDirectory:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- reading the topic (one thread) -----------------------------------------------------

    def load(self, timeout_s: float = 30.0) -> None:
        """Read the whole table (blocks up to ``timeout_s``; raises :class:`TableError`)."""
        found, invalid = parse_table(self._table.load(timeout_s), self._topic)
        self._invalid = MappingProxyType(invalid)
        self._snapshot = _snapshot(found)
        self._last_read = self._clock()
        self._last_error = None

    def refresh(self, timeout_s: float = 0.0) -> list[AccountChange]:
        """Apply what was written since the last load or refresh; waits at most
        ``timeout_s`` for the first record. Returns the changes in the order they were
        written (a record that rewrites an account unchanged is no change). Raises
        :class:`TableError` when the topic cannot be read."""
        records = self._table.changes(timeout_s)
        self._last_read = self._clock()
        if not records:
            return []
        applied = ACCOUNT_RECORDS.apply(
            self._snapshot.records, self._invalid, records, self._topic, log=log
        )
        self._invalid = MappingProxyType(applied.invalid)
        if applied.changes:
            self._snapshot = _snapshot(applied.records)  # swapped in whole
        return [AccountChange(change.before, change.after) for change in applied.changes]

    def _follow(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                changes = self.refresh(self._poll_interval_s)
            except Exception as exc:  # noqa: BLE001 - recorded, retried; readers keep the facts
                self._last_error = str(exc) or type(exc).__name__
                log.warning("account directory: reading %s failed: %s", self._topic, exc)
                self._stopping.wait(self._backoff.delay(attempt, self._rng))
                attempt += 1
                continue
            attempt = 0
            self._last_error = None
            if changes and self._on_change is not None:
                try:
                    self._on_change(changes)
                except Exception:
                    log.exception("account directory: on_change failed")

    # --- reads (any thread, no I/O) ---------------------------------------------------------

    def get(self, account_id: str) -> AccountFacts | None:
        """The account's facts, or None when none are stored (the audit log then reads as
        not enabled: ``AccountFacts(account_id).audit_log_enabled`` is False)."""
        return self._snapshot.facts.get(account_id)

    def record(self, account_id: str) -> AccountRecord | None:
        """The account's stored record (facts, revision, who changed it and when)."""
        return self._snapshot.records.get(account_id)

    def accounts_managed_by(self, partner_id: str) -> frozenset[str]:
        """The ids of the accounts ``partner_id`` manages (empty when none)."""
        return self._snapshot.by_partner.get(partner_id, _NO_ACCOUNTS)

    def all(self) -> tuple[AccountFacts, ...]:
        """Every account's facts, by id."""
        facts = self._snapshot.facts
        return tuple(facts[account_id] for account_id in sorted(facts))

    @property
    def invalid(self) -> Mapping[str, str]:
        """Keys whose latest value did not parse, with the reason (never the value)."""
        return self._invalid

    # --- health -----------------------------------------------------------------------------

    @property
    def last_error(self) -> str | None:
        """Why the last read of the topic failed, until a read succeeds again."""
        return self._last_error

    def healthy(self) -> bool:
        """Following the topic: started, not stopped, the last read succeeded, and a read
        succeeded within ``stale_after_s``."""
        return self.health().healthy

    def health(self) -> DirectoryHealth:
        running = (
            self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()
        )
        since = None if self._last_read is None else self._clock() - self._last_read
        last_error = self._last_error
        fresh = since is not None and since <= self._stale_after_s
        return DirectoryHealth(
            healthy=running and last_error is None and fresh,
            running=running,
            last_error=last_error,
            seconds_since_read=since,
            accounts=len(self._snapshot.records),
            invalid=len(self._invalid),
        )
