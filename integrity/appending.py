"""The append rule of the integrity log: which record becomes which leaf. Pure, no I/O.

One :class:`PartitionLog` per assigned partition holds the heads (tree frontier and last
offset) of the accounts whose events that partition carries. A record of an account
becomes a leaf at index ``size`` (the size before the append) when its offset is greater
than the account's ``last_offset``; a record at or before it is already in the log (a
replay after a crash between insert and commit, or records a zombie appended) and is
skipped. The leaves of a partition are therefore a pure function of the stored heads and
the records, whoever computes them and however the records are cut into batches: the
fencing argument of docs/integrity.md.

A :class:`PendingBatch` collects what a run of records changed; :meth:`PartitionLog.take`
hands it over as a :class:`Batch`: the new leaf rows and the head rows of the accounts it
appended to. Its offset range names its inserts' deduplication tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from integrity.leaf import LEAF_VERSION
from integrity.merkle import Frontier

NO_OFFSET = -1
"""``last_offset`` of an account with nothing appended yet."""


@dataclass(frozen=True)
class HeadRow:
    """An account's state as ``integrity_heads`` stores it."""

    tenant_id: str
    size: int
    root: bytes
    frontier: tuple[bytes, ...]
    partition: int
    last_offset: int


class LeafRow(NamedTuple):
    """One leaf as ``integrity_leaves`` stores it (a named tuple: one is made per record,
    and a tuple is built several times faster than a frozen dataclass)."""

    tenant_id: str
    leaf_index: int
    partition: int
    kafka_offset: int
    event_id: uuid.UUID
    leaf_hash: bytes
    leaf_version: int = LEAF_VERSION


@dataclass
class AccountLog:
    """One account's tree as the appender keeps it in memory."""

    tenant_id: str
    partition: int
    frontier: Frontier = field(default_factory=Frontier.empty)
    last_offset: int = NO_OFFSET

    @classmethod
    def from_row(cls, row: HeadRow) -> AccountLog:
        return cls(
            row.tenant_id, row.partition, Frontier.restore(row.size, row.frontier), row.last_offset
        )

    @property
    def size(self) -> int:
        return self.frontier.size

    def row(self) -> HeadRow:
        return HeadRow(
            self.tenant_id,
            self.frontier.size,
            self.frontier.root(),
            self.frontier.hashes,
            self.partition,
            self.last_offset,
        )


@dataclass
class PendingBatch:
    """What consecutive records of one partition changed, not yet stored."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    started_s: float
    records: int = 0
    leaves: list[LeafRow] = field(default_factory=list)
    changed: dict[str, AccountLog] = field(default_factory=dict)
    # The tree of each changed account before the batch's first leaf of it (the
    # ``frontier`` of the streamed copy's first ``auditlog.leaves`` record).
    bases: dict[str, Frontier] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """Records ``first_offset`` .. ``last_offset`` of one partition (``records`` of them,
    skipped ones included): their new leaves, and the head of every account they appended
    to as it stands after them."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    records: int
    leaves: tuple[LeafRow, ...]
    heads: tuple[HeadRow, ...]
    bases: Mapping[str, Frontier] = field(default_factory=dict, compare=False)
    """Each account of ``heads``: its tree before its first leaf in ``leaves``."""

    def token(self, table: str) -> str:
        """The deduplication token of this batch's insert into ``table``: a retried insert
        of the same range is a no-op; another range re-inserts identical rows, which the
        ReplacingMergeTree collapses."""
        return f"{table}-{self.topic}-{self.partition}-{self.first_offset}-{self.last_offset}"


class ForeignAccount(Exception):
    """The account's log is kept by another partition (the events topic's partition count
    changed): appending here would fork it."""


class PartitionLog:
    """The accounts of one partition and the batch being built. Not thread-safe."""

    def __init__(self, topic: str, partition: int, heads: Iterable[HeadRow] = ()) -> None:
        self.topic = topic
        self.partition = partition
        self._accounts: dict[str, AccountLog] = {}
        self._foreign: dict[str, int] = {}
        self.pending: PendingBatch | None = None
        self.adopt(heads)

    def __iter__(self) -> Iterator[AccountLog]:
        return iter(self._accounts.values())

    def knows(self, tenant_id: str) -> bool:
        return tenant_id in self._accounts or tenant_id in self._foreign

    def adopt(self, heads: Iterable[HeadRow]) -> None:
        """Take stored heads: this partition's continue here; another partition's are
        refused from then on (:class:`ForeignAccount`). A head not newer than the one
        kept is ignored."""
        for row in heads:
            if row.partition != self.partition:
                self._foreign[row.tenant_id] = row.partition
                continue
            kept = self._accounts.get(row.tenant_id)
            if kept is None or row.size > kept.size:
                self._accounts[row.tenant_id] = AccountLog.from_row(row)

    def start_new(self, tenant_ids: Iterable[str]) -> None:
        """Accounts that have no stored head anywhere: their logs start empty here."""
        for tenant_id in tenant_ids:
            if not self.knows(tenant_id):
                self._accounts[tenant_id] = AccountLog(tenant_id, self.partition)

    def note_record(self, offset: int, now_s: float) -> PendingBatch:
        """Count a consumed record (appended or not) into the pending batch's range."""
        if self.pending is None:
            self.pending = PendingBatch(self.topic, self.partition, offset, offset, now_s)
        self.pending.last_offset = offset
        self.pending.records += 1
        return self.pending

    def append(
        self, tenant_id: str, offset: int, event_id: uuid.UUID, leaf_hash: bytes, now_s: float
    ) -> LeafRow | None:
        """Append the record at ``offset`` to ``tenant_id``'s log; None when the log already
        holds it (``offset <= last_offset``). The account must be known (:meth:`adopt`,
        :meth:`start_new`); raises :class:`ForeignAccount` for another partition's."""
        batch = self.note_record(offset, now_s)
        if tenant_id in self._foreign:
            raise ForeignAccount(
                f"account {tenant_id!r} has its log in partition {self._foreign[tenant_id]}"
            )
        account = self._accounts[tenant_id]
        if offset <= account.last_offset:
            return None
        leaf = LeafRow(tenant_id, account.size, self.partition, offset, event_id, leaf_hash)
        if tenant_id not in batch.changed:
            batch.changed[tenant_id] = account
            batch.bases[tenant_id] = Frontier.restore(account.size, account.frontier.hashes)
        account.frontier.append(leaf_hash)
        account.last_offset = offset
        batch.leaves.append(leaf)
        return leaf

    def due(self, now_s: float, max_wait_s: float) -> bool:
        """Whether the pending batch's first record has waited ``max_wait_s``."""
        return self.pending is not None and now_s - self.pending.started_s >= max_wait_s

    def take(self) -> Batch | None:
        """The pending batch, handed over to be stored (the next record starts another)."""
        pending, self.pending = self.pending, None
        if pending is None:
            return None
        return Batch(
            pending.topic,
            pending.partition,
            pending.first_offset,
            pending.last_offset,
            pending.records,
            tuple(pending.leaves),
            tuple(account.row() for account in pending.changed.values()),
            pending.bases,
        )
