"""Checking one account's stored log against its events and its signed checkpoints: pure,
no I/O (the reads are :mod:`integrity.stored_log`'s).

What is checked, in this order, and what each failure is called:

1. ``bad-checkpoint``: a checkpoint whose signature does not verify under a key valid at
   its time, or whose origin is not this account's (a forged or misplaced checkpoint).
   ``bad-prune-statement``: the same of a prune statement, or one that cannot be true of
   this log (signed after now, ``below`` beyond every checkpoint, or no checkpoint held
   those leaves long enough before it for its retention to have removed them).
2. ``gap``: leaf indexes that do not run 0, 1, 2, ... (from the pruned prefix on).
3. ``moved``: a leaf whose Kafka position (partition, offset) is not after the previous
   leaf's in the same partition: the order was changed.
4. ``rewritten``: the tree of the stored leaves does not have the root a checkpoint signed
   at that size (the leaves were changed, dropped, added or reordered since), or the log
   is shorter than a checkpoint (truncated). The first such checkpoint is named with the
   range of leaves it covers beyond the previous good one.
5. ``changed``: an event whose canonical form no longer hashes to its leaf.
6. ``missing``: a leaf whose event is not stored, unless the retention has provably removed
   it: a checkpoint signed at T already held the leaf, so the event occurred at most the
   producer's future skew after T, and the table drops a row at the start of the month after
   its ``occurred_at`` plus the account's retention days (:class:`Retention`); or the leaf
   is below a valid prune statement's ``below``. Those are counted as ``expired``, not
   reported. The retention days are the latest valid prune statement's (signed: lowering
   the store's value changes nothing already signed); the store's only when there is none.
7. ``inserted``: a stored event that no leaf names although it was stored more than
   ``grace`` before the newest checkpoint was signed (the appender had seen it by then).

A checkpoint the customer holds (``trusted``) is checked exactly like the stored ones: a
store rolled back to an older consistent state (leaves, events and checkpoints together)
is shorter than it, or has another root at its size.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from integrity import merkle
from integrity.checkpoint import Checkpoint, CheckpointError, origin_for, verify
from integrity.keys import KeyRing
from integrity.leaf import event_leaf_hash
from integrity.packed import ID_SIZE, KeyIndex, PackedLeaves, id_bytes
from integrity.prune_statement import PruneStatement, verify_statement
from integrity.signed_note import NoteError
from integrity.verify_model import (
    DEFAULT_GRACE,
    FUTURE_SKEW,
    Finding,
    Kind,
    Report,
    Retention,
    StoredEvent,
    StoredLeaf,
    StoredLog,
    Window,
    stored_events,
)

# The model's names are imported from here too (a caller needs only this module).
__all__ = [
    "DEFAULT_GRACE",
    "FUTURE_SKEW",
    "Finding",
    "Kind",
    "Report",
    "Retention",
    "StoredEvent",
    "StoredLeaf",
    "StoredLog",
    "Window",
    "check_log",
    "stored_events",
]


def check_log(
    log: StoredLog,
    ring: KeyRing,
    *,
    trusted: Sequence[str] = (),
    grace: timedelta | None = DEFAULT_GRACE,
    retention: Retention | None = None,
    leaf_hash_of: Callable[[Mapping[str, Any]], bytes] = event_leaf_hash,
) -> Report:
    """Every finding about ``log``; an empty list is a verified log."""
    leaves = PackedLeaves.of(log.leaves)
    report = Report(log.account, leaves=len(leaves), window=log.window)
    checkpoints = _checkpoints(log.account, [*log.notes, *trusted], ring, report)
    report.checkpoints = len(checkpoints)
    report.newest = max(checkpoints, key=lambda c: (c.size, c.time_ms), default=None)
    retention = _pruned(log, checkpoints, ring, retention, report)
    _order(leaves, log.first_index, report)
    if log.first_index == 0:
        _against_checkpoints(leaves, checkpoints, report)
    inserted_before = None
    if grace is not None and report.newest is not None:
        inserted_before = datetime.fromtimestamp(report.newest.time_ms / 1000, UTC) - grace
    by_ttl = _removed_by_retention(checkpoints, retention)
    below = report.pruned_below
    _events(log, leaves, report, inserted_before, leaf_hash_of, lambda i: i < below or by_ttl(i))
    return report


def _pruned(
    log: StoredLog,
    checkpoints: list[Checkpoint],
    ring: KeyRing,
    retention: Retention | None,
    report: Report,
) -> Retention | None:
    """Check the log's prune statements; set the report's ``pruned_below`` (the largest
    ``below`` of the valid ones) and the retention the leaves above it are judged by: the
    latest valid statement's days, or ``retention`` (the store's) when none is valid."""
    largest = max((c.size for c in checkpoints), default=0)
    valid: list[PruneStatement] = []
    for note in log.prune_notes:
        try:
            statement = verify_statement(note, ring, account=log.account)
        except NoteError as exc:
            first = " / ".join(note.split("\n", 2)[:2])[:120]
            report.findings.append(Finding("bad-prune-statement", f"{exc} ({first})"))
            continue
        problem = _unjustified(statement, checkpoints, largest, retention)
        if problem:
            report.findings.append(
                Finding(
                    "bad-prune-statement",
                    f"the statement of {_when_ms(statement.time_ms)} "
                    f"(below {statement.below}, retention {statement.retention_days} days) "
                    f"{problem}",
                )
            )
            continue
        valid.append(statement)
    report.pruned_below = max((s.below for s in valid), default=0)
    latest = max(valid, key=lambda s: s.time_ms, default=None)
    report.retention_statement = latest
    if latest is None:
        report.retention_days = None if retention is None else retention.days
        return retention
    report.retention_days = latest.retention_days
    if retention is None:
        return None
    return Retention(latest.retention_days, retention.now, retention.future_skew)


def _unjustified(
    statement: PruneStatement,
    checkpoints: list[Checkpoint],
    largest: int,
    retention: Retention | None,
) -> str | None:
    """Why a validly signed statement cannot be true of this log, or None."""
    signed_at = datetime.fromtimestamp(statement.time_ms / 1000, UTC)
    if retention is not None and signed_at > retention.now + retention.future_skew:
        return "was signed after now (the signer's clock is wrong, or it was made to lie)"
    if statement.below > largest:
        return f"prunes more leaves than any checkpoint signed ({largest})"
    if statement.below == 0:
        return None
    then = Retention(statement.retention_days, signed_at)
    if not any(c.size >= statement.below and then.removed_all_before(_utc(c)) for c in checkpoints):
        return (
            f"names leaves no checkpoint held long enough before it for a retention of "
            f"{statement.retention_days} days to have removed them"
        )
    return None


def _utc(checkpoint: Checkpoint) -> datetime:
    return datetime.fromtimestamp(checkpoint.time_ms / 1000, UTC)


def _removed_by_retention(
    checkpoints: list[Checkpoint], retention: Retention | None
) -> Callable[[int], bool]:
    """Whether the retention has provably removed the event of leaf ``index``: some
    checkpoint that held the leaf was signed long enough ago."""
    if retention is None:
        return lambda _index: False
    # The earliest signing time of a checkpoint holding each size: a suffix minimum.
    sizes: list[int] = []
    earliest: list[int] = []
    for checkpoint in reversed(checkpoints):
        sizes.append(checkpoint.size)
        earliest.append(min(checkpoint.time_ms, earliest[-1]) if earliest else checkpoint.time_ms)
    sizes.reverse()
    earliest.reverse()

    def removed(index: int) -> bool:
        covering = bisect.bisect_right(sizes, index)  # the first checkpoint with size > index
        if covering == len(sizes):
            return False
        signed_at = datetime.fromtimestamp(earliest[covering] / 1000, UTC)
        return retention.removed_all_before(signed_at)

    return removed


def _checkpoints(
    account: str, notes: Sequence[str], ring: KeyRing, report: Report
) -> list[Checkpoint]:
    found: dict[tuple[int, bytes, int], Checkpoint] = {}
    for note in notes:
        try:
            checkpoint = verify(note, ring, origin=origin_for(account))
        except CheckpointError as exc:
            first = note.split("\n", 2)[:2]
            report.findings.append(Finding("bad-checkpoint", f"{exc} ({' / '.join(first)[:120]})"))
            continue
        found[(checkpoint.size, checkpoint.root, checkpoint.time_ms)] = checkpoint
    return sorted(found.values(), key=lambda c: (c.size, c.time_ms))


def _order(leaves: PackedLeaves, first_index: int, report: Report) -> None:
    last_offset: dict[int, int] = {}
    columns = zip(leaves.indexes, leaves.partitions, leaves.offsets, strict=True)
    for position, (index, partition, offset) in enumerate(columns):
        expected = first_index + position
        if index != expected:
            report.findings.append(
                Finding(
                    "gap",
                    f"the log jumps from leaf {expected - 1} to leaf {index}",
                    index,
                    leaves.event_id(position),
                )
            )
            return
        before = last_offset.get(partition)
        if before is not None and offset <= before:
            report.findings.append(
                Finding(
                    "moved",
                    f"its record (partition {partition}, offset {offset}) comes "
                    f"after offset {before} of the previous leaf: the order was changed",
                    index,
                    leaves.event_id(position),
                )
            )
            return
        last_offset[partition] = offset


def _against_checkpoints(
    leaves: PackedLeaves, checkpoints: list[Checkpoint], report: Report
) -> None:
    """The stored leaves' tree at each signed size must have the signed root."""
    pending = list(checkpoints)
    frontier = merkle.Frontier.empty()
    good_size = 0

    def check(checkpoint: Checkpoint) -> bool:
        if checkpoint.root == frontier.root():
            return True
        report.findings.append(
            Finding(
                "rewritten",
                f"the stored leaves 0..{checkpoint.size - 1} do not have the root signed at "
                f"size {checkpoint.size} ({_when(checkpoint)}): a leaf between {good_size} "
                f"and {checkpoint.size - 1} was changed, dropped, added or moved",
            )
        )
        return False

    while pending and pending[0].size == 0:
        if not check(pending.pop(0)):
            return
    for leaf_hash in leaves.hashes():
        frontier.append(leaf_hash)
        while pending and pending[0].size == frontier.size:
            if not check(pending.pop(0)):
                return
            good_size = frontier.size
    if pending:
        longest = pending[-1]
        report.findings.append(
            Finding(
                "rewritten",
                f"the log holds {frontier.size} leaves but a checkpoint signed {longest.size} "
                f"({_when(longest)}): leaves {frontier.size}..{longest.size - 1} were removed "
                "(truncated or rolled back)",
            )
        )


