"""Which partner managed which account, and when: what partner destinations route by.

A record goes to a partner's destinations only if its account was managed by that partner
at the record's publish time (its Kafka timestamp, ``t``). :class:`Membership` answers
:meth:`~Membership.partner_at` from each account's ``partner_history``
(:class:`accounts.record.PartnerSpan`: who managed it since when) and says up to which
publish time it can answer for sure (:attr:`~Membership.decided_until_ms`):

    decided_until_ms = read_at_ms - grace_ms - 1

``read_at_ms`` is the worker's wall-clock time right *before* its last read of the whole
accounts topic up to the end offsets of that moment (:class:`MembershipFollower`), so
every change acknowledged before ``read_at_ms`` is known. A change still unknown was
acknowledged after it; its span starts at its ``since`` (stamped by ``auditlog accounts``
just before the write), which is at most ``grace_ms`` before the acknowledgement as long
as the write takes less than ``grace_ms`` and the clocks of that command, of the workers
and of the events' producers (or brokers, with ``LogAppendTime``) agree within what is
left of it. So no unknown change starts at or before ``decided_until_ms`` (a change
acknowledged after ``read_at_ms`` starts after ``read_at_ms - grace_ms``): a record with
``t <= decided_until_ms`` is decided with what is known, one with a later ``t`` waits
(the router holds its partition: :mod:`sinks.routing`). A change that arrives whose span
starts before what was already decided breaks that assumption: it is logged as an error
and counted (``late_changes``) so an operator sees that records around it may have been
routed by the previous membership. docs/partners.md states the rule and its limits.

Before an account's first known span (no record, or a history that starts later), nobody
manages it: fail closed. Per-record cost: one dict look-up and a comparison; the history is
searched only for records older than the account's latest change.

Threads: the follower's thread installs new tables (swapped in whole) and then moves the
watermark; the worker loop's thread reads. A reader that sees a watermark sees tables at
least as new as the read that set it.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from accounts.record import AccountRecord, decode_record
from runtime.compacted_table import CompactedTable, TableError

_LOG = logging.getLogger("auditlog.sink")


@dataclass(frozen=True, slots=True)
class _Known:
    """One account: its latest partner since ``latest_since_ms``, and every span as
    (since_ms, partner) oldest first (for older records)."""

    latest: str | None
    latest_since_ms: int
    since_ms: tuple[int, ...]
    partners: tuple[str | None, ...]

    def partner_at(self, t_ms: int) -> str | None:
        if t_ms >= self.latest_since_ms:
            return self.latest
        at = bisect.bisect_right(self.since_ms, t_ms) - 1
        return self.partners[at] if at >= 0 else None


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _known(record: AccountRecord) -> _Known:
    spans = record.spans()
    return _Known(
        latest=spans[-1].partner_id,
        latest_since_ms=_ms(spans[-1].since),
        since_ms=tuple(_ms(span.since) for span in spans),
        partners=tuple(span.partner_id for span in spans),
    )


class Membership:
    """See the module docstring. ``grace_ms``: how much earlier than its acknowledgement a
    membership change may say it started (write time plus clock skew)."""

    def __init__(self, grace_ms: int) -> None:
        self.grace_ms = grace_ms
        self._accounts: Mapping[str, _Known] = {}
        self._records: dict[str, AccountRecord] = {}
        self.decided_until_ms = -(2**62)  # nothing decided before the first read
        self.late_changes = 0

    @classmethod
    def nobody(cls) -> Membership:
        """A membership in which no account has a partner, decided for every time."""
        found = cls(grace_ms=0)
        found.decided_until_ms = 2**62
        return found

    def install(self, records: Mapping[str, AccountRecord], *, read_at_ms: int) -> None:
        """Every account as read at ``read_at_ms`` (the whole table, or the table so far
        with the changes applied). Changes whose span starts at or before what was decided
        already are logged and counted (see the module docstring)."""
        current = self._accounts
        accounts = {}
        for account, record in records.items():
            known = current.get(account)
            if known is None or record is not self._records.get(account):
                known = _known(record)
            accounts[account] = known
        self._records = dict(records)
        self._late(accounts)
        self._accounts = accounts  # swapped in whole, then the watermark moves
        self.decided_until_ms = max(self.decided_until_ms, read_at_ms - self.grace_ms - 1)

    def advance(self, read_at_ms: int) -> None:
        """A read at ``read_at_ms`` found no change: only the watermark moves."""
        self.decided_until_ms = max(self.decided_until_ms, read_at_ms - self.grace_ms - 1)

    def _late(self, accounts: Mapping[str, _Known]) -> None:
        decided = self.decided_until_ms
        for account, known in accounts.items():
            before = self._accounts.get(account)
            if before is not None and before.since_ms == known.since_ms:
                continue
            if known.latest_since_ms <= decided and (
                before is None or known.latest_since_ms > before.latest_since_ms
            ):
                self.late_changes += 1
                _LOG.error(
                    "account membership change arrived after records of its time were "
                    "routed: the write took longer than the grace, or clocks disagree",
                    extra={
                        "account": account,
                        "since_ms": known.latest_since_ms,
                        "decided_until_ms": decided,
                    },
                )

    def decided(self, t_ms: int) -> bool:
        """Whether a record published at ``t_ms`` can be routed now."""
        return t_ms <= self.decided_until_ms

    def partner_at(self, account_id: str, t_ms: int) -> str | None:
        """The partner that managed ``account_id`` at ``t_ms`` (None: nobody, or not
        known). Only meaningful when :meth:`decided`."""
        known = self._accounts.get(account_id)
        if known is None:
            return None
        if t_ms >= known.latest_since_ms:
            return known.latest
        return known.partner_at(t_ms)

    def managed_by(self, partner_id: str) -> frozenset[str]:
        """The accounts ``partner_id`` manages now (for listings and tests)."""
        return frozenset(a for a, known in self._accounts.items() if known.latest == partner_id)


def decode_table(records: Mapping[bytes, bytes]) -> dict[str, AccountRecord]:
    """The readable account records (an unreadable one is left out: fail closed)."""
    found: dict[str, AccountRecord] = {}
    for key, value in records.items():
        try:
            record = decode_record(key, value)
        except ValueError as exc:
            _LOG.warning("unreadable account record left out: %s", exc)
            continue
        found[record.account_id] = record
    return found


class MembershipFollower:
    """Reads the accounts topic into a :class:`Membership` on a daemon thread: the whole
    table, then, every ``poll_s``, everything up to the end offsets of that moment
    (:meth:`runtime.compacted_table.CompactedTable.read_to_end`), moving the watermark to
    the wall-clock time taken before each read. A failed read is logged and retried (the
    watermark stays: records newer than it wait, fail closed). ``wall_ms``: epoch ms."""

    def __init__(
        self,
        table: CompactedTable,
        membership: Membership,
        *,
        poll_s: float = 0.25,
        read_timeout_s: float = 10.0,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._table = table
        self.membership = membership
        self._poll_s = poll_s
        self._read_timeout_s = read_timeout_s
        self._wall_ms = wall_ms
        self._records: dict[str, AccountRecord] = {}
        self._loaded = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        """Start following (returns at once; the first read happens on the thread)."""
        self._thread = threading.Thread(target=self._run, name="sink-membership", daemon=True)
        self._thread.start()

    def read_once(self) -> None:
        """One read up to the end (the whole table the first time); raises TableError."""
        read_at = self._wall_ms()
        if not self._loaded:
            self._records = decode_table(self._table.load(self._read_timeout_s))
            self._loaded = True
        else:
            changed: dict[bytes, bytes | None] = {}

            def apply(key: bytes, value: bytes | None) -> None:
                changed[key] = value

            self._table.read_to_end(apply, timeout_s=self._read_timeout_s)
            if not changed:
                self.membership.advance(read_at)
                return
            self._records = _applied(self._records, changed)
        self.membership.install(self._records, read_at_ms=read_at)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.read_once()
                self.last_error = None
                failures = 0
            except (TableError, Exception) as exc:  # noqa: BLE001 - logged, retried
                error = str(exc) or type(exc).__name__
                if error != self.last_error:
                    _LOG.warning("reading account membership failed: %s", error)
                self.last_error = error
                failures += 1
            # Back off while failing (a missing topic), up to 5 s between attempts.
            self._stop.wait(min(5.0, self._poll_s * 2 ** min(failures, 5)))

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                return  # the table is still in use on that thread
        self._table.close()


def _applied(
    records: dict[str, AccountRecord], changed: Mapping[bytes, bytes | None]
) -> dict[str, AccountRecord]:
    updated = dict(records)
    for key, value in changed.items():
        account = key.decode(errors="replace")
        if value is None:
            updated.pop(account, None)
            continue
        try:
            record = decode_record(key, value)
        except ValueError as exc:
            updated.pop(account, None)  # a record grants: unreadable means not managed
            _LOG.warning("unreadable account record: account left out: %s", exc)
            continue
        updated[record.account_id] = record
    return updated


def accounts_of(records: Iterable[AccountRecord]) -> dict[str, AccountRecord]:
    """Records by account id (tests and benchmarks)."""
    return {record.account_id: record for record in records}
