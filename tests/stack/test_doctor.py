"""``auditlog doctor`` against the real broker and engine, as a process: a deployment set up
as the README says passes; a missing topic, a topic with the wrong partition count, a
migration not applied (or one newer than the code), a parked destination and a lagging
writer each give their FAIL or warn line and exit code. Each test has topics, groups, a
database and a key store of its own."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from consumers.migrations.runner import load_migrations
from deploy.stack.endpoints import StackEndpoints
from runtime.compacted_table import TableWriter
from sinks.progress import LaneProgress
from tests.cli_process import clean_environment, run_auditlog
from tests.stack.sink_support import publish, put_destinations, tenant_events, webhook_destination
from tests.unit.test_doctor import CHECKS

LATEST = max(migration.version for migration in load_migrations())
PARTITIONS = 3


class Deployment:
    """A deployment of its own on the stack: ``AUDITLOG_*`` settings naming this test's
    topics, groups, database and key store; ``settings`` the same, in process."""

    def __init__(self, endpoints: StackEndpoints, keys_dir: Path) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.values: dict[str, Any] = {
            "kafka_bootstrap": endpoints.kafka_bootstrap,
            "clickhouse_url": endpoints.clickhouse_url,
            "clickhouse_database": f"doctor_{suffix}",
            "events_topic": f"doctor-{suffix}.events",
            "dead_letter_topic": f"doctor-{suffix}.events.dlq",
            "destinations_topic": f"doctor-{suffix}.destinations",
            "sink_progress_topic": f"doctor-{suffix}.sink-progress",
            "accounts_topic": f"doctor-{suffix}.accounts",
            "writer_group_id": f"doctor-{suffix}-writer",
            "sink_group_id": f"doctor-{suffix}-sinks",
            "integrity_group_id": f"doctor-{suffix}-integrity",
            "integrity_keys_dir": str(keys_dir),
            "topic_partitions": str(PARTITIONS),
        }
        self.env = clean_environment(
            **{f"AUDITLOG_{name.upper()}": value for name, value in self.values.items()}
        )
        self.settings = AuditlogSettings(**self.values)

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return run_auditlog(list(argv), self.env)

    def ok(self, *argv: str) -> None:
        done = self.run(*argv)
        assert done.returncode == 0, done.stdout + done.stderr

    def set_up(self) -> None:
        """What the README says to do first: topics, schema, a signing key."""
        self.ok("topics", "ensure")
        self.ok("migrate")
        self.ok("keys", "generate", "--name", "doctor-test")

    def doctor(self, *argv: str) -> tuple[int, dict[str, dict[str, Any]]]:
        """Exit code and the checks by name, from ``--json``."""
        done = self.run("doctor", "--json", *argv)
        document = json.loads(done.stdout)
        assert document["exit_code"] == done.returncode
        return done.returncode, {check["name"]: check for check in document["checks"]}

    def sql(self, statement: str) -> None:
        client = clickhouse_connect.get_client(dsn=self.values["clickhouse_url"])
        try:
            client.command(statement)
        finally:
            client.close()

    def admin(self) -> AdminClient:
        return AdminClient(wiring.kafka_connection(self.settings).properties())

    def drop(self) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {self.values['clickhouse_database']}")
        names = [self.values[k] for k in self.values if k.endswith("_topic")]
        admin = self.admin()  # kept until the futures are done: a collected client fails them
        existing = admin.list_topics(timeout=30).topics
        futures = admin.delete_topics([n for n in names if n in existing])
        for future in futures.values():
            future.result(timeout=30)


@pytest.fixture
def deployment(stack_endpoints: StackEndpoints, tmp_path: Path) -> Iterator[Deployment]:
    made = Deployment(stack_endpoints, tmp_path / "keys")
    yield made
    made.drop()


def statuses(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: check["status"] for name, check in checks.items()}


def only_problem(check: dict[str, Any]) -> dict[str, str]:
    assert len(check["problems"]) == 1, check["problems"]
    problem: dict[str, str] = check["problems"][0]
    return problem


def test_a_deployment_set_up_as_the_readme_says_passes(deployment: Deployment) -> None:
    deployment.set_up()
    code, checks = deployment.doctor("--strict")
    assert code == 0, checks
    assert set(statuses(checks).values()) == {"ok"}
    assert list(checks) == CHECKS
    assert len(checks["brokers"]["details"]["brokers"]) == 1
    assert checks["clickhouse"]["details"]["newest_applied"] == LATEST
    assert checks["integrity keys"]["details"]["current"] == ["doctor-test"]
    assert checks["sinks lag"]["summary"].endswith("not in use (no offsets, no members)")
    text = deployment.run("doctor")
    assert text.returncode == 0
    assert text.stdout.splitlines()[-1] == "doctor: 0 FAIL, 0 warn, 0 skip, 9 ok: exit 0"


def test_a_missing_topic_fails(deployment: Deployment) -> None:
    deployment.set_up()
    dead_letters = deployment.values["dead_letter_topic"]
    admin = deployment.admin()
    for future in admin.delete_topics([dead_letters]).values():
        future.result(timeout=30)
    code, checks = deployment.doctor()
    assert code == 1
    assert statuses(checks)["topics"] == "FAIL"
    assert only_problem(checks["topics"]) == {
        "status": "FAIL",
        "what": f"{dead_letters}: does not exist",
        "fix": "create it with `auditlog topics ensure`",
    }
    text = deployment.run("doctor").stdout.splitlines()
    assert any(line.startswith("FAIL  topics ") for line in text)
    assert "        fix: create it with `auditlog topics ensure`" in text


def test_a_topic_with_the_wrong_partition_count_fails(deployment: Deployment) -> None:
    events = deployment.values["events_topic"]
    admin = deployment.admin()
    for future in admin.create_topics([NewTopic(events, 2)]).values():
        future.result(timeout=30)
    assert deployment.run("topics", "ensure").returncode == 4  # drift, reported
    deployment.ok("migrate")
    code, checks = deployment.doctor()
    assert code == 1
    found = checks["topics"]["problems"]
    [problem] = [p for p in found if p["what"].startswith(f"{events}: partitions:")]
    assert problem["status"] == "FAIL"
    assert problem["what"].startswith(f"{events}: partitions: expected {PARTITIONS}, found 2")
    assert "AUDITLOG_TOPIC_PARTITIONS=2" in problem["fix"]
    # Made by hand, it has the broker's defaults too: config drift, each a warning.
    assert {p["status"] for p in found if p is not problem} == {"warn"}
    assert any("retention.ms" in p["what"] for p in found)
    assert statuses(checks)["writer lag"] == "ok"  # read over the 2 partitions there are


@pytest.mark.parametrize(
    ("statement", "what", "fix"),
    [
        (
            "ALTER TABLE {db}.schema_migrations DELETE WHERE version = {latest} "
            "SETTINGS mutations_sync = 1",
            "the schema of database {db} is behind this code (migration {previous} applied",
            "run `auditlog migrate`",
        ),
        (
            "INSERT INTO {db}.schema_migrations (version, name, checksum) "
            "VALUES (99, '0099_from_a_newer_release', 'x')",
            "the schema of database {db} is newer than this code (migration 99 applied",
            "run the auditlog version that migrated it, or upgrade this one",
        ),
    ],
)
def test_a_schema_not_at_the_latest_migration_fails(
    deployment: Deployment, statement: str, what: str, fix: str
) -> None:
    deployment.set_up()
    names = {"db": deployment.values["clickhouse_database"], "latest": LATEST}
    deployment.sql(statement.format(**names))
    code, checks = deployment.doctor()
    assert code == 1
    problem = only_problem(checks["clickhouse"])
    assert problem["what"].startswith(what.format(previous=LATEST - 1, **names))
    assert problem["fix"].startswith(fix)


def test_a_parked_destination_fails_with_its_last_error(deployment: Deployment) -> None:
    deployment.set_up()
    parked = webhook_destination("acme", "https://siem.acme.io/audit")
    healthy = webhook_destination("globex", "https://siem.globex.io/audit")
    put_destinations(deployment.settings, parked, healthy)
    now = datetime.now(UTC)
    writer = TableWriter(
        wiring.kafka_connection(deployment.settings),
        deployment.settings.sink_progress_topic,
        client_id="doctor-test",
    )
    try:  # what a worker writes when a destination keeps failing past the park time
        for lane in (
            LaneProgress(
                parked.id,
                0,
                40,
                in_sync=False,
                consecutive_failures=12,
                failing_since=now,
                last_error_at=now,
                last_error="POST refused: connection refused",
                lag_records=40,
            ),
            LaneProgress(parked.id, 1, 10),
            LaneProgress(healthy.id, 0, 40, delivered_records=40, last_success_at=now),
        ):
            writer.put(lane.key, lane.to_json())
        writer.flush(30)
    finally:
        writer.close()
    code, checks = deployment.doctor()
    assert code == 1
    assert checks["destinations"]["summary"] == "2 destinations: 1 ok, 1 parked"
    problem = only_problem(checks["destinations"])
    assert problem["what"] == (
        f"{parked.id} (webhook of acme): parked, behind the group on partitions 0 (40 "
        "records), 12 failures in a row, last error: POST refused: connection refused"
    )
    assert f"`auditlog destinations test {parked.id}`" in problem["fix"]
    assert statuses(checks)["sinks lag"] == "ok"  # in use now: no lag, nothing published


def test_a_lagging_writer_warns_then_fails(deployment: Deployment) -> None:
    deployment.set_up()
    publish(deployment.settings, tenant_events("acme", 30))
    code, checks = deployment.doctor("--lag-warn", "10", "--lag-fail", "1000")
    assert code == 0
    assert statuses(checks)["writer lag"] == "warn"
    assert checks["writer lag"]["details"]["total_lag"] == 30
    assert deployment.doctor("--lag-warn", "10", "--lag-fail", "1000", "--strict")[0] == 3
    code, checks = deployment.doctor("--lag-warn", "10", "--lag-fail", "20")
    assert code == 1
    writer_group = deployment.values["writer_group_id"]
    assert only_problem(checks["writer lag"]) == {
        "status": "FAIL",
        "what": f"group {writer_group} is 30 records behind (limit 20)",
        "fix": "no process of the group is running: start `auditlog consume`",
    }
    assert statuses(checks)["integrity lag"] == "FAIL"  # the key store says it is in use
    deployment.ok("consume", "--exit-when-idle", "1")
    code, checks = deployment.doctor("--lag-warn", "10", "--lag-fail", "20")
    assert statuses(checks)["writer lag"] == "ok"
    assert checks["writer lag"]["details"]["total_lag"] == 0