def _events(  # noqa: PLR0917
    log: StoredLog,
    leaves: PackedLeaves,
    report: Report,
    inserted_before: datetime | None,
    leaf_hash_of: Callable[[Mapping[str, Any]], bytes],
    removed_by_retention: Callable[[int], bool],
) -> None:
    """Each stored event (read once, as the store streams them) against its leaves; then
    the leaves no event came for. Findings in leaf order, then the inserted ones by the time
    they were stored."""
    by_id = KeyIndex(leaves.id_column, ID_SIZE)  # event id -> its leaves' positions
    seen = bytearray(len(leaves))
    found: list[Finding] = []
    inserted: list[tuple[datetime, str]] = []
    for event_id, stored in stored_events(log):
        report.events += 1
        try:
            at = by_id.positions(id_bytes(event_id))
        except ValueError:  # not a UUID: no leaf names it
            at = []
        if not at:
            if inserted_before is not None and stored.ingested_at < inserted_before:
                inserted.append((stored.ingested_at, event_id))
            continue
        try:
            recomputed = leaf_hash_of(stored.event)
        except ValueError as exc:
            recomputed, problem = b"", f" (it no longer reads as an event: {exc})"
        else:
            problem = ""
        for position in at:
            seen[position] = 1
            if recomputed != leaves.leaf_hash(position):
                found.append(
                    Finding(
                        "changed",
                        f"the stored event no longer hashes to its leaf{problem}",
                        leaves.indexes[position],
                        leaves.event_id(position),
                    )
                )
    found += _without_event(log, leaves, seen, report, removed_by_retention)
    found.sort(key=lambda finding: finding.leaf_index or 0)
    report.findings += found
    report.findings += [
        Finding(
            "inserted",
            f"stored at {ingested_at.isoformat()} but in no leaf of the log",
            event_id=event_id,
        )
        for ingested_at, event_id in sorted(inserted)
    ]


def _without_event(
    log: StoredLog,
    leaves: PackedLeaves,
    seen: bytearray,
    report: Report,
    removed_by_retention: Callable[[int], bool],
) -> list[Finding]:
    """The leaves no stored event came for: expired, or missing. With a window, only those
    between its first and last event in log order, and whose event is not stored outside
    it."""
    first, last = 0, len(seen) - 1
    if log.window is not None:
        first, last = seen.find(1), seen.rfind(1)
    span = range(first, last + 1) if first >= 0 else range(0)
    unseen = [position for position in span if not seen[position]]
    if log.window is not None and log.stored is not None and unseen:
        elsewhere = log.stored([leaves.event_id(position) for position in unseen])
        unseen = [position for position in unseen if leaves.event_id(position) not in elsewhere]
    missing = []
    for position in unseen:
        index = leaves.indexes[position]
        if removed_by_retention(index):
            report.expired += 1
        else:
            missing.append(
                Finding(
                    "missing",
                    "the event of this leaf is not stored",
                    index,
                    leaves.event_id(position),
                )
            )
    return missing


def _when(checkpoint: Checkpoint) -> str:
    return _when_ms(checkpoint.time_ms)


def _when_ms(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000).astimezone().isoformat(timespec="seconds")
