"""Account facts without a broker: the record, the changes and their events, the
directory over a fake table, and the command's input checks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from accounts.changes import change_events, next_record
from accounts.directory import AccountChange, AccountDirectory
from accounts.model import AccountFacts
from accounts.record import MAX_PARTNER_SPANS, AccountRecord, decode_record, encode_record
from accounts.store import parse_table
from auditlog import startup_checks, wiring
from auditlog.cli import main
from auditlog.settings import AuditlogSettings
from runtime.compacted_table import Change, TableError
from tests.waiting import wait_until

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
ACTOR = {"type": "user", "id": "u-ops"}
WAIT_S = 10.0


def _record(account_id: str, revision: int = 1, **facts: object) -> AccountRecord:
    return AccountRecord.model_validate(
        {
            "account_id": account_id,
            "revision": revision,
            "updated_at": NOW,
            "updated_by": "user:u-ops",
            **facts,
        }
    )


class FakeTable:
    """A compacted table in memory. ``write`` queues a change; ``changes`` waits for one
    up to its timeout (as the real table does), so the directory's thread does not spin."""

    def __init__(self) -> None:
        self.table: dict[bytes, bytes] = {}
        self.pending: list[Change] = []
        self.fail_next: Exception | None = None
        self.missing = False
        self.closed = False
        self._ready = threading.Condition()

    def write(self, key: str, value: bytes | None) -> None:
        with self._ready:
            self.pending.append((key.encode(), value))
            self._ready.notify_all()

    def put(self, record: AccountRecord) -> None:
        self.write(record.account_id, encode_record(record))

    def load(self, timeout_s: float = 30.0) -> dict[bytes, bytes]:
        if self.missing:
            raise TableError("topic t does not exist: create it with `auditlog topics ensure`")
        with self._ready:
            for key, value in self.pending:
                if value is None:
                    self.table.pop(key, None)
                else:
                    self.table[key] = value
            self.pending = []
            return dict(self.table)

    def changes(self, timeout_s: float = 0.0) -> list[Change]:
        with self._ready:
            if not self.pending and self.fail_next is None:
                self._ready.wait(timeout_s)
            if self.fail_next is not None:
                error, self.fail_next = self.fail_next, None
                raise error
            found, self.pending = self.pending, []
            return found

    def fail(self, error: Exception) -> None:
        with self._ready:
            self.fail_next = error
            self._ready.notify_all()

    def close(self) -> None:
        self.closed = True


# --- the record -----------------------------------------------------------------------------


