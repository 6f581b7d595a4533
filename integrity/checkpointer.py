"""When to sign a checkpoint of an account's log, and signing it.

Every ``interval_s`` (the schedule's tick, on the monotonic clock) the appender offers the
heads of the accounts it owns, as stored (after its batches were inserted and committed).
An account gets a checkpoint when its log grew since its last checkpoint (``grown``), or
when that checkpoint is ``heartbeat_s`` old (``heartbeat``: same size and root, a new
time). Checkpoint times are wall-clock milliseconds. :func:`reason_to_sign` and
:class:`CheckpointSchedule` are pure; :class:`Checkpointer` signs with the keys valid now
and hands the rows to a store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from integrity.checkpoint import Checkpoint, origin_for, sign
from integrity.keys import SigningKey
from integrity.merkle import Frontier

_LOG = logging.getLogger("auditlog.integrity.checkpoints")

Reason = Literal["grown", "heartbeat"]


@dataclass(frozen=True)
class CheckpointPolicy:
    interval_s: float = 60.0
    heartbeat_s: float = 3600.0


@dataclass(frozen=True)
class Signed:
    """An account's latest checkpoint: its size and time."""

    size: int
    time_ms: int


@dataclass(frozen=True)
class CheckpointRow:
    """One signed checkpoint as ``integrity_checkpoints`` stores it."""

    tenant_id: str
    size: int
    root: bytes
    time_ms: int
    note: str


def reason_to_sign(
    size: int, last: Signed | None, now_ms: int, heartbeat_s: float
) -> Reason | None:
    """Why an account of ``size`` leaves whose latest checkpoint is ``last`` needs one at
    ``now_ms``, or None. An empty log is never signed."""
    if size <= 0:
        return None
    if last is None or size > last.size:
        return "grown"
    if now_ms - last.time_ms >= heartbeat_s * 1000:
        return "heartbeat"
    return None


class CheckpointSchedule:
    """Ticks every ``interval_s`` of the clock it is given the readings of."""

    def __init__(self, interval_s: float, now_s: float) -> None:
        self._interval_s = interval_s
        self._next_s = now_s + interval_s

    def tick(self, now_s: float) -> bool:
        """True once per interval: when ``now_s`` reached the next tick."""
        if now_s < self._next_s:
            return False
        self._next_s = now_s + self._interval_s
        return True


class CheckpointSink(Protocol):
    def insert(self, rows: Sequence[CheckpointRow]) -> None: ...


Signers = Callable[[int], Sequence[SigningKey]]
"""The keys to sign a checkpoint of a given time with (``KeyStore.active_signers``)."""


class NoSigningKey(Exception):
    """No key is valid now: checkpoints cannot be signed (``auditlog keys generate``)."""


class Checkpointer:
    """Signs the checkpoints that are due and stores them through ``sink`` (which blocks and
    raises ClickHouse's errors); remembers each account's latest. Not thread-safe."""

    def __init__(
        self,
        policy: CheckpointPolicy,
        sink: CheckpointSink,
        signers: Signers,
        on_signed: Callable[[Reason, int], None] | None = None,
    ) -> None:
        self._policy = policy
        self._sink = sink
        self._signers = signers
        self._on_signed = on_signed
        self._latest: dict[str, Signed] = {}

    def remember(self, latest: Mapping[str, Signed]) -> None:
        """Take the latest stored checkpoints (of a newly assigned partition's accounts)."""
        for tenant_id, signed in latest.items():
            kept = self._latest.get(tenant_id)
            if kept is None or (signed.size, signed.time_ms) > (kept.size, kept.time_ms):
                self._latest[tenant_id] = signed

    def forget(self, tenant_ids: Iterable[str]) -> None:
        for tenant_id in tenant_ids:
            self._latest.pop(tenant_id, None)

    def sign_due(
        self,
        heads: Iterable[tuple[str, Frontier]],
        now_ms: int,
        *,
        grown_only: bool = False,
        publish: Callable[[Sequence[CheckpointRow]], object] | None = None,
    ) -> list[CheckpointRow]:
        """Sign and store a checkpoint for each ``(tenant, tree)`` that needs one
        (``grown_only``: no heartbeats, as on the way out); a root is computed only for
        those. ``publish`` gets the signed rows before they are stored (the streamed copy:
        a crash after it leaves a published checkpoint the table lacks, which is harmless,
        never a stored one the stream lacks). Raises :class:`NoSigningKey`
        when no key is valid at ``now_ms``, and the sink's and ``publish``'s errors (nothing
        is remembered then: the next tick signs again)."""
        wanted: list[tuple[Reason, CheckpointRow]] = []
        keys: Sequence[SigningKey] | None = None
        for tenant_id, tree in heads:
            size = tree.size
            reason = reason_to_sign(
                size, self._latest.get(tenant_id), now_ms, self._policy.heartbeat_s
            )
            if reason is None or (grown_only and reason != "grown"):
                continue
            if keys is None:
                keys = self._signers(now_ms)
                if not keys:
                    raise NoSigningKey(f"no checkpoint signing key is valid at {now_ms}")
            root = tree.root()
            note = sign(Checkpoint(origin_for(tenant_id), size, root, now_ms), keys)
            wanted.append((reason, CheckpointRow(tenant_id, size, root, now_ms, note)))
        if not wanted:
            return []
        rows = [row for _, row in wanted]
        if publish is not None:
            publish(rows)
        self._sink.insert(rows)
        for reason, row in wanted:
            self._latest[row.tenant_id] = Signed(row.size, row.time_ms)
            if self._on_signed is not None:
                self._on_signed(reason, 1)
        _LOG.debug("checkpoints signed", extra={"count": len(rows)})
        return rows
