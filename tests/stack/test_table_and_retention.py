"""The audit tables on the real engine: migrations, the events table, per-tenant TTL
retention, and the retention commands end to end (ClickHouse and Kafka)."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import fastavro
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from auditlog import wiring
from auditlog.cli import main
from auditlog.settings import AuditlogSettings
from consumers.migrations import apply_pending, migration_status
from consumers.retention import get_retention, list_retention, set_retention
from deploy.stack.endpoints import StackEndpoints
from runtime.topic_admin import ensure_topics
from schemas.versions import current
from schemas.wire import Decoder

pytestmark = pytest.mark.stack

SCHEMA_V2 = Path(__file__).resolve().parents[2] / "schemas" / "avro" / "audit_event.v2.avsc"
# The Avro schema's top-level fields: the table's columns of the same names.
INSERT_COLUMNS = [field["name"] for field in current().schema["fields"]]


@pytest.fixture
def client(stack_endpoints: StackEndpoints) -> Client:
    return clickhouse_connect.get_client(dsn=stack_endpoints.clickhouse_url)


@pytest.fixture
def database(client: Client) -> Iterator[str]:
    """A database of this test's own, migrated."""
    name = f"audit_{uuid.uuid4().hex[:10]}"
    apply_pending(client, database=name)
    yield name
    client.command(f"DROP DATABASE IF EXISTS {name}")


def _row(tenant: str, occurred_at: datetime, n: int = 0) -> list[Any]:
    return [
        uuid.uuid4(),
        tenant,
        occurred_at,
        "recipe.stopped",
        "recipes",
        ("user", f"u-{n}", None, "ann@acme.io"),
        ("recipe", f"r-{n}", "Onboard new hires"),
        ("w-1", None, "prod"),
        ("203.0.113.7", None, None, f"s-{n}"),
        ("success", None),
        {"reason": "manual", "n": str(n)},
        [("schedule.cron", "0 * * * *", None)],
        "recipes-service",
    ]


def _insert(client: Client, database: str, rows: list[list[Any]]) -> None:
    client.insert(f"{database}.events", rows, column_names=INSERT_COLUMNS)


def _counts(client: Client, database: str) -> dict[tuple[str, int], int]:
    """(tenant, age in days rounded) -> rows."""
    rows = client.query(
        f"SELECT tenant_id, toUInt32(round(dateDiff('hour', occurred_at, now64(3)) / 24)), "
        f"count() FROM {database}.events GROUP BY ALL"
    ).result_rows
    return {(str(t), int(age)): int(n) for t, age, n in rows}


def test_migrating_twice_is_a_no_op(client: Client, database: str) -> None:
    assert apply_pending(client, database=database) == []
    status = migration_status(client, database=database)
    assert status.pending == []
    assert [m.name for m, _ in status.applied] == [
        "0001_tenant_retention",
        "0002_events",
        "0003_writer_progress",
        "0004_viewer_indexes",
        "0005_integrity",
        "0006_integrity_prune",
    ]
    assert client.command(f"SELECT count() FROM {database}.schema_migrations") == 6
    ddl = str(client.command(f"SHOW CREATE TABLE {database}.events"))
    for part in ("TTL", "idx_actor_id", "idx_resource_id", "idx_action", "ReplacingMergeTree"):
        assert part in ddl


def test_table_accepts_native_rows_with_tuples_maps_arrays(client: Client, database: str) -> None:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    _insert(client, database, [_row("acme", at, n) for n in range(3)])
    rows = client.query(
        f"SELECT actor.id, resource.name, workspace.environment, request.session_id, "
        f"outcome.status, details['n'], changes[1].field, retention_days, retention_class, "
        f"ingested_at > occurred_at FROM {database}.events ORDER BY actor.id"
    ).result_rows
    assert rows[0] == (
        "u-0",
        "Onboard new hires",
        "prod",
        "s-0",
        "success",
        "0",
        "schedule.cron",
        365,
        365,
        True,
    )
    assert len(rows) == 3
    # The skip index on a tuple element is used.
    plan = "\n".join(
        str(r[0])
        for r in client.query(
            f"EXPLAIN indexes = 1 SELECT count() FROM {database}.events "
            "WHERE tenant_id = 'acme' AND actor.id = 'u-1'"
        ).result_rows
    )
    assert "idx_actor_id" in plan


def test_table_accepts_avro_blocks_of_the_event_schema(client: Client, database: str) -> None:
    """As the writer inserts: raw Avro, columns mapped by name, the rest from DEFAULTs."""
    schema = fastavro.parse_schema(json.loads(SCHEMA_V2.read_text()))
    at = datetime.now(UTC) - timedelta(days=2)
    records: list[dict[str, Any]] = [
        {
            "event_id": str(uuid.uuid4()),
            "tenant_id": "avro-tenant",
            "occurred_at": at,
            "action": "user.login",
            "category": "authentication",
            "actor": {"type": "user", "id": f"u-{n}", "name": None, "email": None},
            "resource": {"type": "user", "id": f"u-{n}", "name": None},
            "workspace": {"id": None, "name": None, "environment": None},
            "request": {"ip": "10.0.0.1", "user_agent": None, "request_id": None},
            "outcome": {"status": "failure", "reason": "bad password"},
            "details": {"method": "password"},
            "changes": [],
            "source": None,
        }
        for n in range(100)
    ]
    block = io.BytesIO()
    fastavro.writer(block, schema, records)
    set_retention(client, "avro-tenant", 90, database=database)
    client.raw_insert(
        f"{database}.events",
        column_names=INSERT_COLUMNS,
        insert_block=block.getvalue(),
        fmt="Avro",
    )
    assert client.query(
        f"SELECT count(), any(actor.type), any(outcome.reason), any(retention_days), "
        f"any(retention_class) FROM {database}.events WHERE tenant_id = 'avro-tenant'"
    ).result_rows == [(100, "user", "bad password", 90, 90)]


