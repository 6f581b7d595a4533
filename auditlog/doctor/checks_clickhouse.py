"""ClickHouse: answering, taking our credentials, and holding exactly the schema this code's
migrations make (no migration missing, none newer than the code). Pure: the facts come
from :func:`auditlog.doctor.probes_clickhouse.read_clickhouse`."""

from __future__ import annotations

from dataclasses import dataclass

from auditlog.doctor.model import CheckResult, Problem, Status, result
from auditlog.setup_failures import START_STACK
from consumers.migrations.schema_check import SchemaCheck

NAME = "clickhouse"


@dataclass(frozen=True)
class ClickHouseFacts:
    """``url`` without its password. One of ``schema`` (it answered) or a reason it did not:
    ``unreachable`` (nothing answered), ``refused`` (credentials), ``error`` (anything
    else it said)."""

    url: str
    version: str | None = None
    schema: SchemaCheck | None = None
    unreachable: str | None = None
    refused: bool = False
    error: str | None = None


def check_clickhouse(facts: ClickHouseFacts) -> CheckResult:
    where = f"ClickHouse at {facts.url}"
    if facts.unreachable is not None:
        return result(
            NAME,
            f"{where}: not answering ({facts.unreachable})",
            [
                Problem(
                    Status.FAIL,
                    f"{where} is not answering ({facts.unreachable})",
                    f"{START_STACK}, or set AUDITLOG_CLICKHOUSE_URL to where it runs",
                )
            ],
        )
    if facts.refused:
        return result(
            NAME,
            f"{where}: the user name or password was refused",
            [
                Problem(
                    Status.FAIL,
                    f"{where} refused the user name or password",
                    "check the user and password in AUDITLOG_CLICKHOUSE_URL",
                )
            ],
        )
    if facts.schema is None:
        error = facts.error or "no answer"
        return result(
            NAME,
            f"{where}: {error}",
            [Problem(Status.FAIL, f"{where}: {error}", "read the error; check the server's log")],
        )
    schema = facts.schema
    summary = (
        f"{where} answered (version {facts.version or 'unknown'}); database "
        f"{schema.database}: migration {schema.newest_applied} applied, this code knows up "
        f"to {schema.newest_known}"
    )
    details = {
        "version": facts.version,
        "database": schema.database,
        "schema_state": schema.state,
        "newest_applied": schema.newest_applied,
        "newest_known": schema.newest_known,
    }
    return result(NAME, summary, _schema_problems(schema), **details)


def _schema_problems(schema: SchemaCheck) -> list[Problem]:
    if schema.state == "missing":
        return [
            Problem(
                Status.FAIL,
                f"database {schema.database} has no schema",
                "run `auditlog migrate`",
            )
        ]
    if schema.state == "behind":
        return [
            Problem(
                Status.FAIL,
                f"the schema of database {schema.database} is behind this code (migration "
                f"{schema.newest_applied} applied, {schema.newest_known} expected, or one "
                "before it missing)",
                "run `auditlog migrate` (`auditlog migrate --dry-run` lists what it applies)",
            )
        ]
    if schema.state == "ahead":
        return [
            Problem(
                Status.FAIL,
                f"the schema of database {schema.database} is newer than this code "
                f"(migration {schema.newest_applied} applied, this code knows up to "
                f"{schema.newest_known})",
                "run the auditlog version that migrated it, or upgrade this one",
            )
        ]
    return []
