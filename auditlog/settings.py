"""Settings read once, at the edge, from ``AUDITLOG_*`` environment variables.

Nothing below the command line reads the environment: commands build an
:class:`AuditlogSettings` and pass the pieces each component needs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import SettingsConfigDict

from auditlog.integrity_settings import IntegritySettings
from auditlog.viewer_settings import ViewerSettings
from consumers.clickhouse_connection import ClickHouseTls
from runtime.kafka_connection import KafkaSecurity, SaslMechanism, SecurityProtocol
from sinks.destinations.references import DEFAULT_PREFIX, check_names, check_prefix, parse_names

StackBackend = Literal["auto", "local", "docker", "external"]


class AuditlogSettings(IntegritySettings, ViewerSettings):
    """Every setting of the product; one environment variable each (``AUDITLOG_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="AUDITLOG_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:19092",
        description="Kafka bootstrap servers, comma separated host:port.",
    )
    clickhouse_url: str = Field(
        default="http://127.0.0.1:18123",
        description="ClickHouse HTTP endpoint, optionally with user:password@.",
    )
    # -- Kafka security and ClickHouse TLS (checked together by _connections_coherent) --
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        description="How clients talk to the brokers: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL.",
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None,
        description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (with a SASL protocol).",
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="SASL user name (PLAIN and SCRAM; an API key for PLAIN)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (PLAIN and SCRAM; an API secret for PLAIN)."
    )
    kafka_oauth_token_url: str | None = Field(
        default=None,
        description="OAUTHBEARER: the OIDC token endpoint (client-credentials grant).",
    )
    kafka_oauth_client_id: str | None = Field(
        default=None, description="OAUTHBEARER: the OIDC client id."
    )
    kafka_oauth_client_secret: SecretStr | None = Field(
        default=None, description="OAUTHBEARER: the OIDC client secret."
    )
    kafka_oauth_scope: str | None = Field(
        default=None, description="OAUTHBEARER: the scope asked for, if the provider needs one."
    )
    kafka_oauth_extensions: str | None = Field(
        default=None,
        description="OAUTHBEARER: SASL extensions, key=value comma separated (Confluent Cloud: "
        "logicalCluster=lkc-...,identityPoolId=pool-...).",
    )
    kafka_ssl_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) that signed the brokers' certificates; unset: the "
        "system's CAs.",
    )
    kafka_ssl_cert_file: Path | None = Field(
        default=None, description="PEM client certificate, for brokers that require mutual TLS."
    )
    kafka_ssl_key_file: Path | None = Field(
        default=None, description="PEM private key of the client certificate."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of the private key, if it is encrypted."
    )
    kafka_ssl_verify_hostname: bool = Field(
        default=True,
        description="Check that the broker's certificate names the host connected to.",
    )
    clickhouse_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed ClickHouse's certificate (https URLs); "
        "unset: the system's CAs.",
    )
    clickhouse_cert_file: Path | None = Field(
        default=None,
        description="PEM client certificate for ClickHouse (https URLs): mutual TLS, logging "
        "in as the URL's user.",
    )
    clickhouse_key_file: Path | None = Field(
        default=None,
        description="PEM private key of the ClickHouse client certificate, unless the "
        "certificate file holds it.",
    )

    def kafka_security(self) -> KafkaSecurity:
        """The ``kafka_*`` security settings as one object (field names without ``kafka_``)."""
        names = [f.name for f in dataclasses.fields(KafkaSecurity)]
        return KafkaSecurity(**{name: getattr(self, f"kafka_{name}") for name in names})

    def clickhouse_tls(self) -> ClickHouseTls:
        return ClickHouseTls(
            ca_file=self.clickhouse_ca_file,
            cert_file=self.clickhouse_cert_file,
            key_file=self.clickhouse_key_file,
        )

    @model_validator(mode="after")
    def _connections_coherent(self) -> Self:
        """One error listing every incoherent Kafka security or ClickHouse TLS setting,
        each sentence naming the variable (see ``KafkaSecurity.problems``)."""
        problems = self.kafka_security().problems(lambda name: f"AUDITLOG_KAFKA_{name.upper()}")
        problems += self.clickhouse_tls().problems(
            self.clickhouse_url, lambda name: f"AUDITLOG_CLICKHOUSE_{name.upper()}"
        )
        if problems:
            raise PydanticCustomError("incoherent_settings", "\n".join(problems))
        return self

    clickhouse_database: str = Field(
        default="audit",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The database holding the events table, retention and writer progress.",
    )
    writer_group_id: str = Field(
        default="clickhouse-writer", description="Consumer group of the ClickHouse writer."
    )
    writer_batch_max_records: int = Field(
        default=50_000, ge=1, description="Records per insert, at most (per partition)."
    )
    writer_batch_max_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Bytes of values per insert, at most."
    )
    writer_flush_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="A partition's records wait at most this long before they are inserted.",
    )
    writer_retry_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait between retries of a failing insert."
    )
    dead_letter_max_ratio: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Stop when more than this share of recent records was dead-lettered.",
    )
    dead_letter_max_run: int = Field(
        default=1000, ge=1, description="Stop after this many dead-lettered records in a row."
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address /metrics and /health listen on (0.0.0.0 in containers).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Level of the JSON logs of long-running commands."
    )
    metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="Port of /metrics and /health of long-running commands (0: any free port).",
    )
    schema_registry_url: str | None = Field(
        default=None,
        description=(
            "Confluent-compatible schema registry; when set, events use its framing "
            "(magic byte 0, schema id) instead of Avro single-object encoding."
        ),
    )
    events_topic: str = Field(default="audit.events", description="The audit events topic.")
    dead_letter_topic: str = Field(
        default="audit.events.dlq", description="Where poison records go, with the reason."
    )
    topic_partitions: int = Field(
        default=12, ge=1, description="Partitions of the events topic when it is created."
    )
    topic_replication_factor: int | None = Field(
        default=None,
        ge=1,
        description="Replication factor of new topics; unset: the cluster's default.",
    )
    topic_min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="min.insync.replicas of the topics; unset: the cluster's default.",
    )
    events_retention_hours: int = Field(
        default=168,
        ge=1,
        description="How long the events topic keeps records (the replay window of sinks).",
    )
    dead_letter_retention_hours: int = Field(
        default=720, ge=1, description="How long the dead-letter topic keeps records."
    )
    producer_queue_max_events: int = Field(
        default=100_000,
        ge=1,
        description="Events a producer buffers locally before publish applies backpressure.",
    )
    producer_publish_timeout_s: float = Field(
        default=10.0,
        ge=0,
        description="How long publish waits for room in a full queue before it raises.",
    )
    producer_delivery_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long an event may take to be acknowledged before it is failed.",
    )
    producer_compression: Literal["zstd", "lz4", "gzip", "snappy", "none"] = Field(
        default="zstd", description="Compression of produced batches."
    )
    producer_linger_ms: int = Field(
        default=20, ge=0, description="How long the producer waits to fill a batch."
    )
    allow_custom_actions: bool = Field(
        default=False,
        description="Accept actions outside the activity catalog, named custom.<resource>.<verb>.",
    )
    max_event_age_days: int = Field(
        default=30, ge=1, description="Events older than this are refused at the producer."
    )
    destinations_topic: str = Field(
        default="audit.destinations",
        description="Compacted topic holding the streaming destinations (the store).",
    )
    sink_progress_topic: str = Field(
        default="audit.sink-progress",
        description="Compacted topic holding each destination's delivery progress and health.",
    )
    accounts_topic: str = Field(
        default="audit.accounts",
        description=(
            "Compacted topic holding the account facts: audit log add-on and managing "
            "partner (`auditlog accounts`)."
        ),
    )
    sink_group_id: str = Field(
        default="stream-sinks", description="Consumer group of the sink workers."
    )
    secrets_key: str | None = Field(
        default=None,
        description=(
            "Fernet key(s), comma separated, newest first, that encrypt destination secrets "
            "(generate one with `auditlog destinations keygen`)."
        ),
    )
    sink_allow_local: bool = Field(
        default=False,
        description=(
            "Local-development mode: webhooks and S3 endpoints may use http and private or "
            "loopback addresses."
        ),
    )
    sink_secret_ref_prefix: str = Field(
        default=DEFAULT_PREFIX,
        description=(
            "Secret references (env:NAME) may read variables whose names start with this "
            "(empty: none by prefix); never the product's own settings nor AWS_*."
        ),
    )
    sink_secret_ref_names: str = Field(
        default="",
        description=(
            "Variables, comma separated, that secret references may read besides those "
            "under the prefix."
        ),
    )
    sink_s3_allow_worker_credentials: bool = Field(
        default=False,
        description=(
            "S3 destinations with neither access keys nor a role are written with the "
            "workers' own AWS credentials (refused otherwise)."
        ),
    )
    sink_retry_max_s: float = Field(
        default=60.0, gt=0, description="Longest wait between retries of a failing delivery."
    )
    sink_park_after_s: float = Field(
        default=60.0,
        gt=0,
        description=(
            "A destination failing this long is parked: it falls behind on its own while "
            "the others flow, and catches up when it answers again."
        ),
    )
    sink_auto_pause_after_s: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="A destination failing continuously this long is paused automatically.",
    )
    sink_request_timeout_s: float = Field(
        default=30.0, gt=0, description="Timeout of one delivery request to a destination."
    )
    sink_partner_grace_s: float = Field(
        default=2.0,
        ge=0,
        le=600,
        description=(
            "Partner destinations: how much earlier than it was acknowledged an account's "
            "partner change may say it started (write time plus clock skew between "
            "`auditlog accounts`, producers and workers); records newer than the last read "
            "of the accounts topic minus this wait (docs/partners.md)."
        ),
    )
    sink_membership_poll_s: float = Field(
        default=0.25,
        gt=0,
        le=60,
        description="How often a sink worker reads the accounts topic to its end.",
    )
    s3_endpoint: str = Field(
        default="http://127.0.0.1:19000",
        description="S3 endpoint override for S3-compatible stores; empty means AWS.",
    )
    s3_region: str = Field(default="us-east-1", description="Region for S3 requests.")
    stack_dir: Path = Field(
        default=Path(".stack"),
        description="Where the local stack keeps its data, logs, pid files and state.",
    )
    integrity_keys_dir: Path = Field(
        default=Path(".auditlog/integrity-keys"),
        description="Where the checkpoint signing keys live (auditlog keys): keys.json and "
        "one PKCS#8 PEM file per private key, mode 0600.",
    )
    cache_dir: Path = Field(
        default=Path(".cache"),
        description="Where downloaded artifacts (the Kafka jars) are cached.",
    )
    test_stack: StackBackend = Field(
        default="auto",
        description=(
            "What the tests run against: 'local' (java + embedded engine), 'docker' "
            "(testcontainers), 'external' (the endpoints above), or 'auto' (docker when a "
            "Docker engine answers, local otherwise)."
        ),
    )

    @classmethod
    def variables(cls) -> frozenset[str]:
        """The environment variable of every setting (``AUDITLOG_<NAME>``)."""
        return frozenset(f"AUDITLOG_{name.upper()}" for name in cls.model_fields)

    def environment(self) -> dict[str, str]:
        """These settings as the ``AUDITLOG_*`` variables that give them to a child process
        (``auditlog serve`` started by the demo): every setting that is set, secrets
        included, so the result is for a child's environment only, never for output."""
        found: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            found[f"AUDITLOG_{name.upper()}"] = str(value)
        return found

    @field_validator("clickhouse_url")
    @classmethod
    def _clickhouse_url_names_a_server(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # The message never repeats the value: it may hold a password.
            raise ValueError(
                "expected http://host:port or https://host:port (user:password@ optional)"
            )
        return value

    @field_validator("sink_secret_ref_prefix")
    @classmethod
    def _prefix_reaches_no_setting(cls, value: str) -> str:
        return check_prefix(value, cls.variables())

    @field_validator("sink_secret_ref_names")
    @classmethod
    def _names_are_not_settings(cls, value: str) -> str:
        check_names(parse_names(value), cls.variables())
        return value
