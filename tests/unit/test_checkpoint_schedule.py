"""When the integrity appender signs checkpoints (integrity.checkpointer), with a fake clock
and an in-memory sink: grown logs every interval, heartbeats when the latest is old, the
signed notes verify, and nothing is remembered when storing fails."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from integrity import checkpoint, merkle
from integrity.checkpointer import (
    Checkpointer,
    CheckpointPolicy,
    CheckpointRow,
    CheckpointSchedule,
    NoSigningKey,
    Signed,
    reason_to_sign,
)
from integrity.keys import KeyRing, SigningKey

HOUR_MS = 3_600_000
KEY = SigningKey("auditlog-test", Ed25519PrivateKey.generate())


@pytest.mark.parametrize(
    ("size", "last", "now_ms", "reason"),
    [
        (0, None, 10, None),  # an empty log is never signed
        (1, None, 10, "grown"),  # never signed
        (5, Signed(4, 0), 10, "grown"),
        (5, Signed(5, 0), HOUR_MS - 1, None),  # same size, younger than the heartbeat
        (5, Signed(5, 0), HOUR_MS, "heartbeat"),
        (5, Signed(5, 100), HOUR_MS + 99, None),
        (5, Signed(6, 0), 10, None),  # another process signed further already
    ],
)
def test_reason_to_sign(size: int, last: Signed | None, now_ms: int, reason: str | None) -> None:
    assert reason_to_sign(size, last, now_ms, heartbeat_s=3600) == reason


def test_the_schedule_ticks_once_per_interval() -> None:
    schedule = CheckpointSchedule(60.0, now_s=1000.0)
    ticks = [
        t for t in (1000.0, 1030.0, 1059.9, 1060.0, 1061.0, 1119.0, 1120.5) if schedule.tick(t)
    ]
    assert ticks == [1060.0, 1120.5]


class _Sink:
    def __init__(self) -> None:
        self.rows: list[CheckpointRow] = []
        self.fail = False

    def insert(self, rows: Sequence[CheckpointRow]) -> None:
        if self.fail:
            raise OSError("ClickHouse is away")
        self.rows.extend(rows)


def _tree(n: int) -> merkle.Frontier:
    tree = merkle.Frontier.empty()
    for i in range(n):
        tree.append(merkle.leaf_hash(bytes([i])))
    return tree


def _checkpointer(sink: _Sink, signed: list[str] | None = None) -> Checkpointer:
    return Checkpointer(
        CheckpointPolicy(interval_s=60, heartbeat_s=3600),
        sink,
        lambda now_ms: [KEY] if KEY.valid_at(now_ms) else [],
        on_signed=lambda reason, n: (signed if signed is not None else []).extend([reason] * n),
    )


def test_grown_accounts_are_signed_then_heartbeats_after_an_hour() -> None:
    sink, reasons = _Sink(), list[str]()
    signer = _checkpointer(sink, reasons)
    acme, globex = _tree(3), _tree(1)
    signer.remember({"globex": Signed(1, 0)})
    rows = signer.sign_due([("acme", acme), ("globex", globex)], now_ms=1_000)
    assert [(r.tenant_id, r.size) for r in rows] == [("acme", 3)]
    assert signer.sign_due([("acme", acme), ("globex", globex)], now_ms=2_000) == []
    acme.append(merkle.leaf_hash(b"more"))
    rows = signer.sign_due([("acme", acme), ("globex", globex)], now_ms=HOUR_MS)
    assert [(r.tenant_id, r.size, r.time_ms) for r in rows] == [
        ("acme", 4, HOUR_MS),
        ("globex", 1, HOUR_MS),  # its checkpoint of time 0 is an hour old: a heartbeat
    ]
    assert reasons == ["grown", "grown", "heartbeat"]
    assert sink.rows[0].root == merkle.root([merkle.leaf_hash(bytes([i])) for i in range(3)])


def test_grown_only_leaves_heartbeats_for_later() -> None:
    signer = _checkpointer(_Sink())
    signer.remember({"globex": Signed(1, 0)})
    rows = signer.sign_due([("globex", _tree(1))], now_ms=2 * HOUR_MS, grown_only=True)
    assert rows == []


def test_the_notes_verify_under_the_key_for_their_account() -> None:
    sink = _Sink()
    tree = _tree(5)
    [row] = _checkpointer(sink).sign_due([("acme", tree)], now_ms=1_234)
    verified = checkpoint.verify(row.note, KeyRing([KEY.verifier()]), checkpoint.origin_for("acme"))
    assert (verified.size, verified.root, verified.time_ms) == (5, tree.root(), 1_234)


def test_a_failed_insert_is_not_remembered_and_is_signed_again() -> None:
    sink = _Sink()
    signer = _checkpointer(sink)
    sink.fail = True
    with pytest.raises(OSError, match="away"):
        signer.sign_due([("acme", _tree(2))], now_ms=1_000)
    sink.fail = False
    assert len(signer.sign_due([("acme", _tree(2))], now_ms=2_000)) == 1


def test_without_a_valid_key_nothing_is_signed() -> None:
    signer = Checkpointer(CheckpointPolicy(), _Sink(), lambda _now_ms: [])
    with pytest.raises(NoSigningKey):
        signer.sign_due([("acme", _tree(2))], now_ms=1_000)
    assert signer.sign_due([("acme", _tree(0))], now_ms=1_000) == [], "no key needed"


def test_forgotten_accounts_are_signed_as_new() -> None:
    signer = _checkpointer(_Sink())
    signer.remember({"acme": Signed(2, 1_000)})
    assert signer.sign_due([("acme", _tree(2))], now_ms=2_000) == []
    signer.forget(["acme"])
    assert len(signer.sign_due([("acme", _tree(2))], now_ms=3_000)) == 1
