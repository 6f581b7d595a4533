"""Checking a streamed copy of one account's log (a bucket's objects, a webhook receiver's
payloads) offline, with only the public keys: pure, no I/O (:mod:`integrity.copy_reading`
reads copies into a :class:`Copy`).

A copy holds the account's events as a destination received them and the integrity
records (:mod:`integrity.copy_records`) delivered beside them, in stream order as far as
the copy keeps it. It may start mid-log (a destination created later), hold duplicates
(replays, redeliveries, producer retries) and, filtered, leave events out.

What is checked, in this order, and what each failure is called (as the store verifier's
findings, :mod:`integrity.verification`):

1. ``bad-record``: a line that claims to be an integrity record but does not parse
   strictly, or a line that is no JSON object at all.
2. ``bad-checkpoint``: a checkpoint whose signature does not verify under a key valid at
   its time, or not of this account.
3. ``rewritten``: two leaves records list different hashes for one leaf index; a record's
   ``frontier`` differs from the tree of the leaves listed before it; the listed leaves do
   not have the root a checkpoint signed at that size; two valid checkpoints of one size
   disagree.
4. ``gap``: a checkpoint signed a size whose leaves were never received (a leaves record
   dropped), or leaves records that do not join (the listing jumps).
5. Events against the listed leaf hashes (:func:`integrity.leaf.event_leaf_hash`): an
   event whose hash is listed is received (every leaf with that hash; a duplicate is
   benign). Walking the copy in order, the events no leaf lists are paired with the listed
   leaves no event came for between the same two matched events: a pair is ``changed``
   (the event at that leaf is not the one logged); a leaf left over is ``missing`` (with
   ``filtered``: counted as left out by the filter, not a finding); an event left over is
   ``inserted``. Without pairing (``filtered``), an unlisted event is ``inserted``. An
   event received for the first time after the event of a later leaf is ``moved``.

Not failures, counted in the report: events before the first event the listing names and
after the last one (their leaves records were published before the destination existed,
or are not delivered yet), and between two whose leaves a ``gap`` separates; listed
leaves before the first received event (published before the copy began); leaves beyond
the newest verified checkpoint (not yet proven); checkpoints of sizes before the copy's
first listed leaf (signature checked only).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from integrity import merkle
from integrity.checkpoint import Checkpoint, CheckpointError, origin_for, verify
from integrity.copy_records import LeavesRecord
from integrity.keys import KeyRing
from integrity.leaf import event_leaf_hash
from integrity.merkle import HASH_SIZE
from integrity.packed import ID_SIZE, KeyIndex, id_bytes, id_text
from integrity.verify_model import Finding

_NO_ID = bytes(ID_SIZE)
_NO_HASH = bytes(HASH_SIZE)


@dataclass
class Copy:
    """What a copy holds of one account, gathered in copy order: leaves records, checkpoint
    notes, and each event's leaf hash (32 bytes) and id (16), packed."""

    account: str
    records: list[tuple[int, tuple[bytes, ...], bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    event_hashes: bytearray = field(default_factory=bytearray)
    event_ids: bytearray = field(default_factory=bytearray)
    problems: dict[int, str] = field(default_factory=dict)  # event number -> why unreadable
    bad_records: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return len(self.event_hashes) // HASH_SIZE

    def add_leaves(self, record: LeavesRecord) -> None:
        self.records.append((record.first, record.frontier, b"".join(record.hashes)))

    def add_checkpoint(self, note: str) -> None:
        self.notes.append(note)

    def add_event(
        self,
        event: Mapping[str, Any],
        leaf_hash_of: Callable[[Mapping[str, Any]], bytes] = event_leaf_hash,
    ) -> None:
        """One received event (its hash is computed now; the event is not kept)."""
        number = self.events
        raw_id = event.get("event_id")
        try:
            self.event_ids += id_bytes(raw_id) if isinstance(raw_id, str) else _NO_ID
        except ValueError:
            self.event_ids += _NO_ID
        try:
            self.event_hashes += leaf_hash_of(event)
        except ValueError as exc:
            self.event_hashes += _NO_HASH
            self.problems[number] = str(exc)[:200]

    def add_bad(self, where: str, problem: str) -> None:
        self.bad_records.append(f"{where}: {problem}"[:300])


@dataclass
class CopyReport:
    account: str
    events: int = 0  # received, duplicates included
    duplicates: int = 0  # received more than once
    leaves: int = 0  # listed
    first_leaf: int | None = None  # the first listed index (> 0: the copy starts mid-log)
    checkpoints: int = 0
    newest: Checkpoint | None = None
    proven: int = 0  # listed leaves up to a verified checkpoint
    unproven_leaves: int = 0  # listed beyond the newest verified checkpoint
    unlisted_events: int = 0  # at the copy's head or tail, no leaves record (yet)
    before_copy: int = 0  # listed leaves before the first received event
    filtered: int = 0  # listed leaves not received, with ``filtered``
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass
class _Segment:
    """Leaves listed without a break: ``base`` .. ``base + n - 1``."""

    base: int
    frontier: tuple[bytes, ...]
    hashes: bytearray
    claims: dict[int, tuple[bytes, ...]]  # a record's first -> the frontier it carries
    proven_end: int = 0  # leaves below this are under a verified checkpoint

    @property
    def end(self) -> int:
        return self.base + len(self.hashes) // HASH_SIZE


def check_copy(copy: Copy, ring: KeyRing, *, filtered: bool = False) -> CopyReport:
    """Every finding about ``copy``; an empty list is a verified copy."""
    report = CopyReport(copy.account, events=copy.events)
    report.findings += [Finding("bad-record", problem) for problem in copy.bad_records]
    checkpoints = _checkpoints(copy, ring, report)
    segments = _segments(copy.records, report)
    if segments:
        report.first_leaf = segments[0].base
    report.leaves = sum(s.end - s.base for s in segments)
    _trees(segments, checkpoints, report)
    _events(copy, segments, report, filtered=filtered)
    return report


def _checkpoints(copy: Copy, ring: KeyRing, report: CopyReport) -> list[Checkpoint]:
    found: dict[tuple[int, bytes, int], Checkpoint] = {}
    for note in dict.fromkeys(copy.notes):
        try:
            checkpoint = verify(note, ring, origin=origin_for(copy.account))
        except CheckpointError as exc:
            first = " / ".join(note.split("\n", 2)[:2])[:120]
            report.findings.append(Finding("bad-checkpoint", f"{exc} ({first})"))
            continue
        found[(checkpoint.size, checkpoint.root, checkpoint.time_ms)] = checkpoint
    checkpoints = sorted(found.values(), key=lambda c: (c.size, c.time_ms))
    roots: dict[int, Checkpoint] = {}
    for checkpoint in checkpoints:
        other = roots.setdefault(checkpoint.size, checkpoint)
        if other.root != checkpoint.root:
            report.findings.append(
                Finding(
                    "rewritten",
                    f"two validly signed checkpoints of size {checkpoint.size} have different "
                    f"roots (times {other.time_ms} and {checkpoint.time_ms}): the log forked",
                )
            )
    report.checkpoints = len(checkpoints)
    report.newest = max(checkpoints, key=lambda c: (c.size, c.time_ms), default=None)
    return checkpoints


def _segments(
    records: Iterable[tuple[int, tuple[bytes, ...], bytes]], report: CopyReport
) -> list[_Segment]:
    """The listed leaves as runs without a break; overlapping records must agree."""
    segments: list[_Segment] = []
    ordered = sorted(records, key=lambda r: (r[0], -len(r[2])))
    for first, frontier, packed in ordered:
        segment = segments[-1] if segments else None
        if segment is None or first > segment.end:
            if segment is not None:
                report.findings.append(
                    Finding(
                        "gap",
                        f"leaves {segment.end}..{first - 1} were never received (the listing "
                        f"jumps from leaf {segment.end - 1} to leaf {first}): a leaves record "
                        "is missing from the copy",
                        segment.end,
                    )
                )
            segments.append(_Segment(first, frontier, bytearray(packed), {first: frontier}))
            continue
        at = (first - segment.base) * HASH_SIZE
        overlap = min(len(packed), len(segment.hashes) - at)
        held = bytes(segment.hashes[at : at + overlap])
        if held != packed[:overlap]:
            differs = next(
                i
                for i in range(0, overlap, HASH_SIZE)
                if held[i : i + HASH_SIZE] != packed[i : i + HASH_SIZE]
            )
            report.findings.append(
                Finding(
                    "rewritten",
                    "two leaves records list different hashes for this leaf",
                    first + differs // HASH_SIZE,
                )
            )
            continue
        segment.hashes += packed[overlap:]
        claimed = segment.claims.setdefault(first, frontier)
        if claimed != frontier:
            report.findings.append(
                Finding(
                    "rewritten",
                    f"two leaves records from leaf {first} carry different frontiers",
                    first,
                )
            )
    return segments


def _trees(segments: list[_Segment], checkpoints: list[Checkpoint], report: CopyReport) -> None:
    """Each segment's tree, from its base frontier: each record's frontier must be the tree
    of the leaves before it, each checkpoint's root the tree's at its size."""
    pending = list(checkpoints)
    ends = [s.end for s in segments]
    for checkpoint in list(pending):
        if not segments or checkpoint.size < segments[0].base:
            pending.remove(checkpoint)  # before the copy: its signature is all to check
            continue
        k = bisect.bisect_left(ends, checkpoint.size)
        if k == len(segments) or checkpoint.size < segments[k].base:
            last = segments[k - 1].end if k else segments[0].base
            report.findings.append(
                Finding(
                    "gap",
                    f"a checkpoint signed size {checkpoint.size} but leaves {last}.."
                    f"{checkpoint.size - 1} were never received: a leaves record is missing",
                    last,
                )
            )
            pending.remove(checkpoint)
    for segment in segments:
        sizes: dict[int, list[Checkpoint]] = {}
        for checkpoint in pending:
            if segment.base <= checkpoint.size <= segment.end:
                sizes.setdefault(checkpoint.size, []).append(checkpoint)
        _walk(segment, sizes, report)
    proven = sum(s.proven_end - s.base for s in segments if s.proven_end > s.base)
    report.proven = proven
    report.unproven_leaves = sum(s.end - max(s.base, s.proven_end) for s in segments)


def _walk(segment: _Segment, sizes: dict[int, list[Checkpoint]], report: CopyReport) -> None:
    try:
        tree = merkle.Frontier.restore(segment.base, segment.frontier)
    except ValueError as exc:  # copy_records checked popcount and sizes: not expected
        report.findings.append(Finding("bad-record", str(exc), segment.base))
        return
    good = True
    view = memoryview(segment.hashes)
    position = 0
    while True:
        size = tree.size
        claim = segment.claims.get(size)
        if claim is not None and size != segment.base and claim != tree.hashes and good:
            report.findings.append(  # the first only: every later record disagrees too
                Finding(
                    "rewritten",
                    f"the leaves record from leaf {size} carries a frontier other than the "
                    "tree of the leaves listed before it",
                    size,
                )
            )
            good = False
        for checkpoint in sizes.get(size, ()):
            if checkpoint.root != tree.root():
                report.findings.append(
                    Finding(
                        "rewritten",
                        f"the listed leaves up to {size - 1} do not have the root signed at "
                        f"size {size} (time {checkpoint.time_ms}): a listed leaf was changed, "
                        "dropped, added or moved",
                    )
                )
                good = False
            elif good:
                segment.proven_end = size
        if position >= len(view):
            return
        tree.append(bytes(view[position : position + HASH_SIZE]))
        position += HASH_SIZE


def _events(copy: Copy, segments: list[_Segment], report: CopyReport, *, filtered: bool) -> None:
    """The received events against the listed hashes (see the module docstring)."""
    listed = bytearray()
    bases: list[tuple[int, int]] = []  # (first position, its leaf index) per segment
    for segment in segments:
        bases.append((len(listed) // HASH_SIZE, segment.base))
        listed += segment.hashes
    count = len(listed) // HASH_SIZE

    def leaf_index(position: int) -> int:
        k = bisect.bisect_right(bases, (position, 1 << 63)) - 1
        return bases[k][1] + position - bases[k][0]

    index = KeyIndex(listed, HASH_SIZE)
    received = bytearray(count)
    matched = array("q")
    hashes = memoryview(copy.event_hashes)
    moved: list[tuple[int, int, int]] = []  # (position, event number, highest before)
    last = -1
    for number in range(copy.events):
        found = (
            []
            if number in copy.problems
            else index.positions(bytes(hashes[number * HASH_SIZE : (number + 1) * HASH_SIZE]))
        )
        if not found:
            matched.append(-1)
            continue
        pick = next((p for p in found if p > last), found[0])
        if received[pick]:
            report.duplicates += 1
        elif pick < last:
            moved.append((pick, number, last))
        for p in found:
            received[p] = 1
        matched.append(pick)
        last = max(last, pick)
    for position, number, before in moved:
        raw = bytes(copy.event_ids[number * ID_SIZE : (number + 1) * ID_SIZE])
        report.findings.append(
            Finding(
                "moved",
                f"received after the event of leaf {leaf_index(before)}: the copy's order "
                "was changed",
                leaf_index(position),
                None if raw == _NO_ID else id_text(raw),
            )
        )
    _pair(copy, matched, received, leaf_index, report, filtered=filtered)


def _pair(
    copy: Copy,
    matched: array[int],
    received: bytearray,
    leaf_index: Callable[[int], int],
    report: CopyReport,
    *,
    filtered: bool,
) -> None:
    """Runs of unlisted events, in copy order, paired with the unreceived leaves between
    the matched events around them; then the leaves left over."""
    count = len(received)
    found: list[Finding] = []
    used = bytearray(count)  # leaves paired with an unlisted event

    def event_id(number: int) -> str | None:
        raw = bytes(copy.event_ids[number * ID_SIZE : (number + 1) * ID_SIZE])
        return None if raw == _NO_ID else id_text(raw)

    def problem(number: int) -> str:
        why = copy.problems.get(number)
        return f" (it does not read as an event: {why})" if why else ""

    previous = -1  # the highest position a matched event took so far
    run: list[int] = []
    for number in range(len(matched) + 1):
        at = matched[number] if number < len(matched) else None
        if at is not None and at < 0:
            run.append(number)
            continue
        if run:
            upper = count if at is None else at
            free = [] if filtered else [p for p in range(previous + 1, upper) if not received[p]]
            for unlisted, position in zip(run, free, strict=False):
                used[position] = 1
                found.append(
                    Finding(
                        "changed",
                        "the event received in this leaf's place does not hash to it"
                        + problem(unlisted),
                        leaf_index(position),
                        event_id(unlisted),
                    )
                )
            left = run[len(free) :]
            # The copy's head or tail (not listed yet), or across a gap (found already).
            if at is None or previous < 0 or _spans_gap(leaf_index, previous, at):
                report.unlisted_events += len(left)
            else:
                found += [
                    Finding(
                        "inserted",
                        f"received after the event of leaf {leaf_index(previous)} but in no "
                        f"leaf of the log{problem(unlisted)}",
                        event_id=event_id(unlisted),
                    )
                    for unlisted in left
                ]
            run = []
        if at is not None:
            previous = max(previous, at)
    first_received = min((p for p in matched if p >= 0), default=count)
    for position in range(count):
        if received[position] or used[position]:
            continue
        if position < first_received:
            report.before_copy += 1
        elif filtered:
            report.filtered += 1
        else:
            found.append(
                Finding("missing", "the event of this leaf was not received", leaf_index(position))
            )
    found.sort(key=lambda f: (f.leaf_index is None, f.leaf_index or 0))
    report.findings += found


def _spans_gap(leaf_index: Callable[[int], int], before: int, after: int) -> bool:
    """Whether listed positions ``before`` and ``after`` are not adjacent leaves' runs."""
    return leaf_index(after) - leaf_index(before) != after - before
