"""Checking a stored log (integrity.verification) with no store: every kind of tampering the
issue names is found and named, and an untouched log has no finding."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from integrity import merkle
from integrity.checkpoint import Checkpoint, origin_for, sign
from integrity.keys import KeyRing, SigningKey
from integrity.leaf import event_leaf_hash
from integrity.prune_statement import PruneStatement, prune_origin_for, sign_statement
from integrity.verification import (
    Retention,
    StoredEvent,
    StoredLeaf,
    StoredLog,
    Window,
    check_log,
)
from tests.events import valid_event

ACCOUNT = "acme"
KEY = SigningKey("auditlog.test", Ed25519PrivateKey.generate())
RING = KeyRing([KEY.verifier()])
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SIGNED = int((T0 + timedelta(hours=1)).timestamp() * 1000)  # checkpoints an hour after T0


def events(n: int) -> list[dict[str, Any]]:
    made = []
    for i in range(n):
        event = valid_event(tenant_id=ACCOUNT, category="recipes")
        event["event_id"] = str(uuid.UUID(int=i + 1))
        event["occurred_at"] = T0 + timedelta(seconds=i)
        made.append(event)
    return made


def note(leaves: list[StoredLeaf], size: int, time_ms: int = SIGNED) -> str:
    hashes = [leaf.leaf_hash for leaf in leaves[:size]]
    return sign(Checkpoint(origin_for(ACCOUNT), size, merkle.root(hashes), time_ms), [KEY])


def stored(
    n: int = 10, made: list[dict[str, Any]] | None = None
) -> tuple[StoredLog, list[dict[str, Any]]]:
    made = events(n) if made is None else made
    leaves = [
        StoredLeaf(i, e["event_id"], event_leaf_hash(e), partition=3, offset=100 + i)
        for i, e in enumerate(made)
    ]
    by_id = {e["event_id"]: StoredEvent(e, T0) for e in made}
    notes = [note(leaves, 4), note(leaves, n, SIGNED + 1)]
    return StoredLog(ACCOUNT, leaves, by_id, notes), made


def held(log: StoredLog) -> dict[str, StoredEvent]:
    """The events of a log made here (a mapping, not a stream)."""
    assert isinstance(log.events, dict)
    return log.events


def kinds(log: StoredLog, **kw: Any) -> list[tuple[str, int | None, str | None]]:
    report = check_log(log, RING, **kw)
    return [(f.kind, f.leaf_index, f.event_id) for f in report.findings]


def test_an_untouched_log_verifies() -> None:
    log, _ = stored()
    report = check_log(log, RING)
    assert report.ok, [f.line() for f in report.findings]
    assert (report.leaves, report.events, report.checkpoints) == (10, 10, 2)
    assert report.newest is not None
    assert report.newest.size == 10


def test_a_changed_field_names_the_event() -> None:
    log, made = stored()
    changed = dict(made[6], action="user.login")
    events_ = {**held(log), made[6]["event_id"]: StoredEvent(changed, T0)}
    assert kinds(dataclasses.replace(log, events=events_)) == [("changed", 6, made[6]["event_id"])]


def test_a_deleted_event_is_missing() -> None:
    log, made = stored()
    events_ = {k: v for k, v in held(log).items() if k != made[2]["event_id"]}
    assert kinds(dataclasses.replace(log, events=events_)) == [("missing", 2, made[2]["event_id"])]


def test_a_forged_event_is_inserted_once_the_appender_had_seen_it() -> None:
    log, _ = stored()
    forged = events(11)[10]
    events_ = {**held(log), forged["event_id"]: StoredEvent(forged, T0)}
    tampered = dataclasses.replace(log, events=events_)
    assert kinds(tampered) == [("inserted", None, forged["event_id"])]
    # Stored within the grace before the newest checkpoint: the appender may not have seen
    # it yet; not a finding.
    assert kinds(tampered, grace=timedelta(hours=2)) == []


def test_two_swapped_leaves_are_moved_and_rewritten() -> None:
    log, _ = stored()
    leaves = list(log.leaves)
    a, b = leaves[5], leaves[6]
    leaves[5] = dataclasses.replace(b, index=5)
    leaves[6] = dataclasses.replace(a, index=6)
    found = kinds(dataclasses.replace(log, leaves=leaves))
    assert ("moved", 6, a.event_id) in found
    assert [kind for kind, _, _ in found].count("rewritten") == 1


def test_a_leaf_hash_rewritten_with_its_event_breaks_the_signed_root() -> None:
    log, made = stored()
    changed = dict(made[7], action="user.login")
    leaves = list(log.leaves)
    leaves[7] = dataclasses.replace(leaves[7], leaf_hash=event_leaf_hash(changed))
    events_ = {**held(log), made[7]["event_id"]: StoredEvent(changed, T0)}
    report = check_log(dataclasses.replace(log, leaves=leaves, events=events_), RING)
    ((kind, message),) = [(f.kind, f.message) for f in report.findings]
    assert kind == "rewritten"
    assert "between 4 and 9" in message


def test_truncating_the_newest_is_found_against_the_checkpoint() -> None:
    log, made = stored()
    kept = list(log.leaves[:8])
    events_ = {e["event_id"]: held(log)[e["event_id"]] for e in made[:8]}
    report = check_log(dataclasses.replace(log, leaves=kept, events=events_), RING)
    assert [f.kind for f in report.findings] == ["rewritten"]
    assert "leaves 8..9 were removed" in report.findings[0].message


def test_a_rollback_to_an_older_consistent_store_is_found_with_the_customers_checkpoint() -> None:
    log, made = stored()
    customers = note(list(log.leaves), 10, SIGNED + 1)
    older = StoredLog(
        ACCOUNT,
        log.leaves[:6],
        {e["event_id"]: held(log)[e["event_id"]] for e in made[:6]},
        [note(list(log.leaves), 4)],
    )
    assert check_log(older, RING).ok  # consistent with what the store still holds
    report = check_log(older, RING, trusted=[customers])
    assert [f.kind for f in report.findings] == ["rewritten"]


def test_a_checkpoint_forged_with_another_key_is_named() -> None:
    log, _ = stored()
    other = SigningKey("auditlog.test", Ed25519PrivateKey.generate())
    hashes = [leaf.leaf_hash for leaf in log.leaves]
    root = merkle.root([*hashes[:9], b"\0" * 32])
    forged = sign(Checkpoint(origin_for(ACCOUNT), 10, root, SIGNED + 3), [other])
    found = kinds(dataclasses.replace(log, notes=[*log.notes, forged]))
    assert found == [("bad-checkpoint", None, None)]


def test_another_accounts_checkpoint_is_not_this_ones() -> None:
    log, _ = stored()
    hashes = [leaf.leaf_hash for leaf in log.leaves]
    elsewhere = sign(Checkpoint(origin_for("globex"), 10, merkle.root(hashes), SIGNED + 3), [KEY])
    assert kinds(dataclasses.replace(log, notes=[elsewhere])) == [("bad-checkpoint", None, None)]


def test_a_gap_in_the_leaf_indexes_is_named() -> None:
    log, _ = stored()
    leaves = [leaf for leaf in log.leaves if leaf.index != 3]
    found = kinds(dataclasses.replace(log, leaves=leaves))
    assert found[0][:2] == ("gap", 4)


@pytest.mark.parametrize("duplicates", [1, 3])
def test_a_record_published_twice_is_two_leaves_of_one_stored_event(duplicates: int) -> None:
    log, made = stored()
    again = made[4]
    leaves = list(log.leaves)
    for n in range(duplicates):
        leaves.append(StoredLeaf(10 + n, again["event_id"], event_leaf_hash(again), 3, 200 + n))
    notes = [note(leaves, len(leaves), SIGNED + 5)]
    assert kinds(dataclasses.replace(log, leaves=leaves, notes=notes)) == []


def test_an_event_the_retention_removed_is_not_missing() -> None:
    log, made = stored()
    gone = {e["event_id"]: held(log)[e["event_id"]] for e in made[3:]}
    pruned = dataclasses.replace(log, events=gone)
    # Leaves 0-2 were held by the checkpoint signed an hour after T0 (1 December 2026), so
    # their events occurred in December at the latest: the table drops them by 1 January
    # 2027 + 30 days of retention, 31 January.
    later = Retention(30, datetime(2027, 1, 31, tzinfo=UTC))
    report = check_log(pruned, RING, retention=later)
    assert report.ok, [f.line() for f in report.findings]
    assert report.expired == 3
    # A day too early: the TTL cannot have removed them yet, so they were deleted.
    early = Retention(30, datetime(2027, 1, 30, tzinfo=UTC))
    assert kinds(pruned, retention=early) == [("missing", i, made[i]["event_id"]) for i in range(3)]


def test_only_events_a_checkpoint_held_long_ago_count_as_removed_by_retention() -> None:
    log, made = stored()
    notes = [note(list(log.leaves), 4), note(list(log.leaves), 10, SIGNED + 200 * 86_400_000)]
    gone = {e["event_id"]: held(log)[e["event_id"]] for e in made[:6]}  # 6-9 deleted
    pruned = dataclasses.replace(log, events=gone, notes=notes)
    found = kinds(pruned, retention=Retention(30, datetime(2027, 1, 31, tzinfo=UTC)))
    # Leaves 6-9 first appear in the checkpoint signed 200 days later: not yet expired.
    assert found == [("missing", i, made[i]["event_id"]) for i in range(6, 10)]


# -- prune statements ------------------------------------------------------------------------

JAN_20 = int(datetime(2027, 1, 20, tzinfo=UTC).timestamp() * 1000)
FEB_1 = int(datetime(2027, 2, 1, 9, tzinfo=UTC).timestamp() * 1000)
AFTER = datetime(2027, 2, 1, 10, tzinfo=UTC)  # verified an hour after the statement


def statement(
    below: int,
    days: int = 30,
    time_ms: int = FEB_1,
    account: str = ACCOUNT,
    key: SigningKey = KEY,
) -> str:
    return sign_statement(PruneStatement(prune_origin_for(account), below, days, time_ms), [key])


def pruned(deleted: range | list[int], *statements: str) -> tuple[StoredLog, list[dict[str, Any]]]:
    """Leaves 0-3 held by a checkpoint of 1 December, 4-9 first by one of 20 January; the
    events of ``deleted`` gone; the prune ``statements`` stored."""
    log, made = stored()
    notes = [note(list(log.leaves), 4), note(list(log.leaves), 10, JAN_20)]
    gone = {made[i]["event_id"] for i in deleted}
    events_ = {k: v for k, v in held(log).items() if k not in gone}
    return dataclasses.replace(log, events=events_, notes=notes, prune_notes=statements), made


def test_events_below_a_signed_statement_are_expired_whatever_the_store_says() -> None:
    log, _ = pruned(range(4), statement(4))
    # The store says ten years: without the statement, leaves 0-3 would be deleted events.
    report = check_log(log, RING, retention=Retention(3650, AFTER))
    assert report.ok, [f.line() for f in report.findings]
    assert (report.expired, report.pruned_below, report.retention_days) == (4, 4, 30)
    assert report.retention_statement is not None
    unsigned = dataclasses.replace(log, prune_notes=())
    assert [k for k, _, _ in kinds(unsigned, retention=Retention(3650, AFTER))] == ["missing"] * 4


def test_a_deletion_above_the_statement_is_still_missing() -> None:
    log, _ = pruned([0, 1, 2, 3, 6], statement(4))
    report = check_log(log, RING, retention=Retention(3650, AFTER))
    assert [(f.kind, f.leaf_index) for f in report.findings] == [("missing", 6)]
    assert report.expired == 4


def test_the_statements_retention_wins_over_a_lowered_one_in_the_store() -> None:
    # Someone set the store's retention to 1 day: the events held on 1 December would pass
    # for expired. The signed statement says 365 days: they are deleted events.
    log, made = pruned(range(4), statement(0, days=365))
    assert check_log(
        dataclasses.replace(log, prune_notes=()), RING, retention=Retention(1, AFTER)
    ).ok
    found = kinds(log, retention=Retention(1, AFTER))
    assert found == [("missing", i, made[i]["event_id"]) for i in range(4)]


def test_a_forged_statement_is_named_and_not_used() -> None:
    forger = SigningKey("auditlog.test", Ed25519PrivateKey.generate())
    log, _ = pruned(range(4), statement(4, key=forger))
    report = check_log(log, RING, retention=Retention(3650, AFTER))
    assert [f.kind for f in report.findings] == ["bad-prune-statement"] + ["missing"] * 4
    assert "no valid signature" in report.findings[0].message
    assert (report.pruned_below, report.retention_days) == (0, 3650)
    assert report.retention_statement is None


def test_another_accounts_statement_is_named() -> None:
    log, _ = pruned([], statement(4, account="globex"))
    ((kind, message),) = [(f.kind, f.message) for f in check_log(log, RING).findings]
    assert kind == "bad-prune-statement"
    assert "not 'auditlog-prune/acme'" in message


def test_a_statement_beyond_the_log_is_named() -> None:
    log, _ = pruned([], statement(11))
    ((kind, message),) = [(f.kind, f.message) for f in check_log(log, RING).findings]
    assert kind == "bad-prune-statement"
    assert "prunes more leaves than any checkpoint signed (10)" in message


def test_a_statement_no_checkpoint_justifies_is_named() -> None:
    # Signed 15 December with 30 days: only what a checkpoint held before 1 November can be
    # gone, and the first checkpoint is of 1 December.
    early = int(datetime(2026, 12, 15, tzinfo=UTC).timestamp() * 1000)
    log, _ = pruned([], statement(4, time_ms=early))
    ((kind, message),) = [(f.kind, f.message) for f in check_log(log, RING).findings]
    assert kind == "bad-prune-statement"
    assert "no checkpoint held long enough" in message
    # The same statement of 1 February is true of this log.
    assert check_log(dataclasses.replace(log, prune_notes=[statement(4)]), RING).ok


def test_a_statement_signed_after_now_is_named() -> None:
    log, _ = pruned([], statement(4))
    before = Retention(30, datetime(2027, 1, 31, tzinfo=UTC))
    assert [k for k, _, _ in kinds(log, retention=before)] == ["bad-prune-statement"]


# -- a window of events ------------------------------------------------------------------------


def windowed(log: StoredLog, start_s: int, end_s: int) -> StoredLog:
    """``log`` as read with a window: only the events that occurred in it, streamed once;
    the others only known to exist."""
    window = Window(T0 + timedelta(seconds=start_s), T0 + timedelta(seconds=end_s))
    everything = dict(held(log))
    inside = (
        (event_id, event)
        for event_id, event in everything.items()
        if window.start <= event.event["occurred_at"] < window.end
    )
    return dataclasses.replace(
        log, events=inside, window=window, stored=lambda ids: set(ids) & set(everything)
    )


def test_a_window_reads_only_its_events_and_still_checks_the_whole_tree() -> None:
    log, _ = stored()
    report = check_log(windowed(log, 3, 7), RING)
    assert report.ok, [f.line() for f in report.findings]
    assert (report.leaves, report.events, report.checkpoints) == (10, 4, 2)
    assert report.window is not None
    # A leaf rewritten outside the window still breaks the signed root.
    leaves = list(log.leaves)
    leaves[1] = dataclasses.replace(leaves[1], leaf_hash=b"\1" * 32)
    found = kinds(windowed(dataclasses.replace(log, leaves=leaves), 3, 7))
    assert [kind for kind, _, _ in found] == ["rewritten"]


def test_only_events_in_the_window_are_reported() -> None:
    log, made = stored()
    events_ = {
        k: v for k, v in held(log).items() if k not in (made[1]["event_id"], made[4]["event_id"])
    }
    events_[made[2]["event_id"]] = StoredEvent(dict(made[2], action="user.login"), T0)
    events_[made[5]["event_id"]] = StoredEvent(dict(made[5], action="user.login"), T0)
    forged = [dict(e, event_id=str(uuid.UUID(int=100 + i))) for i, e in enumerate(made)]
    events_[forged[0]["event_id"]] = StoredEvent(forged[0], T0)  # occurred at T0: outside
    events_[forged[6]["event_id"]] = StoredEvent(forged[6], T0)  # at T0 + 6 s: inside
    tampered = dataclasses.replace(log, events=events_)
    assert [k for k, _, _ in kinds(tampered)] == [
        "missing",
        "changed",
        "missing",
        "changed",
        "inserted",
        "inserted",
    ]
    assert kinds(windowed(tampered, 3, 7)) == [
        ("missing", 4, made[4]["event_id"]),
        ("changed", 5, made[5]["event_id"]),
        ("inserted", None, forged[6]["event_id"]),
    ]


def test_a_late_event_outside_the_window_is_not_missing_from_it() -> None:
    made = events(10)
    made[5]["occurred_at"] = T0 - timedelta(days=1)  # published late, within the others
    log, _ = stored(made=made)
    report = check_log(windowed(log, 3, 7), RING)
    assert report.ok, [f.line() for f in report.findings]
    assert report.events == 3
    gone = {k: v for k, v in held(log).items() if k != made[5]["event_id"]}
    found = kinds(windowed(dataclasses.replace(log, events=gone), 3, 7))
    assert found == [("missing", 5, made[5]["event_id"])]


def test_events_are_read_once_as_they_stream() -> None:
    log, _ = stored()
    reads: list[str] = []

    def streamed() -> Any:
        for event_id, event in held(log).items():
            reads.append(event_id)
            yield event_id, event

    report = check_log(dataclasses.replace(log, events=streamed()), RING)
    assert report.ok
    assert report.events == len(reads) == 10
