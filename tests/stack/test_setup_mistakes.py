"""A newcomer's setup mistakes against the real broker and engine, as processes: commands
run before ``auditlog topics ensure`` or ``auditlog migrate``, a schema left behind or
migrated by a newer release, the metrics port taken. Each answers one line with the
mistake's own exit code (auditlog/exit_codes.py) and nothing else on stderr; the mistakes
that need no running service are in tests/unit/test_setup_mistakes.py."""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Iterator

import clickhouse_connect
import pytest

from auditlog.exit_codes import ExitCode
from consumers.migrations.runner import load_migrations
from deploy.stack.endpoints import StackEndpoints
from tests.cli_process import clean_environment, run_auditlog
from tests.unit.test_setup_mistakes import one_line

LATEST = max(migration.version for migration in load_migrations())

DEV_SECRET = "d" * 40


class Newcomer:
    """Runs ``auditlog`` commands with settings of its own: a database and topics no
    other test uses, so each test starts from nothing."""

    def __init__(self, endpoints: StackEndpoints) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.database = f"setup_{suffix}"
        self.clickhouse_url = endpoints.clickhouse_url
        self.env = clean_environment(
            AUDITLOG_KAFKA_BOOTSTRAP=endpoints.kafka_bootstrap,
            AUDITLOG_CLICKHOUSE_URL=endpoints.clickhouse_url,
            AUDITLOG_CLICKHOUSE_DATABASE=self.database,
            AUDITLOG_EVENTS_TOPIC=f"setup-{suffix}.events",
            AUDITLOG_DEAD_LETTER_TOPIC=f"setup-{suffix}.events.dlq",
            AUDITLOG_DESTINATIONS_TOPIC=f"setup-{suffix}.destinations",
            AUDITLOG_SINK_PROGRESS_TOPIC=f"setup-{suffix}.sink-progress",
            AUDITLOG_ACCOUNTS_TOPIC=f"setup-{suffix}.accounts",
            AUDITLOG_WRITER_GROUP_ID=f"setup-{suffix}-writer",
            AUDITLOG_SINK_GROUP_ID=f"setup-{suffix}-sinks",
            AUDITLOG_TOPIC_PARTITIONS="1",
            AUDITLOG_METRICS_PORT="0",
            AUDITLOG_VIEWER_DEV_SECRET=DEV_SECRET,
        )

    def run(self, *argv: str, **environment: str) -> subprocess.CompletedProcess[str]:
        return run_auditlog(list(argv), {**self.env, **environment})

    def ok(self, *argv: str) -> None:
        done = self.run(*argv)
        assert done.returncode == 0, done.stderr

    def set_up(self) -> None:
        """What the README says to do first: create the topics, migrate ClickHouse."""
        self.ok("topics", "ensure")
        self.ok("migrate")

    def sql(self, statement: str) -> None:
        client = clickhouse_connect.get_client(dsn=self.clickhouse_url)
        try:
            client.command(statement)
        finally:
            client.close()

    def where(self) -> str:
        return f"auditlog: ClickHouse at {self.clickhouse_url}: "


@pytest.fixture
def newcomer(stack_endpoints: StackEndpoints) -> Iterator[Newcomer]:
    person = Newcomer(stack_endpoints)
    yield person
    person.sql(f"DROP DATABASE IF EXISTS {person.database}")


@pytest.mark.parametrize(
    ("argv", "topics"),
    [
        (["produce", "-"], "topic {p}.events does not exist"),
        (["consume", "--exit-when-idle", "1"], "topics {p}.events, {p}.events.dlq do not exist"),
        (["destinations", "list"], "topics {p}.destinations, {p}.events do not exist"),
        (["accounts", "list"], "topic {p}.accounts does not exist"),
    ],
    ids=" ".join,
)
def test_topics_not_ensured(newcomer: Newcomer, argv: list[str], topics: str) -> None:
    done = newcomer.run(*argv)
    prefix = newcomer.env["AUDITLOG_EVENTS_TOPIC"].removesuffix(".events")
    assert done.returncode == ExitCode.TOPIC_MISSING
    assert one_line(done) == (
        f"auditlog: Kafka at {newcomer.env['AUDITLOG_KAFKA_BOOTSTRAP']} (PLAINTEXT): "
        f"{topics.format(p=prefix)}: create the topics with `auditlog topics ensure`"
    )


@pytest.mark.parametrize(
    "argv",
    [["consume", "--exit-when-idle", "1"], ["retention", "show"], ["serve", "--port", "0"]],
    ids=" ".join,
)
def test_schema_not_migrated(newcomer: Newcomer, argv: list[str]) -> None:
    newcomer.ok("topics", "ensure")
    done = newcomer.run(*argv)
    assert done.returncode == ExitCode.SCHEMA_BEHIND
    said = [line for line in done.stderr.splitlines() if line.startswith("auditlog:")]
    assert said == [
        f"{newcomer.where()}database {newcomer.database} has no schema: run `auditlog migrate`"
    ]
    assert "Traceback" not in done.stderr


def test_schema_behind_the_code_then_migrated(newcomer: Newcomer) -> None:
    newcomer.set_up()
    newcomer.sql(
        f"ALTER TABLE {newcomer.database}.schema_migrations DELETE WHERE version = {LATEST} "
        "SETTINGS mutations_sync = 1"
    )
    for argv in (["consume", "--exit-when-idle", "1"], ["retention", "show"]):
        done = newcomer.run(*argv)
        assert done.returncode == ExitCode.SCHEMA_BEHIND
        assert one_line(done) == (
            f"{newcomer.where()}the schema of database {newcomer.database} is behind this "
            f"code (migration {LATEST - 1} applied, {LATEST} expected): run `auditlog migrate`"
        )
    newcomer.ok("migrate")
    newcomer.ok("retention", "show")


def test_schema_newer_than_the_code(newcomer: Newcomer) -> None:
    newcomer.set_up()
    newcomer.sql(
        f"INSERT INTO {newcomer.database}.schema_migrations (version, name, checksum) "
        "VALUES (99, '0099_from_a_newer_release', 'x')"
    )
    for argv in (["consume", "--exit-when-idle", "1"], ["migrate"], ["retention", "show"]):
        done = newcomer.run(*argv)
        assert done.returncode == ExitCode.SCHEMA_AHEAD
        assert one_line(done) == (
            f"{newcomer.where()}the schema of database {newcomer.database} is newer than "
            f"this code (migration 99 applied, this code knows up to {LATEST}): run the auditlog "
            "version that migrated it, or upgrade this one"
        )


def test_metrics_port_taken(newcomer: Newcomer) -> None:
    newcomer.set_up()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for argv in (["consume", "--exit-when-idle", "1"], ["sink", "--exit-when-idle", "1"]):
            done = newcomer.run(*argv, AUDITLOG_METRICS_PORT=str(port))
            assert done.returncode == ExitCode.PORT_IN_USE
            assert one_line(done) == (
                f"auditlog: metrics endpoint at 127.0.0.1:{port}: the port is in use by "
                "another process: stop that process, or set AUDITLOG_METRICS_PORT to a free "
                "port (0: any free port)"
            )
