"""Prune statements: the note format (never taken for a checkpoint, nor one for it), and
when the pruner signs one (at most once a day per account, when it changed), with a fake
store at the seam."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from integrity import checkpoint
from integrity.checkpoint import Checkpoint, CheckpointError, origin_for, sign
from integrity.checkpointer import NoSigningKey
from integrity.keys import KeyRing, SigningKey
from integrity.merkle import leaf_hash, root
from integrity.prune_statement import (
    PruneStatement,
    parse_statement,
    prune_origin_for,
    sign_statement,
    verify_statement,
)
from integrity.pruner import DAY_MS, PrunePolicy, Pruner, PruneRow, pruned_below, statement_due
from integrity.signed_note import NoteError

KEY = SigningKey("auditlog-2026", Ed25519PrivateKey.generate())
RING = KeyRing([KEY.verifier()])
ROOT = root([leaf_hash(b"a")])


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


DEC_1 = _ms(datetime(2026, 12, 1, 9, tzinfo=UTC))
FEB_1 = _ms(datetime(2027, 2, 1, 9, tzinfo=UTC))


def _statement(account: str = "acme", below: int = 4, days: int = 30, time_ms: int = FEB_1) -> str:
    return sign_statement(PruneStatement(prune_origin_for(account), below, days, time_ms), [KEY])


def test_a_statement_round_trips_and_says_what_it_holds() -> None:
    note = _statement()
    assert note.startswith("auditlog-prune/acme\nbelow 4\nretention 30\ntime ")
    statement = verify_statement(note, RING, account="acme")
    assert (statement.account, statement.below, statement.retention_days) == ("acme", 4, 30)
    assert statement.time_ms == FEB_1


def test_a_statement_is_never_a_checkpoint_nor_a_checkpoint_a_statement() -> None:
    with pytest.raises(CheckpointError):
        checkpoint.parse(_statement())
    with pytest.raises(CheckpointError):
        checkpoint.verify(_statement(), RING)
    note = sign(Checkpoint(origin_for("acme"), 4, ROOT, FEB_1), [KEY])
    with pytest.raises(NoteError, match=r"body is four lines|not a prune statement"):
        parse_statement(note)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda n: n.replace("below 4", "below 5"), "bad signature"),
        (lambda n: n.replace("retention 30", "retention 1"), "bad signature"),
        (lambda n: n.replace("below 4", "below 04"), "without leading zeros"),
        (lambda n: n.replace("below 4", "size 4"), "should be 'below <number>'"),
        (lambda n: n.replace("auditlog-prune/", "auditlog/"), "not a prune statement"),
    ],
)
def test_a_changed_statement_is_refused(edit: object, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        verify_statement(edit(_statement()), RING)  # type: ignore[operator]


def test_another_accounts_statement_and_another_key_are_refused() -> None:
    with pytest.raises(NoteError, match="not 'auditlog-prune/acme'"):
        verify_statement(_statement("globex"), RING, account="acme")
    other = SigningKey("auditlog-2026", Ed25519PrivateKey.generate())
    forged = sign_statement(PruneStatement(prune_origin_for("acme"), 4, 30, FEB_1), [other])
    with pytest.raises(NoteError, match="no valid signature: unknown key auditlog-2026"):
        verify_statement(forged, RING)


def _checkpoint(size: int, time_ms: int, key: SigningKey = KEY, account: str = "acme") -> str:
    return sign(Checkpoint(origin_for(account), size, ROOT, time_ms), [key])


def test_pruned_below_is_the_largest_valid_checkpoint_signed_before_the_cutoff() -> None:
    forger = SigningKey("auditlog-2026", Ed25519PrivateKey.generate())
    notes = [
        _checkpoint(900, DEC_1, key=forger),  # a forged row: does not count
        _checkpoint(800, DEC_1, account="globex"),  # another account's
        _checkpoint(500, FEB_1),  # too late
        _checkpoint(10, DEC_1),
        _checkpoint(4, DEC_1 - DAY_MS),
    ]
    assert pruned_below("acme", notes, RING, DEC_1 + 1) == (10, 2)
    assert pruned_below("acme", notes, RING, DEC_1) == (4, 2)
    assert pruned_below("acme", [], RING, DEC_1) == (0, 0)


def test_a_statement_is_due_when_none_exists_or_it_changed() -> None:
    latest = PruneStatement(prune_origin_for("acme"), 4, 30, FEB_1)
    assert statement_due(None, 0, 30)
    assert not statement_due(latest, 4, 30)
    assert statement_due(latest, 5, 30)
    assert statement_due(latest, 4, 90)


class FakeStore:
    def __init__(self, checkpoints: Mapping[str, list[tuple[int, int]]]) -> None:
        self.checkpoints = {
            t: [_checkpoint(size, ms, account=t) for size, ms in rows]
            for t, rows in checkpoints.items()
        }
        self.days: dict[str, int] = {}
        self.rows: list[PruneRow] = []
        self.reads = 0

    def latest_statements(self, tenant_ids: Sequence[str]) -> Mapping[str, PruneStatement]:
        self.reads += 1
        latest: dict[str, PruneStatement] = {}
        for row in sorted(self.rows, key=lambda r: r.time_ms):
            if row.tenant_id in tenant_ids:
                latest[row.tenant_id] = parse_statement(row.note)[0]
        return latest

    def retention_days(self, tenant_ids: Sequence[str]) -> Mapping[str, int]:
        return {t: self.days.get(t, 365) for t in tenant_ids}

    def checkpoint_notes(self, tenant_id: str, signed_before_ms: int, limit: int) -> list[str]:
        notes = [
            n
            for n in self.checkpoints.get(tenant_id, [])
            if checkpoint.parse(n)[0].time_ms < signed_before_ms
        ]
        return sorted(notes, key=lambda n: -checkpoint.parse(n)[0].size)[:limit]

    def insert(self, rows: Sequence[PruneRow]) -> None:
        self.rows.extend(rows)


def _pruner(store: FakeStore, policy: PrunePolicy | None = None) -> Pruner:
    return Pruner(store, lambda _now: [KEY], lambda: RING, policy or PrunePolicy())


def test_the_pruner_signs_once_a_day_at_most_and_only_what_changed() -> None:
    store = FakeStore({"acme": [(4, DEC_1), (10, FEB_1)]})
    store.days["acme"] = 30
    pruner = _pruner(store)
    (row,) = pruner.sign_due(["acme"], FEB_1)
    # Signed 1 February with 30 days: events of checkpoints signed before 1 January (less
    # the producer's skew) are gone: the checkpoint of 4 leaves, not the one of 10.
    assert (row.tenant_id, row.below, row.retention_days, row.time_ms) == ("acme", 4, 30, FEB_1)
    assert verify_statement(row.note, RING, account="acme").below == 4
    assert pruner.sign_due(["acme"], FEB_1 + DAY_MS - 1) == []  # considered today already
    reads = store.reads
    # A restarted process reads the latest statement and waits for its day too.
    assert _pruner(store).sign_due(["acme"], FEB_1 + DAY_MS - 1) == []
    assert store.reads == reads + 1
    # A day later nothing changed: nothing signed; a lowered retention is signed.
    assert pruner.sign_due(["acme"], FEB_1 + DAY_MS) == []
    store.days["acme"] = 1
    (lowered,) = pruner.sign_due(["acme"], FEB_1 + 2 * DAY_MS)
    assert (lowered.below, lowered.retention_days) == (4, 1)
    # In March the checkpoint of 10 leaves (1 February) is past a retention of 1 day too.
    march = _ms(datetime(2027, 3, 2, tzinfo=UTC))
    assert [r.below for r in pruner.sign_due(["acme"], march)] == [10]


def test_a_young_account_gets_a_statement_of_its_retention_below_zero() -> None:
    store = FakeStore({"acme": [(3, FEB_1)]})
    (row,) = _pruner(store).sign_due(["acme"], FEB_1 + 60_000)
    assert (row.below, row.retention_days) == (0, 365)


def test_the_pruner_considers_a_bounded_number_of_accounts_per_tick() -> None:
    accounts = [f"t-{n}" for n in range(5)]
    store = FakeStore({})
    pruner = _pruner(store, PrunePolicy(max_accounts_per_tick=2))
    signed = [row.tenant_id for _ in range(3) for row in pruner.sign_due(accounts, FEB_1)]
    assert signed == sorted(accounts)


def test_no_signing_key_is_said() -> None:
    pruner = Pruner(FakeStore({}), lambda _now: [], lambda: RING)
    with pytest.raises(NoSigningKey, match="no signing key"):
        pruner.sign_due(["acme"], FEB_1)


def test_a_statement_time_is_utc_milliseconds() -> None:
    moment = datetime.fromtimestamp(FEB_1 / 1000, UTC)
    assert moment - datetime(2027, 2, 1, tzinfo=UTC) == timedelta(hours=9)
