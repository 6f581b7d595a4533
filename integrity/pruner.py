"""When to sign an account's prune statement, and signing it (docs/integrity.md, "Prune
statements").

At each checkpoint tick the appender offers the accounts it owns; each is considered at
most once per ``min_interval_ms`` (a day) by this process, and at most
``max_accounts_per_tick`` of them per tick, so the reads stay small. For an account
considered, the latest stored statement is read: one younger than ``min_interval_ms``
waits; otherwise the account's retention days are read and ``below`` computed from its
signed checkpoints (:func:`pruned_below`, each note's signature checked first: a forged row
cannot raise it). A statement is signed when none exists or ``below`` or the retention
changed (:func:`statement_due`), and stored through the store, which blocks and raises
ClickHouse's errors (nothing is remembered then: the next tick tries again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from integrity.checkpoint import origin_for, verify
from integrity.checkpointer import NoSigningKey, Signers
from integrity.keys import KeyRing, SigningKey
from integrity.prune_statement import PruneStatement, prune_origin_for, sign_statement
from integrity.signed_note import NoteError
from integrity.verify_model import FUTURE_SKEW, Retention

_LOG = logging.getLogger("auditlog.integrity.prune")

DAY_MS = 86_400_000


@dataclass(frozen=True)
class PrunePolicy:
    min_interval_ms: int = DAY_MS
    max_accounts_per_tick: int = 100
    # Checkpoints read (largest first) to find one validly signed before the cutoff.
    candidates: int = 20


@dataclass(frozen=True)
class PruneRow:
    """One signed statement as ``integrity_prune_statements`` stores it."""

    tenant_id: str
    time_ms: int
    below: int
    retention_days: int
    note: str


class PruneStore(Protocol):
    def latest_statements(self, tenant_ids: Sequence[str]) -> Mapping[str, PruneStatement]: ...
    def retention_days(self, tenant_ids: Sequence[str]) -> Mapping[str, int]: ...
    def checkpoint_notes(self, tenant_id: str, signed_before_ms: int, limit: int) -> list[str]:
        """The account's checkpoint notes signed before ``signed_before_ms``, largest size
        first."""
        ...

    def insert(self, rows: Sequence[PruneRow]) -> None: ...


def pruned_below(
    account: str, notes: Iterable[str], ring: KeyRing, signed_before_ms: int
) -> tuple[int, int]:
    """The largest size of a validly signed checkpoint of ``account`` signed before
    ``signed_before_ms`` (0 when none), and how many of ``notes`` did not verify."""
    below, bad = 0, 0
    for note in notes:
        try:
            checkpoint = verify(note, ring, origin=origin_for(account))
        except NoteError:
            bad += 1
            continue
        if checkpoint.time_ms < signed_before_ms:
            below = max(below, checkpoint.size)
    return below, bad


def statement_due(latest: PruneStatement | None, below: int, retention_days: int) -> bool:
    """Whether an account whose latest statement is ``latest`` needs a new one saying
    ``below`` and ``retention_days`` (the once-a-day limit is the caller's)."""
    return latest is None or (latest.below, latest.retention_days) != (below, retention_days)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class Pruner:
    """Signs the accounts' prune statements that are due. ``ring`` gives the public keys
    (every key ever used, to check old checkpoints); ``signers`` the keys valid at a time.
    Not thread-safe."""

    def __init__(
        self,
        store: PruneStore,
        signers: Signers,
        ring: Callable[[], KeyRing],
        policy: PrunePolicy = PrunePolicy(),
        future_skew: timedelta = FUTURE_SKEW,
    ) -> None:
        self._store = store
        self._signers = signers
        self._ring = ring
        self._policy = policy
        self._future_skew = future_skew
        self._next_ms: dict[str, int] = {}  # when each account is considered again

    def sign_due(self, tenant_ids: Iterable[str], now_ms: int) -> list[PruneRow]:
        """Consider up to ``max_accounts_per_tick`` of ``tenant_ids`` not considered within
        ``min_interval_ms``; sign and store the statements due. Raises NoSigningKey when a
        statement is due and no key is valid now, and the store's errors."""
        picked = sorted(t for t in set(tenant_ids) if self._next_ms.get(t, 0) <= now_ms)
        picked = picked[: self._policy.max_accounts_per_tick]
        if not picked:
            return []
        latest = self._store.latest_statements(picked)
        waiting = {
            t: s.time_ms + self._policy.min_interval_ms
            for t, s in latest.items()
            if s.time_ms + self._policy.min_interval_ms > now_ms
        }
        considered = [t for t in picked if t not in waiting]
        rows = self._statements(considered, latest, now_ms) if considered else []
        if rows:
            self._store.insert(rows)
        self._next_ms.update(waiting)
        self._next_ms.update((t, now_ms + self._policy.min_interval_ms) for t in considered)
        return rows

    def _statements(
        self, tenant_ids: Sequence[str], latest: Mapping[str, PruneStatement], now_ms: int
    ) -> list[PruneRow]:
        days = self._store.retention_days(tenant_ids)
        ring = self._ring()
        keys: Sequence[SigningKey] = ()
        rows = []
        for tenant_id in tenant_ids:
            retention = Retention(days[tenant_id], _utc(now_ms), self._future_skew)
            cutoff_ms = int(retention.signed_before().timestamp() * 1000)
            notes = self._store.checkpoint_notes(tenant_id, cutoff_ms, self._policy.candidates)
            below, bad = pruned_below(tenant_id, notes, ring, cutoff_ms)
            if bad:
                _LOG.error(
                    "checkpoints that do not verify in the store: %d (run auditlog verify)",
                    bad,
                    extra={"tenant_id": tenant_id},
                )
            if not statement_due(latest.get(tenant_id), below, retention.days):
                continue
            keys = keys or self._signers(now_ms)  # read once per tick, when needed
            if not keys:
                raise NoSigningKey(f"no signing key is valid at {now_ms}")
            statement = PruneStatement(prune_origin_for(tenant_id), below, retention.days, now_ms)
            note = sign_statement(statement, keys)
            rows.append(PruneRow(tenant_id, now_ms, below, retention.days, note))
        return rows
