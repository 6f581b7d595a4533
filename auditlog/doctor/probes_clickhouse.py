"""What the doctor reads from ClickHouse: its version and the recorded migrations, with a
client whose connect and reads are bounded by ``timeout_s`` and never retried."""

from __future__ import annotations

from clickhouse_connect.driver.exceptions import ClickHouseError

from auditlog import setup_failures, wiring
from auditlog.doctor.checks_clickhouse import ClickHouseFacts
from auditlog.settings import AuditlogSettings
from consumers.clickhouse_connection import ClickHouseTlsError
from consumers.migrations.schema_check import check_schema
from runtime.redaction import redact_text, redact_url


def read_clickhouse(settings: AuditlogSettings, *, timeout_s: float) -> ClickHouseFacts:
    url = redact_url(settings.clickhouse_url)
    try:
        client = wiring.clickhouse_client(settings, timeout_s=timeout_s)
    except ClickHouseTlsError as exc:
        return ClickHouseFacts(url, error=redact_text(str(exc)))
    except (ClickHouseError, OSError) as exc:
        return _failed(url, settings.clickhouse_url, exc)
    try:
        schema = check_schema(client, settings.clickhouse_database)
        return ClickHouseFacts(url, version=client.server_version, schema=schema)
    except (ClickHouseError, OSError) as exc:
        return _failed(url, settings.clickhouse_url, exc)
    finally:
        client.close()


def _failed(url: str, raw_url: str, exc: BaseException) -> ClickHouseFacts:
    cause = setup_failures.connection_failure(exc)
    if cause is not None:
        return ClickHouseFacts(url, unreachable=cause)
    if setup_failures.clickhouse_refused(raw_url, exc) is not None:
        return ClickHouseFacts(url, refused=True)
    return ClickHouseFacts(
        url, error=redact_text(str(exc).splitlines()[0] if str(exc) else repr(exc))
    )
