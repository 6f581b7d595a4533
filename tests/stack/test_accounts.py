"""``auditlog accounts`` and the account directory against the real broker.

The commands run in-process (``auditlog.cli.main``) with settings from environment
variables. Every test has topics of its own (events and accounts among them, created from
``wiring.topic_specs`` as ``auditlog topics ensure`` does), so the audit events of the
changes are read back from a fresh events topic.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from accounts.model import AccountFacts
from accounts.store import ConcurrentUpdateError
from auditlog import wiring
from auditlog.cli import main
from auditlog.settings import AuditlogSettings
from deploy.stack.endpoints import StackEndpoints
from runtime.compacted_table import TableError, TableWriter
from runtime.topic_admin import ensure_topics
from tests.stack.topic_reads import tenant_events, wait_for_leaders
from tests.waiting import wait_until

pytestmark = pytest.mark.stack

PARTITIONS = 2
WAIT_S = 20.0


@dataclass
class Cli:
    """Runs ``auditlog accounts`` in-process; ``run`` returns (exit code, stdout, stderr)."""

    settings: AuditlogSettings
    capsys: pytest.CaptureFixture[str]

    def run(self, *argv: str) -> tuple[int, str, str]:
        code = main(["accounts", *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *argv: str) -> str:
        code, out, err = self.run(*argv)
        assert code == 0, err
        return out

    def events(self, tenant: str, count: int) -> list[dict[str, Any]]:
        """The audit events of ``tenant`` in the events topic, in order (waits for
        ``count`` of them; returns what it found by then)."""
        settings = self.settings
        return tenant_events(
            settings.kafka_bootstrap, settings.events_topic, PARTITIONS, tenant, count, WAIT_S
        )


@pytest.fixture
def cli(
    stack_endpoints: StackEndpoints,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Cli]:
    """Topics of this test's own, created as ``auditlog topics ensure`` does; dropped after."""
    suffix = uuid.uuid4().hex[:10]
    env = {
        "AUDITLOG_KAFKA_BOOTSTRAP": stack_endpoints.kafka_bootstrap,
        "AUDITLOG_EVENTS_TOPIC": f"test.accounts.{suffix}",
        "AUDITLOG_DEAD_LETTER_TOPIC": f"test.accounts.{suffix}.dlq",
        "AUDITLOG_DESTINATIONS_TOPIC": f"test.accounts.{suffix}.destinations",
        "AUDITLOG_SINK_PROGRESS_TOPIC": f"test.accounts.{suffix}.progress",
        "AUDITLOG_ACCOUNTS_TOPIC": f"test.accounts.{suffix}.accounts",
        "AUDITLOG_TOPIC_PARTITIONS": str(PARTITIONS),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = AuditlogSettings()
    admin = AdminClient(wiring.kafka_connection(settings).properties())
    specs = wiring.topic_specs(settings)
    assert settings.accounts_topic in {spec.name for spec in specs}
    ensure_topics(admin, specs, create=True, timeout_s=30)
    wait_for_leaders(
        settings.kafka_bootstrap, {spec.name: spec.partitions for spec in specs}, WAIT_S
    )
    yield Cli(settings, capsys)
    for future in admin.delete_topics([spec.name for spec in specs]).values():
        future.result(timeout=30)


def _ids() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"acct-{suffix}", f"partner-{suffix}"


def test_enable_show_and_the_published_event(cli: Cli) -> None:
    account, _ = _ids()
    assert "audit log: not enabled" in cli.ok("show", account)
    assert "(no facts stored)" in cli.ok("show", account)

    out = cli.ok("enable", account, "--actor", "user:u-ops")
    assert f"{account}: audit log: enabled (add-on) (revision 1)" in out
    assert "published audit_log.add_on_enabled" in out

    shown = cli.ok("show", account)
    assert "audit log: enabled (add-on)" in shown
    assert "add-on: enabled" in shown
    assert "revision 1" in shown
    assert "by user:u-ops" in shown

    again = cli.ok("enable", account)
    assert "nothing changed" in again
    assert "nothing published" in again
    assert "published audit_log" not in again

    cli.ok("disable", account)
    # Exactly two events: the repeated enable published none (else the second would be it).
    events = cli.events(account, 2)
    assert [event["action"] for event in events] == [
        "audit_log.add_on_enabled",
        "audit_log.add_on_disabled",
    ]
    enabled = events[0]
    assert enabled["tenant_id"] == account
    assert enabled["category"] == "audit_access"
    assert enabled["resource"]["type"] == "audit_log"
    assert enabled["resource"]["id"] == account
    assert enabled["actor"]["type"] == "user"
    assert enabled["actor"]["id"] == "u-ops"
    assert enabled["details"] == {"previous_add_on": "unset", "audit_log_enabled": "true"}
    assert events[1]["details"] == {"previous_add_on": "true", "audit_log_enabled": "false"}
    assert "audit log: not enabled (add-on disabled)" in cli.ok("show", account)


def test_a_running_directory_sees_set_partner_without_restart(cli: Cli) -> None:
    account, partner = _ids()
    directory = wiring.account_directory(cli.settings, poll_interval_s=0.2)
    directory.start()
    try:
        assert directory.get(account) is None
        assert directory.healthy()

        out = cli.ok("set-partner", account, partner)
        assert f"audit log: enabled (managed by partner {partner})" in out
        wait_until(
            lambda: directory.accounts_managed_by(partner) == {account},
            WAIT_S,
            "the running directory to see the partner",
        )
        assert directory.get(account) == AccountFacts(account, None, partner)
        assert directory.get(account).audit_log_enabled  # type: ignore[union-attr]

        listed = cli.ok("list", "--partner", partner)
        assert listed.splitlines()[1].split() == [account, "enabled", "unset", partner, "1"]

        cli.ok("clear-partner", account)
        wait_until(
            lambda: directory.accounts_managed_by(partner) == frozenset(),
            WAIT_S,
            "the running directory to see the partner cleared",
        )
        assert directory.get(account) == AccountFacts(account, None, None)
        assert directory.healthy()
    finally:
        directory.stop()

    own = cli.events(account, 2)
    assert [event["action"] for event in own] == [
        "account.partner_assigned",
        "account.partner_removed",
    ]
    assert own[0]["details"]["partner_account_id"] == partner
    assert own[0]["category"] == "account_settings"
    partners = cli.events(partner, 2)
    assert [event["action"] for event in partners] == [
        "managed_account.added",
        "managed_account.removed",
    ]
    assert partners[0]["resource"] == {"type": "managed_account", "id": account, "name": None}


def test_a_concurrent_update_is_refused(cli: Cli) -> None:
    account, partner = _ids()
    cli.ok("enable", account)
    store = wiring.account_store(cli.settings)
    try:
        read = store.get(account)
        assert read is not None
        assert read.revision == 1
        # Another operator is faster: revision 2 lands between our read and our write.
        cli.ok("set-partner", account, partner)
        late = read.changed(
            audit_log_add_on=False,
            partner_id=None,
            updated_at=read.updated_at,
            updated_by="user:late",
        )
        with pytest.raises(ConcurrentUpdateError, match="changed meanwhile"):
            store.put(late, expected_revision=read.revision)
        stored = store.get(account)
    finally:
        store.close()
    assert stored is not None
    assert (stored.revision, stored.audit_log_add_on, stored.partner_id) == (2, True, partner)


def test_an_unreadable_value_is_reported_and_not_overwritten(cli: Cli) -> None:
    account, _ = _ids()
    writer = TableWriter(
        wiring.kafka_connection(cli.settings), cli.settings.accounts_topic, client_id="test"
    )
    writer.put(account.encode(), b'{"account_id": "' + account.encode() + b'", "revision": 0')
    writer.close()

    code, _, err = cli.run("show", account)
    assert code == 1
    assert "stored but unreadable" in err
    code, out, err = cli.run("enable", account)
    assert code == 1
    assert "not changed" in err
    assert "published " not in out
    listed_code, _, listed_err = cli.run("list")
    assert listed_code == 0
    assert f"account {account} is stored but unreadable" in listed_err


def test_a_missing_accounts_topic_is_a_clear_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = f"test.accounts.missing.{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AUDITLOG_ACCOUNTS_TOPIC", missing)
    settings = AuditlogSettings()
    directory = wiring.account_directory(settings)
    with pytest.raises(TableError, match="create it with `auditlog topics ensure`"):
        directory.start()
    directory.stop()
    account, _ = _ids()
    code, out, err = cli.run("enable", account)
    assert code == 11  # a topic missing (auditlog/exit_codes.py)
    assert "auditlog topics ensure" in err
    assert "published " not in out