def test_a_record_round_trips_and_gives_the_facts() -> None:
    record = _record("acme", audit_log_add_on=None, partner_id="partner-1")
    decoded = decode_record(b"acme", encode_record(record))
    assert decoded == record
    assert decoded.facts == AccountFacts("acme", None, "partner-1")
    assert decoded.facts.audit_log_enabled


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"acme", b"{", "not an account record"),
        (b"acme", b'{"account_id": "acme"}', "revision"),
        (b"other", encode_record(_record("acme")), "not its key"),
        (b"\xff", encode_record(_record("acme")), "not UTF-8"),
        (b"acme", encode_record(_record("acme"))[:-1] + b', "future": 1}', "future"),
        (
            b"acme",
            encode_record(_record("acme")).replace(b'"partner_id":null', b'"partner_id":"a b"'),
            "partner_id",
        ),
        (
            b"acme",
            encode_record(_record("acme")).replace(b'"partner_id":null', b'"partner_id":"acme"'),
            "its own partner",
        ),
    ],
)
def test_a_damaged_value_is_refused_with_a_reason(key: bytes, value: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_record(key, value)


def test_parse_table_skips_damaged_values_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        found, invalid = parse_table(
            {b"acme": encode_record(_record("acme")), b"broken": b"not json"}, "t"
        )
    assert list(found) == ["acme"]
    assert list(invalid) == ["broken"]
    assert "not json" not in invalid["broken"]
    assert "broken" in caplog.text


@pytest.mark.parametrize(
    ("facts", "status", "enabled"),
    [
        (AccountFacts("a"), "not enabled", False),
        (AccountFacts("a", True), "enabled (add-on)", True),
        (AccountFacts("a", None, "p"), "enabled (managed by partner p)", True),
        (AccountFacts("a", False, "p"), "not enabled (add-on disabled)", False),
        (AccountFacts("a", True, "p"), "enabled (add-on)", True),
    ],
)
def test_the_effective_state_in_words(facts: AccountFacts, status: str, enabled: bool) -> None:
    assert facts.audit_log_status == status
    assert facts.audit_log_enabled is enabled


# --- changes and their events -------------------------------------------------------------


def test_the_first_change_writes_revision_1_and_the_next_one_counts_on() -> None:
    first = next_record(None, "acme", updated_at=NOW, updated_by="u", audit_log_add_on=True)
    assert first is not None
    assert (first.revision, first.audit_log_add_on, first.partner_id) == (1, True, None)
    second = next_record(first, "acme", updated_at=NOW, updated_by="u", partner_id="p1")
    assert second is not None
    assert (second.revision, second.audit_log_add_on, second.partner_id) == (2, True, "p1")


def test_a_change_that_changes_nothing_writes_nothing() -> None:
    stored = _record("acme", 3, audit_log_add_on=True, partner_id="p1")
    assert (
        next_record(stored, "acme", updated_at=NOW, updated_by="u", audit_log_add_on=True) is None
    )
    assert next_record(stored, "acme", updated_at=NOW, updated_by="u", partner_id="p1") is None
    cleared = _record("solo", 1, audit_log_add_on=False)
    assert next_record(cleared, "solo", updated_at=NOW, updated_by="u", partner_id=None) is None


def test_enabling_publishes_one_event_of_the_account() -> None:
    after = _record("acme", audit_log_add_on=True)
    [event] = change_events(None, after, actor=ACTOR, occurred_at=NOW)
    assert event["tenant_id"] == "acme"
    assert event["action"] == "audit_log.add_on_enabled"
    assert event["resource"] == {"type": "audit_log", "id": "acme"}
    assert event["details"] == {"previous_add_on": "unset", "audit_log_enabled": "true"}
    assert event["actor"] == ACTOR


def test_moving_to_another_partner_tells_the_account_and_both_partners() -> None:
    before = _record("acme", 1, partner_id="p1")
    after = _record("acme", 2, partner_id="p2")
    events = change_events(before, after, actor=ACTOR, occurred_at=NOW)
    assert [(e["tenant_id"], e["action"]) for e in events] == [
        ("acme", "account.partner_assigned"),
        ("p1", "managed_account.removed"),
        ("p2", "managed_account.added"),
    ]
    assert events[0]["details"] == {
        "audit_log_enabled": "true",
        "partner_account_id": "p2",
        "previous_partner_account_id": "p1",
    }
    assert events[2]["resource"] == {"type": "managed_account", "id": "acme"}
    assert events[2]["details"] == {"partner_account_id": "p2", "managed_account_id": "acme"}


def test_clearing_the_partner_tells_the_account_and_the_former_partner() -> None:
    before = _record("acme", 1, partner_id="p1")
    after = _record("acme", 2)
    events = change_events(before, after, actor=ACTOR, occurred_at=NOW)
    assert [(e["tenant_id"], e["action"]) for e in events] == [
        ("acme", "account.partner_removed"),
        ("p1", "managed_account.removed"),
    ]
    assert events[0]["details"] == {"audit_log_enabled": "false", "partner_account_id": "p1"}


def test_every_event_passes_the_producers_validation() -> None:
    validator = wiring.validator(AuditlogSettings())
    before = _record("acme", 1, partner_id="p1")
    after = _record("acme", 2, partner_id="p2", audit_log_add_on=False)
    events = change_events(before, after, actor=ACTOR, occurred_at=datetime.now(UTC))
    assert len(events) == 4
    for event in events:
        validator.validate(event)


# --- the directory over a fake table ------------------------------------------------------


@pytest.fixture
def table() -> FakeTable:
    return FakeTable()


@pytest.fixture
def directory(table: FakeTable) -> Iterator[AccountDirectory]:
    table.put(_record("acme", audit_log_add_on=True))
    table.put(_record("c1", partner_id="p1"))
    table.put(_record("c2", partner_id="p1"))
    found = AccountDirectory(table, topic="t", poll_interval_s=0.05)
    yield found
    found.stop()


def test_start_loads_the_table_and_reads_need_no_io(
    table: FakeTable, directory: AccountDirectory
) -> None:
    directory.start()
    assert directory.get("acme") == AccountFacts("acme", True, None)
    assert directory.get("nobody") is None
    assert directory.accounts_managed_by("p1") == frozenset({"c1", "c2"})
    assert directory.accounts_managed_by("p2") == frozenset()
    assert [facts.account_id for facts in directory.all()] == ["acme", "c1", "c2"]
    assert directory.healthy()


def test_a_missing_topic_is_a_clear_error_at_start(table: FakeTable) -> None:
    table.missing = True
    directory = AccountDirectory(table, topic="t")
    with pytest.raises(TableError, match="auditlog topics ensure"):
        directory.start()
    assert not directory.healthy()


def test_a_change_reaches_a_started_directory_and_is_handed_to_on_change(
    table: FakeTable,
) -> None:
    seen: list[AccountChange] = []
    directory = AccountDirectory(table, topic="t", poll_interval_s=0.05, on_change=seen.extend)
    directory.start()
    try:
        table.put(_record("c3", partner_id="p1"))
        wait_until(lambda: directory.get("c3") is not None, WAIT_S, "c3 in the directory")
        assert directory.accounts_managed_by("p1") == frozenset({"c3"})
        assert directory.get("c3") == AccountFacts("c3", None, "p1")
        wait_until(lambda: len(seen) == 1, WAIT_S, "the change handed to on_change")
        assert seen[0].before is None
        assert seen[0].account_id == "c3"
    finally:
        directory.stop()
    assert table.closed
    assert not directory.healthy()


def test_a_tombstone_removes_the_account(table: FakeTable, directory: AccountDirectory) -> None:
    directory.start()
    table.write("c1", None)
    wait_until(lambda: directory.get("c1") is None, WAIT_S, "c1 removed")
    assert directory.accounts_managed_by("p1") == frozenset({"c2"})


def test_a_damaged_value_drops_the_account_until_a_readable_one_comes(
    table: FakeTable, directory: AccountDirectory
) -> None:
    """Fail closed: the unreadable value may be a revocation of the grant acme had."""
    directory.load()
    assert directory.get("acme") == AccountFacts("acme", True, None)
    table.write("acme", b'{"account_id": "acme", "revision": "garbage"')
    table.put(_record("c1", 2, partner_id="p2"))  # a later, readable change
    changes = directory.refresh()
    assert [(change.account_id, change.removed) for change in changes] == [
        ("acme", True),
        ("c1", False),
    ]
    assert directory.get("acme") is None  # no facts: the audit log is not enabled
    assert "acme" in directory.invalid
    assert directory.accounts_managed_by("p2") == frozenset({"c1"})
    table.put(_record("acme", 2, audit_log_add_on=False))
    directory.refresh()
    assert directory.get("acme") == AccountFacts("acme", False, None)
    assert "acme" not in directory.invalid


def test_a_rewrite_of_the_same_record_is_no_change(
    table: FakeTable, directory: AccountDirectory
) -> None:
    directory.load()
    table.put(_record("acme", audit_log_add_on=True))
    assert directory.refresh() == []


def test_a_read_error_is_reported_then_cleared_while_reads_keep_answering(
    table: FakeTable, directory: AccountDirectory
) -> None:
    directory.start()
    table.fail(TableError("broker gone"))
    wait_until(lambda: directory.last_error == "broker gone", WAIT_S, "the error recorded")
    assert not directory.healthy()
    assert directory.get("acme") == AccountFacts("acme", True, None)
    table.put(_record("c9"))
    wait_until(lambda: directory.get("c9") is not None, WAIT_S, "reading again")
    wait_until(directory.healthy, WAIT_S, "healthy again")
    assert directory.last_error is None


def test_a_stale_directory_is_not_healthy(table: FakeTable) -> None:
    now = [100.0]
    directory = AccountDirectory(table, stale_after_s=5.0, clock=lambda: now[0])
    directory.load()
    # Not started: not running, so not healthy, however fresh.
    health = directory.health()
    assert (health.running, health.healthy, health.seconds_since_read) == (False, False, 0.0)
    now[0] = 106.0
    assert directory.health().seconds_since_read == 6.0


# --- the command's input checks (no Kafka is contacted) -----------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["enable", "bad id"], "account: 'bad id' is not a tenant id"),
        (["disable", ""], "account: '' is not a tenant id"),
        (["set-partner", "acme", "p/1"], "partner: 'p/1' is not a tenant id"),
        (["set-partner", "acme", "acme"], "cannot be its own partner"),
        (["clear-partner", "acme", "--actor", "robot"], "--actor 'robot'"),
        (["show", "x" * 129], "is not a tenant id"),
        (["list", "--partner", "p q"], "partner: 'p q' is not a tenant id"),
    ],
)
def test_invalid_input_exits_2_with_one_line_before_kafka(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_kafka(*args: object, **kwargs: object) -> None:
        raise AssertionError("Kafka was contacted")

    monkeypatch.setattr(startup_checks, "check_kafka", no_kafka)
    monkeypatch.setattr(wiring, "account_store", no_kafka)
    assert main(["accounts", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err


def test_partner_changes_are_kept_as_spans_of_who_managed_the_account_since_when() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    record = next_record(None, "acme", updated_at=at, updated_by="t", partner_id="p1")
    assert record is not None
    assert [(s.partner_id, s.since) for s in record.partner_history] == [("p1", at)]
    flag = next_record(
        record, "acme", updated_at=at + timedelta(1), updated_by="t", audit_log_add_on=True
    )
    assert flag is not None
    assert flag.partner_history == record.partner_history  # not a partner change
    # Another operator's clock behind: the span never starts before the previous one.
    moved = next_record(
        flag, "acme", updated_at=at - timedelta(hours=1), updated_by="t", partner_id="p2"
    )
    assert moved is not None
    assert [(s.partner_id, s.since) for s in moved.partner_history] == [("p1", at), ("p2", at)]
    for n in range(MAX_PARTNER_SPANS + 5):
        changed = next_record(
            moved,
            "acme",
            updated_at=at + timedelta(minutes=n + 1),
            updated_by="t",
            partner_id=None if n % 2 else "p3",
        )
        assert changed is not None
        moved = changed
    assert len(moved.partner_history) == MAX_PARTNER_SPANS
    assert moved.partner_history[-1].partner_id == moved.partner_id
