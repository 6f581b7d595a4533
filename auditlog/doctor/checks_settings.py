"""The settings: read once from the environment as every command reads them (a value that
does not load stops every command with exit 2), then cross-checked as the commands do at
startup: the topics they make, the secrets key, and development switches left on."""

from __future__ import annotations

from auditlog import wiring
from auditlog.doctor.model import CheckResult, Problem, Status, result
from auditlog.settings import AuditlogSettings
from sinks.destinations.secrets import SecretError

NAME = "settings"


def refused(lines: list[str]) -> CheckResult:
    """The settings did not load: one problem per line of the refusal."""
    return result(
        NAME,
        "the settings do not load, so nothing else was checked",
        [
            Problem(Status.FAIL, line, "correct the variable named (README, Configuration)")
            for line in lines
        ],
    )


def check_settings(settings: AuditlogSettings) -> CheckResult:
    """Pure but for building (not using) the secret box from the settings."""
    problems: list[Problem] = []
    try:
        specs = wiring.topic_specs(settings)
    except ValueError as exc:
        specs = []
        problems.append(
            Problem(
                Status.FAIL,
                f"the topic settings make no valid topic: {exc}",
                "change AUDITLOG_TOPIC_PARTITIONS, AUDITLOG_TOPIC_REPLICATION_FACTOR, "
                "AUDITLOG_TOPIC_MIN_INSYNC_REPLICAS or the *_RETENTION_HOURS and *_TOPIC "
                "settings so that they go together",
            )
        )
    try:
        wiring.secret_box(settings)
    except SecretError as exc:
        problems.append(
            Problem(
                Status.FAIL,
                f"AUDITLOG_SECRETS_KEY: {exc}",
                "make a key with `auditlog destinations keygen` and export "
                "AUDITLOG_SECRETS_KEY=<key> (keep the old key after it while you rotate)",
            )
        )
    if settings.sink_allow_local:
        problems.append(
            Problem(
                Status.WARN,
                "AUDITLOG_SINK_ALLOW_LOCAL is on: destinations may use http and private or "
                "loopback addresses (local development only)",
                "unset AUDITLOG_SINK_ALLOW_LOCAL in production",
            )
        )
    if settings.viewer_dev_secret is not None:
        problems.append(
            Problem(
                Status.WARN,
                "AUDITLOG_VIEWER_DEV_SECRET is set: the viewer accepts development tokens "
                "that anyone holding the secret can make for any account",
                "unset AUDITLOG_VIEWER_DEV_SECRET in production",
            )
        )
    return result(
        NAME,
        f"loaded; {len(specs)} topics specified, Kafka {settings.kafka_bootstrap} "
        f"({settings.kafka_security_protocol}), ClickHouse database "
        f"{settings.clickhouse_database}",
        problems,
        topics=[spec.name for spec in specs],
    )
