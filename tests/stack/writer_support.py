"""Shared pieces of the writer tests: a topic pair and a migrated database of their own
(its events table never merges in the background, see :mod:`tests.stack.stored_rows`),
events published through the SDK, the table read back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry

from consumers.dead_letter_budget import DeadLetterBudget, DeadLetterLimit
from consumers.dead_letter_publisher import DeadLetterPublisher
from consumers.migrations import apply_pending
from consumers.writer import ClickHouseWriter, WriterConfig
from producers.config import ProducerConfig
from producers.generator import GeneratorConfig, generate
from producers.metrics import producer_metrics
from producers.producer import AuditProducer
from runtime.kafka_connection import KafkaConnection
from schemas.validation import EventValidator
from tests.stack.stored_rows import StoredRows, stop_background_merges, stored_rows

PARTITIONS = 6


@dataclass
class Pipeline:
    """One test's own topics, consumer group and ClickHouse database."""

    kafka: KafkaConnection
    clickhouse_url: str
    topic: str
    dead_letter_topic: str
    database: str
    group_id: str

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def table(self) -> str:
        return f"{self.database}.events"

    def client(self) -> Client:
        return clickhouse_connect.get_client(dsn=self.clickhouse_url)

    def writer_config(self, **overrides: object) -> WriterConfig:
        values: dict[str, object] = {
            "kafka": self.kafka,
            "topic": self.topic,
            "group_id": self.group_id,
            "table": self.table,
            "progress_table": f"{self.database}.writer_progress",
            "batch_max_records": 5_000,
            "flush_interval_s": 0.5,
            "retry_initial_s": 0.2,
            "retry_max_s": 1.0,
        }
        values.update(overrides)
        return WriterConfig(**values)  # type: ignore[arg-type]

    def writer(self, limit: DeadLetterLimit | None = None, **overrides: object) -> ClickHouseWriter:
        return ClickHouseWriter(
            self.writer_config(**overrides),
            self.client(),
            dead_letters=DeadLetterPublisher(self.kafka, self.dead_letter_topic),
            budget=DeadLetterBudget(limit or DeadLetterLimit(), self.topic, self.dead_letter_topic),
        )

    def env(self) -> dict[str, str]:
        """``AUDITLOG_*`` settings pointing ``auditlog consume`` at this pipeline."""
        return {
            "AUDITLOG_KAFKA_BOOTSTRAP": self.bootstrap,
            "AUDITLOG_CLICKHOUSE_URL": self.clickhouse_url,
            "AUDITLOG_EVENTS_TOPIC": self.topic,
            "AUDITLOG_DEAD_LETTER_TOPIC": self.dead_letter_topic,
            "AUDITLOG_CLICKHOUSE_DATABASE": self.database,
            "AUDITLOG_WRITER_GROUP_ID": self.group_id,
            "AUDITLOG_WRITER_BATCH_MAX_RECORDS": "2000",
            "AUDITLOG_WRITER_FLUSH_INTERVAL_S": "0.5",
            "AUDITLOG_METRICS_PORT": "0",
        }

    def event_ids(self) -> list[str]:
        rows = self.client().query(f"SELECT toString(event_id) FROM {self.table}").result_rows
        return [str(row[0]) for row in rows]

    def count(self) -> int:
        """Rows stored (duplicates included: merges are stopped)."""
        return int(self.client().command(f"SELECT count() FROM {self.table}"))  # type: ignore[arg-type]

    def stored(self) -> StoredRows:
        return stored_rows(self.client(), self.table)


def create_pipeline(kafka: KafkaConnection, clickhouse_url: str) -> Pipeline:
    suffix = uuid.uuid4().hex[:10]
    pipeline = Pipeline(
        kafka=kafka,
        clickhouse_url=clickhouse_url,
        topic=f"test.writer.{suffix}",
        dead_letter_topic=f"test.writer.{suffix}.dlq",
        database=f"writer_{suffix}",
        group_id=f"writer-{suffix}",
    )
    admin = AdminClient(kafka.properties())
    futures = admin.create_topics(
        [NewTopic(pipeline.topic, PARTITIONS), NewTopic(pipeline.dead_letter_topic, 1)]
    )
    for future in futures.values():
        future.result(timeout=30)
    apply_pending(pipeline.client(), database=pipeline.database)
    stop_background_merges(pipeline.client(), pipeline.table)
    return pipeline


def drop_pipeline(pipeline: Pipeline) -> None:
    admin = AdminClient(pipeline.kafka.properties())
    for future in admin.delete_topics([pipeline.topic, pipeline.dead_letter_topic]).values():
        future.result(timeout=30)
    pipeline.client().command(f"DROP DATABASE IF EXISTS {pipeline.database}")


def publish(pipeline: Pipeline, events: int, *, seed: int = 1, tenants: int = 30) -> set[str]:
    """Publish generated events (the bulk path, validated here first); returns their ids."""
    start = datetime.now(UTC) - timedelta(milliseconds=1.2 * 5 * events + 60_000)
    config = GeneratorConfig(
        events=events, tenants=tenants, seed=seed, start=start, mean_gap_ms=5, diurnal=False
    )
    validator = EventValidator()
    producer = AuditProducer(
        ProducerConfig(pipeline.kafka, topic=pipeline.topic),
        metrics=producer_metrics(CollectorRegistry()),
    )
    ids = {producer.publish_datum(validator.validate(e).to_avro()) for e in generate(config)}
    producer.close()
    return ids
