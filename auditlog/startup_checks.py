"""What commands check before they start, so a setup mistake ends them with one line and
its own exit code (:mod:`auditlog.setup_failures`) instead of a hang, a retry loop or a
traceback: Kafka answering and holding the topics the command uses, ClickHouse answering
with the schema this code expects, the metrics port free."""

from __future__ import annotations

import errno
from collections.abc import Iterable

from clickhouse_connect.driver.client import Client as ClickHouseClient
from clickhouse_connect.driver.exceptions import ClickHouseError

from auditlog import setup_failures, wiring
from auditlog.settings import AuditlogSettings
from consumers.migrations.schema_check import check_schema
from runtime.health import HealthServer
from runtime.kafka_refusal import KafkaRefusedError, RefusalKind, cluster_topics

# What to look at when Kafka refuses us, in the settings' own names.
_KAFKA_REFUSAL_HINTS: dict[RefusalKind, str] = {
    "authentication": (
        "check AUDITLOG_KAFKA_SASL_MECHANISM, AUDITLOG_KAFKA_SASL_USERNAME and "
        "AUDITLOG_KAFKA_SASL_PASSWORD"
    ),
    "server_certificate": (
        "the broker's certificate is not trusted: set AUDITLOG_KAFKA_SSL_CA_FILE to the CA "
        "that signed it (or check AUDITLOG_KAFKA_SSL_VERIFY_HOSTNAME and the host name in "
        "AUDITLOG_KAFKA_BOOTSTRAP)"
    ),
    "client_certificate": (
        "the broker refused the TLS handshake: it may require a client certificate it "
        "trusts (AUDITLOG_KAFKA_SSL_CERT_FILE, AUDITLOG_KAFKA_SSL_KEY_FILE)"
    ),
}


def check_kafka(
    settings: AuditlogSettings, *, topics: Iterable[str] = (), timeout_s: float = 10.0
) -> None:
    """Ask Kafka for its metadata once, with a client that logs nothing; returns when a
    broker answered and every topic of ``topics`` exists. Raises
    :class:`~auditlog.setup_failures.SetupFailure` when no broker answered within
    ``timeout_s`` (a closed port: at once), when Kafka refused the credentials or
    certificates (within about a second), or when a topic is missing. Commands that talk to
    Kafka call it first, with the topics they read or write."""
    connection = wiring.kafka_connection(settings)
    try:
        found = cluster_topics(connection, timeout_s=timeout_s, hints=_KAFKA_REFUSAL_HINTS)
    except KafkaRefusedError as exc:
        raise setup_failures.kafka_refused(str(exc)) from None
    if found is None:
        raise setup_failures.kafka_unreachable(str(connection), timeout_s)
    missing = [name for name in dict.fromkeys(topics) if name not in found]
    if missing:
        raise setup_failures.topics_missing(str(connection), missing)


def clickhouse(settings: AuditlogSettings, *, schema: bool = True) -> ClickHouseClient:
    """A connected clickhouse-connect client (the caller closes it), after checking that
    ClickHouse answers, takes the URL's credentials and, with ``schema``, holds exactly the
    schema this code's migrations make. Raises
    :class:`~auditlog.setup_failures.SetupFailure` for each of those, and
    clickhouse-connect's errors for anything else."""
    url = settings.clickhouse_url
    client: ClickHouseClient | None = None
    try:
        client = wiring.clickhouse_client(settings)
        check = check_schema(client, settings.clickhouse_database) if schema else None
    except (ClickHouseError, OSError) as exc:
        if client is not None:
            client.close()
        failure = setup_failures.clickhouse_unreachable(
            url, exc
        ) or setup_failures.clickhouse_refused(url, exc)
        if failure is None:
            raise
        raise failure from None
    failure = None if check is None else setup_failures.schema_not_current(url, check)
    if failure is not None:
        client.close()
        raise failure
    return client


def require_schema(settings: AuditlogSettings) -> None:
    """:func:`clickhouse` for a command that builds its own clients later (the writer)."""
    clickhouse(settings).close()


def start_health_server(server: HealthServer, settings: AuditlogSettings) -> int:
    """Start ``server`` on ``AUDITLOG_METRICS_HOST:AUDITLOG_METRICS_PORT``; returns the
    bound port. A taken port raises :class:`~auditlog.setup_failures.SetupFailure`."""
    try:
        return server.start(settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise setup_failures.port_in_use(
            "metrics endpoint",
            settings.metrics_host,
            settings.metrics_port,
            "AUDITLOG_METRICS_PORT",
        ) from None
