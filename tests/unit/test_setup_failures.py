"""Each setup mistake as one line (``auditlog: <where>: <what failed>: <what to try>``)
with an exit code of its own, never holding a password."""

from __future__ import annotations

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from auditlog import setup_failures
from auditlog.exit_codes import ExitCode
from auditlog.setup_failures import SetupFailure
from consumers.migrations.schema_check import SchemaCheck
from tests.unit.http_receiver import closed_port

URL = "http://reader:s3cret@ch.internal:8123"


def _schema(state: str, applied: int) -> SetupFailure | None:
    check = SchemaCheck("audit", state, applied, 4)  # type: ignore[arg-type]
    return setup_failures.schema_not_current(URL, check)


@pytest.mark.parametrize(
    ("failure", "code", "line"),
    [
        (
            setup_failures.kafka_unreachable("k1:9092 (PLAINTEXT)", 10),
            ExitCode.KAFKA_UNREACHABLE,
            "auditlog: Kafka at k1:9092 (PLAINTEXT): no broker answered (waited up to 10 s): "
            "start it (`auditlog stack up` for the local stack), or set "
            "AUDITLOG_KAFKA_BOOTSTRAP to where it runs",
        ),
        (
            setup_failures.topics_missing("k1:9092 (PLAINTEXT)", ["audit.events"]),
            ExitCode.TOPIC_MISSING,
            "auditlog: Kafka at k1:9092 (PLAINTEXT): topic audit.events does not exist: "
            "create the topics with `auditlog topics ensure`",
        ),
        (
            _schema("missing", 0),
            ExitCode.SCHEMA_BEHIND,
            "auditlog: ClickHouse at http://reader:***@ch.internal:8123: database audit has "
            "no schema: run `auditlog migrate`",
        ),
        (
            _schema("behind", 3),
            ExitCode.SCHEMA_BEHIND,
            "auditlog: ClickHouse at http://reader:***@ch.internal:8123: the schema of "
            "database audit is behind this code (migration 3 applied, 4 expected): run "
            "`auditlog migrate`",
        ),
        (
            _schema("ahead", 5),
            ExitCode.SCHEMA_AHEAD,
            "auditlog: ClickHouse at http://reader:***@ch.internal:8123: the schema of "
            "database audit is newer than this code (migration 5 applied, this code knows up "
            "to 4): run the auditlog version that migrated it, or upgrade this one",
        ),
        (
            setup_failures.port_in_use("viewer", "127.0.0.1", 8080, "AUDITLOG_VIEWER_PORT"),
            ExitCode.PORT_IN_USE,
            "auditlog: viewer at 127.0.0.1:8080: the port is in use by another process: stop "
            "that process, or set AUDITLOG_VIEWER_PORT to a free port (0: any free port)",
        ),
        (
            setup_failures.kafka_refused(
                "Kafka at k1:9096 (SASL_SSL, PLAIN as key) refused the connection: SASL "
                "authentication error; check AUDITLOG_KAFKA_SASL_PASSWORD"
            ),
            ExitCode.CREDENTIALS_REFUSED,
            "auditlog: Kafka at k1:9096 (SASL_SSL, PLAIN as key) refused the connection: SASL "
            "authentication error: check AUDITLOG_KAFKA_SASL_PASSWORD",
        ),
        (
            setup_failures.clickhouse_refused(
                URL, OperationalError("Code: 516. DB::Exception: reader: Authentication failed")
            ),
            ExitCode.CREDENTIALS_REFUSED,
            "auditlog: ClickHouse at http://reader:***@ch.internal:8123: the user name or "
            "password was refused: check the user and password in AUDITLOG_CLICKHOUSE_URL",
        ),
    ],
)
def test_each_mistake_is_one_line_with_its_code(
    failure: SetupFailure | None, code: ExitCode, line: str
) -> None:
    assert failure is not None
    assert (failure.code, failure.line) == (code, line)
    assert "s3cret" not in failure.line


def test_a_current_schema_is_no_failure() -> None:
    assert _schema("current", 4) is None


def test_setup_codes_are_distinct_from_each_other_and_from_command_outcomes() -> None:
    setup = [code for code in ExitCode if 10 <= code < 100]
    assert len(setup) == len(set(setup))
    assert all(code not in range(7) for code in setup)
    assert int(ExitCode.INTERRUPTED) == 130


def test_clickhouse_not_answering_is_recognised_in_the_drivers_error() -> None:
    with closed_port() as refusing:
        port = refusing.getsockname()[1]
        url = f"http://reader:s3cret@127.0.0.1:{port}"
        with pytest.raises(OperationalError) as raised:
            clickhouse_connect.get_client(dsn=url, connect_timeout=2)
    failure = setup_failures.clickhouse_unreachable(url, raised.value)
    assert failure is not None
    assert failure.code == ExitCode.CLICKHOUSE_UNREACHABLE
    assert failure.line.startswith(
        f"auditlog: ClickHouse at http://reader:***@127.0.0.1:{port}: not answering "
        "(connection refused): "
    )


def test_other_clickhouse_errors_are_not_setup_failures() -> None:
    error = OperationalError("Code: 60. DB::Exception: Table audit.x does not exist")
    assert setup_failures.clickhouse_unreachable(URL, error) is None
    assert setup_failures.clickhouse_refused(URL, error) is None
