"""Builds components from settings: the one place where settings become constructor
arguments, so nothing below reads configuration on its own."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from clickhouse_connect.driver.client import Client as ClickHouseClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from accounts.directory import AccountChange, AccountDirectory
from accounts.store import AccountStore
from accounts.topic import accounts_topic_spec
from auditlog.settings import AuditlogSettings
from consumers.clickhouse_connection import ClickHouseTlsError
from consumers.clickhouse_connection import connect as connect_clickhouse
from consumers.dead_letter_budget import DeadLetterBudget, DeadLetterLimit
from consumers.dead_letter_publisher import DeadLetterPublisher
from consumers.telemetry import WriterObserver
from consumers.writer import ClickHouseWriter
from consumers.writer_config import WriterConfig
from producers.config import ProducerConfig
from producers.producer import AuditProducer
from producers.topic_specs import topic_specs as _topic_specs
from runtime.compacted_table import CompactedTable
from runtime.kafka_connection import KafkaConnection
from runtime.redaction import redact_text, redact_url
from runtime.topic_spec import TopicSpec
from schemas.validation import EventValidator, ValidationPolicy
from schemas.wire import Decoder, Encoder, RegistryEncoder, SingleObjectEncoder
from sinks.control_topics import control_topic_specs
from sinks.destinations.model import Destination, S3Target
from sinks.destinations.references import ReferencePolicy, parse_names
from sinks.destinations.rules import DestinationPolicy
from sinks.destinations.secrets import SecretBox
from sinks.destinations.store import DestinationCatalog, DestinationStore
from sinks.senders.base import Sender
from sinks.senders.factory import build_sender
from sinks.senders.http import PinnedHttpClient
from sinks.senders.s3 import make_s3_client
from sinks.senders.s3_confinement import S3Policy
from viewer.identity import IdentityConfig, TokenVerifier

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def freeze_startup_heap() -> None:
    """Leave every object allocated so far (modules, schemas, clients) out of the garbage
    collector's later passes (``gc.freeze``). A streaming loop keeps up to a batch of
    records per partition alive, so full collections run often and each one would walk
    the whole startup heap again: on 1M events the writer spent 0.85 s collecting, 0.36 s
    after the freeze (``bench.writer_throughput``). Call it once, right before the loop."""
    gc.collect()
    gc.freeze()


YOUNG_COLLECTION_EVERY = 100_000
"""Allocations between two young collections in a streaming process (CPython: 700)."""


def collect_young_less_often(every: int = YOUNG_COLLECTION_EVERY) -> None:
    """Run the garbage collector's young pass every ``every`` allocations of container
    objects instead of every 700 (``gc.set_threshold``; the older generations' thresholds
    kept). A consumed record is such an object, and so is each of its headers when they
    are read: at 700, the writer collected once per 100 records, and each pass that
    reached the older generations walked every record buffered. What the loops allocate
    holds no reference cycles, so collecting less often frees nothing later, and a young
    pass of 100,000 objects takes about a millisecond. Call it once, before the loop."""
    gc.set_threshold(every, *gc.get_threshold()[1:])


def identity_config(settings: AuditlogSettings) -> IdentityConfig:
    """See :meth:`~auditlog.viewer_settings.ViewerSettings.identity_config`."""
    return settings.identity_config()


def token_verifier(settings: AuditlogSettings) -> TokenVerifier:
    """The viewer's token verifier (reads the JWKS file now); raises
    :class:`~viewer.identity.IdentityConfigError` naming the variables."""
    return TokenVerifier(settings.identity_config(require_keys=True))


def kafka_connection(settings: AuditlogSettings) -> KafkaConnection:
    """Where the brokers are and how every Kafka client of the product authenticates (the
    settings checked its coherence when they were read)."""
    return KafkaConnection(settings.kafka_bootstrap, settings.kafka_security())


def producer_config(settings: AuditlogSettings, *, client_id: str = "auditlog") -> ProducerConfig:
    return ProducerConfig(
        kafka=kafka_connection(settings),
        topic=settings.events_topic,
        client_id=client_id,
        queue_max_events=settings.producer_queue_max_events,
        publish_timeout_s=settings.producer_publish_timeout_s,
        delivery_timeout_s=settings.producer_delivery_timeout_s,
        compression=settings.producer_compression,
        linger_ms=settings.producer_linger_ms,
    )


def audit_producer(settings: AuditlogSettings, *, client_id: str) -> AuditProducer:
    """A producer SDK client for the events topic, validating and encoding as configured
    (commands and workers publish their own audit events with it; the caller closes it)."""
    return AuditProducer(
        producer_config(settings, client_id=client_id),
        validator=validator(settings),
        encoder=encoder(settings),
    )


def validator(settings: AuditlogSettings) -> EventValidator:
    return EventValidator(
        ValidationPolicy(
            max_age=timedelta(days=settings.max_event_age_days),
            allow_custom_actions=settings.allow_custom_actions,
        )
    )


def schema_registry(settings: AuditlogSettings) -> SchemaRegistryClient | None:
    if not settings.schema_registry_url:
        return None
    # new_client also understands mock:// URLs (an in-process registry, for tests).
    client: SchemaRegistryClient = SchemaRegistryClient.new_client(
        {"url": settings.schema_registry_url}
    )
    return client


def encoder(settings: AuditlogSettings) -> Encoder:
    """Registry framing when a registry is configured (registers the current schema under
    ``<events topic>-value``), single-object encoding otherwise."""
    registry = schema_registry(settings)
    if registry is None:
        return SingleObjectEncoder()
    return RegistryEncoder(registry, f"{settings.events_topic}-value")


def decoder(settings: AuditlogSettings) -> Decoder:
    return Decoder(registry=schema_registry(settings))


def topic_specs(settings: AuditlogSettings) -> list[TopicSpec]:
    """The expected topics (events first, then dead letters, then the compacted control
    topics: destinations, sink progress and account facts); ``ValueError`` if the topic
    settings make no valid topic."""
    specs = _topic_specs(
        events_topic=settings.events_topic,
        dead_letter_topic=settings.dead_letter_topic,
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        min_insync_replicas=settings.topic_min_insync_replicas,
        events_retention_hours=settings.events_retention_hours,
        dead_letter_retention_hours=settings.dead_letter_retention_hours,
    )
    specs += control_topic_specs(
        destinations_topic=settings.destinations_topic,
        progress_topic=settings.sink_progress_topic,
        replication_factor=settings.topic_replication_factor,
        min_insync_replicas=settings.topic_min_insync_replicas,
    )
    specs.append(
        accounts_topic_spec(
            settings.accounts_topic,
            replication_factor=settings.topic_replication_factor,
            min_insync_replicas=settings.topic_min_insync_replicas,
        )
    )
    names = [spec.name for spec in specs]
    for at, name in enumerate(names):
        if name in names[:at]:
            raise ValueError(f"topic {name!r} is named twice in the topic settings")
    return specs


def destination_store(settings: AuditlogSettings) -> DestinationStore:
    """The destination store as the command line uses it (reads and writes the topic)."""
    return DestinationStore(kafka_connection(settings), settings.destinations_topic)


def destination_catalog(
    settings: AuditlogSettings, *, client_id: str = "auditlog-sink-destinations"
) -> DestinationCatalog:
    """The destination store as a sink worker follows it (call ``load`` first)."""
    return DestinationCatalog(
        CompactedTable(
            kafka_connection(settings), settings.destinations_topic, client_id=client_id
        ),
        topic=settings.destinations_topic,
    )


def account_store(settings: AuditlogSettings) -> AccountStore:
    """The account facts as the command line uses them (reads and writes the topic)."""
    return AccountStore(kafka_connection(settings), settings.accounts_topic)


def account_directory(
    settings: AuditlogSettings,
    *,
    client_id: str = "auditlog-account-directory",
    poll_interval_s: float = 0.5,
    on_change: Callable[[list[AccountChange]], None] | None = None,
) -> AccountDirectory:
    """The account facts as a long-running process follows them (call ``start`` first,
    ``stop`` at the end)."""
    return AccountDirectory(
        kafka_connection(settings),
        settings.accounts_topic,
        client_id=client_id,
        poll_interval_s=poll_interval_s,
        on_change=on_change,
    )


def reference_policy(settings: AuditlogSettings) -> ReferencePolicy:
    """Which variables ``env:`` references may read: the configured prefix and names, never
    a setting of the product (every ``AUDITLOG_*`` variable it reads is reserved)."""
    return ReferencePolicy(
        prefix=settings.sink_secret_ref_prefix,
        names=parse_names(settings.sink_secret_ref_names),
        reserved=AuditlogSettings.variables(),
    )


def destination_policy(
    settings: AuditlogSettings, references: ReferencePolicy
) -> DestinationPolicy:
    """What the operator allows destinations (:mod:`sinks.destinations.rules`):
    ``references`` (the secret box's, :func:`reference_policy`), local addresses, the
    workers' own S3 credentials."""
    return DestinationPolicy(
        references=references,
        allow_local=settings.sink_allow_local,
        s3_worker_credentials=settings.sink_s3_allow_worker_credentials,
    )


def secret_box(settings: AuditlogSettings) -> SecretBox:
    """Seals and opens destination secrets with ``AUDITLOG_SECRETS_KEY``; ``env:``
    references are read from this process's environment, confined by
    :func:`reference_policy`. Raises :class:`~sinks.destinations.secrets.SecretError` for
    a malformed key."""
    return SecretBox.from_setting(
        settings.secrets_key, os.environ, references=reference_policy(settings)
    )


def s3_policy(settings: AuditlogSettings) -> S3Policy:
    """Where S3 clients may connect and whether the worker's own AWS credentials may sign
    for a destination."""
    return S3Policy(
        allow_local=settings.sink_allow_local,
        allow_worker_credentials=settings.sink_s3_allow_worker_credentials,
    )


def http_client(settings: AuditlogSettings) -> PinnedHttpClient:
    """The HTTP client of webhook and log-service senders (the caller closes it)."""
    return PinnedHttpClient(
        allow_local=settings.sink_allow_local, timeout_s=settings.sink_request_timeout_s
    )


def destination_sender(
    settings: AuditlogSettings,
    destination: Destination,
    secrets: SecretBox,
    *,
    http: PinnedHttpClient,
) -> Sender:
    """The sender of ``destination``; raises as :func:`~sinks.senders.factory.build_sender`."""
    return build_sender(
        destination,
        secrets,
        http=http,
        s3_timeout_s=settings.sink_request_timeout_s,
        s3_policy=s3_policy(settings),
    )


def s3_client(settings: AuditlogSettings, destination: Destination, secrets: SecretBox) -> S3Client:
    """An S3 client for ``destination``'s S3 target with the sinks' request timeout and S3
    policy (makes no request)."""
    assert isinstance(destination.target, S3Target)
    return make_s3_client(
        destination.target,
        secrets,
        tenant_id=destination.tenant_id,
        policy=s3_policy(settings),
        timeout_s=settings.sink_request_timeout_s,
    )


def clickhouse_client(
    settings: AuditlogSettings, *, session: bool = True, timeout_s: float | None = None
) -> ClickHouseClient:
    """A clickhouse-connect client for ``settings.clickhouse_url`` with the ClickHouse TLS
    settings (connects now; raises clickhouse-connect's errors when ClickHouse does not
    answer, and :class:`~consumers.clickhouse_connection.ClickHouseTlsError` naming the
    settings when its certificate cannot be verified). ``session=False``: no ClickHouse
    session, for clients that run queries from several threads. ``timeout_s``: see
    :func:`~consumers.clickhouse_connection.connect`."""
    try:
        return connect_clickhouse(
            settings.clickhouse_url, settings.clickhouse_tls(), session=session, timeout_s=timeout_s
        )
    except ClickHouseTlsError as exc:
        raise ClickHouseTlsError(
            f"{exc} (AUDITLOG_CLICKHOUSE_CA_FILE; AUDITLOG_CLICKHOUSE_CERT_FILE and "
            "AUDITLOG_CLICKHOUSE_KEY_FILE for a client certificate)"
        ) from exc


def clickhouse_error(settings: AuditlogSettings, error: BaseException) -> str:
    """The one line a command prints when ClickHouse fails: where (without the password
    of ``AUDITLOG_CLICKHOUSE_URL``) and what."""
    return redact_text(f"ClickHouse at {redact_url(settings.clickhouse_url)}: {error}")


def writer_config(settings: AuditlogSettings, *, exit_when_idle_s: float | None) -> WriterConfig:
    database = settings.clickhouse_database
    return WriterConfig(
        kafka=kafka_connection(settings),
        topic=settings.events_topic,
        group_id=settings.writer_group_id,
        table=f"{database}.events",
        progress_table=f"{database}.writer_progress",
        batch_max_records=settings.writer_batch_max_records,
        batch_max_bytes=settings.writer_batch_max_bytes,
        flush_interval_s=settings.writer_flush_interval_s,
        retry_max_s=settings.writer_retry_max_s,
        exit_when_idle_s=exit_when_idle_s,
    )


def writer(
    settings: AuditlogSettings,
    *,
    exit_when_idle_s: float | None,
    observer: WriterObserver | None = None,
) -> tuple[ClickHouseWriter, DeadLetterPublisher]:
    """The ClickHouse writer and its dead-letter publisher (the caller closes it after
    ``run``)."""
    dead_letters = DeadLetterPublisher(
        kafka_connection(settings), settings.dead_letter_topic, "auditlog-writer-dead-letters"
    )
    built = ClickHouseWriter(
        writer_config(settings, exit_when_idle_s=exit_when_idle_s),
        clickhouse_client(settings),
        dead_letters=dead_letters,
        budget=DeadLetterBudget(
            dead_letter_limit(settings), settings.events_topic, settings.dead_letter_topic
        ),
        observer=observer,
    )
    return built, dead_letters


def dead_letter_limit(settings: AuditlogSettings) -> DeadLetterLimit:
    return DeadLetterLimit(
        max_ratio=settings.dead_letter_max_ratio, max_run=settings.dead_letter_max_run
    )


def utc_now() -> datetime:
    """The wall-clock time, in UTC."""
    return datetime.now(UTC)