def test_retention_per_tenant_applies_to_stored_rows(client: Client, database: str) -> None:
    now = datetime.now(UTC)
    ages = (10, 100, 300)
    for tenant in ("tenant-a", "tenant-b"):
        set_retention(client, tenant, 400, database=database)
    _insert(
        client,
        database,
        [_row(t, now - timedelta(days=age)) for t in ("tenant-a", "tenant-b") for age in ages],
    )
    # Rows inserted for a tenant never set keep the default.
    _insert(client, database, [_row("tenant-c", now - timedelta(days=300))])
    assert _counts(client, database) == {
        **{(t, age): 1 for t in ("tenant-a", "tenant-b") for age in ages},
        ("tenant-c", 300): 1,
    }

    # A shortened: its 300-day-old row is past the new retention and goes; B keeps its own.
    change = set_retention(client, "tenant-a", 200, database=database)
    assert (change.old_days, change.new_days) == (400, 200)
    client.command(f"OPTIMIZE TABLE {database}.events FINAL")
    counts = _counts(client, database)
    assert ("tenant-a", 300) not in counts
    assert counts[("tenant-a", 100)] == 1
    assert counts[("tenant-b", 300)] == 1

    # B shortened below 100 days: its older rows go, the 10-day-old row stays.
    set_retention(client, "tenant-b", 60, database=database)
    client.command(f"OPTIMIZE TABLE {database}.events FINAL")
    counts = _counts(client, database)
    assert {k: v for k, v in counts.items() if k[0] == "tenant-b"} == {("tenant-b", 10): 1}

    # A lengthened: stored rows carry the new value; new rows get it at insert.
    set_retention(client, "tenant-a", 3650, database=database)
    _insert(client, database, [_row("tenant-a", now - timedelta(days=1))])
    days = client.query(
        f"SELECT DISTINCT retention_days FROM {database}.events WHERE tenant_id = 'tenant-a'"
    ).result_rows
    assert days == [(3650,)]
    assert _counts(client, database)[("tenant-c", 300)] == 1  # untouched by the others
    assert get_retention(client, "tenant-c", database=database).is_default
    assert [(r.tenant_id, r.retention_days) for r in list_retention(client, database=database)] == [
        ("tenant-a", 3650),
        ("tenant-b", 60),
    ]


def test_rows_already_expired_are_dropped_by_a_ttl_merge(client: Client, database: str) -> None:
    """Parts whose every row expired go whole; survivors of other tenants stay."""
    set_retention(client, "short", 30, database=database)
    old = datetime.now(UTC) - timedelta(days=150)
    _insert(client, database, [_row("short", old, n) for n in range(50)])
    _insert(client, database, [_row("long", old, n) for n in range(50)])
    client.command(f"OPTIMIZE TABLE {database}.events FINAL")
    assert _counts(client, database) == {("long", 150): 50}


def test_retention_commands_round_trip_and_publish_the_change(
    client: Client,
    stack_endpoints: StackEndpoints,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = f"audit.events.retention-{uuid.uuid4().hex[:8]}"
    for name, value in {
        "AUDITLOG_CLICKHOUSE_URL": stack_endpoints.clickhouse_url,
        "AUDITLOG_KAFKA_BOOTSTRAP": stack_endpoints.kafka_bootstrap,
        "AUDITLOG_EVENTS_TOPIC": topic,
        "AUDITLOG_DEAD_LETTER_TOPIC": topic + ".dlq",
        "AUDITLOG_TOPIC_PARTITIONS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    settings = AuditlogSettings()
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    ensure_topics(admin, wiring.topic_specs(settings), create=True, timeout_s=30)

    assert main(["migrate"]) == 0
    assert main(["migrate", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "applied  0002_events" in out
    assert "up to date" in out

    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    assert main(["retention", "show", tenant]) == 0
    assert capsys.readouterr().out == f"{tenant}: 365 days (default)\n"
    assert main(["retention", "set", tenant, "0"]) == 2
    assert main(["retention", "set", tenant, "45", "--actor", "user:u-admin"]) == 0
    out = capsys.readouterr().out
    assert f"{tenant}: retention 365 -> 45 days" in out
    assert "published audit_log.retention_changed" in out
    assert main(["retention", "show", tenant]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{tenant}: 45 days (set ")
    assert "by user:u-admin" in out
    assert main(["retention", "show"]) == 0
    assert f"{tenant}: 45 days" in capsys.readouterr().out

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    try:
        while not events and time.monotonic() < deadline:
            for msg in consumer.consume(10, timeout=0.5):
                assert msg.error() is None
                payload = msg.value()
                assert isinstance(payload, bytes)
                events.append(Decoder().decode(payload))
    finally:
        consumer.close()
    assert len(events) == 1
    event = events[0]
    assert event["tenant_id"] == tenant
    assert event["action"] == "audit_log.retention_changed"
    assert event["category"] == "audit_streaming"
    assert event["resource"]["type"] == "audit_log"
    assert event["actor"]["type"] == "user"
    assert event["actor"]["id"] == "u-admin"
    assert event["details"] == {"old_retention_days": "365", "new_retention_days": "45"}
