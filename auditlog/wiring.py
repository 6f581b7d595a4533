"""Builds components from settings: the one place where settings become constructor
arguments, so nothing below reads configuration on its own."""

from __future__ import annotations

from datetime import timedelta

import clickhouse_connect
from clickhouse_connect.driver.client import Client as ClickHouseClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from auditlog.settings import AuditlogSettings
from consumers.dead_letters import DeadLetterBudget, DeadLetterLimit, DeadLetterPublisher
from consumers.telemetry import WriterObserver
from consumers.writer import ClickHouseWriter, WriterConfig
from producers.config import ProducerConfig
from producers.topics import TopicSpec
from producers.topics import topic_specs as _topic_specs
from schemas.validation import EventValidator, ValidationPolicy
from schemas.wire import Decoder, Encoder, RegistryEncoder, SingleObjectEncoder


def producer_config(settings: AuditlogSettings, *, client_id: str = "auditlog") -> ProducerConfig:
    return ProducerConfig(
        bootstrap=settings.kafka_bootstrap,
        topic=settings.events_topic,
        client_id=client_id,
        queue_max_events=settings.producer_queue_max_events,
        publish_timeout_s=settings.producer_publish_timeout_s,
        delivery_timeout_s=settings.producer_delivery_timeout_s,
        compression=settings.producer_compression,
        linger_ms=settings.producer_linger_ms,
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
    """The expected topics (events first, then dead letters); ``ValueError`` if the topic
    settings make no valid topic."""
    return _topic_specs(
        events_topic=settings.events_topic,
        dead_letter_topic=settings.dead_letter_topic,
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        min_insync_replicas=settings.topic_min_insync_replicas,
        events_retention_hours=settings.events_retention_hours,
        dead_letter_retention_hours=settings.dead_letter_retention_hours,
    )


def clickhouse_client(settings: AuditlogSettings) -> ClickHouseClient:
    """A clickhouse-connect client for ``settings.clickhouse_url`` (connects now; raises
    clickhouse-connect's errors when ClickHouse does not answer)."""
    return clickhouse_connect.get_client(dsn=settings.clickhouse_url)


def writer_config(settings: AuditlogSettings, *, exit_when_idle_s: float | None) -> WriterConfig:
    database = settings.clickhouse_database
    return WriterConfig(
        bootstrap=settings.kafka_bootstrap,
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
        settings.kafka_bootstrap, settings.dead_letter_topic, "auditlog-writer-dead-letters"
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
