"""What ``auditlog demo`` runs: the pipeline as far as it exists, end to end.

1. ensure the events and dead-letter topics;
2. generate realistic activity and publish it through the producer SDK (validation,
   Avro single-object encoding, key = tenant, routing headers);
3. read it back from the events topic with a consumer group and decode every record;
4. store what was read in ClickHouse and query it back (a stand-in table until the
   ClickHouse writer exists);
5. write a summary object to S3 and read it back (until the sink workers exist).

Each step returns what it observed; the flow raises if any step loses or invents an event.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect
from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from producers.generator import GeneratorConfig, generate
from producers.producer import AuditProducer
from producers.topics import ensure_topics
from schemas.wire import Decoder

_GAP_MS = 200.0


@dataclass
class DemoReport:
    topics: dict[str, str] = field(default_factory=dict)
    published: int = 0
    publish_seconds: float = 0.0
    consumed: int = 0
    tenants: int = 0
    biggest_tenants: list[tuple[str, int]] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)
    failed_logins: int = 0
    clickhouse_rows: int = 0
    s3_object: str = ""


def ensure(settings: AuditlogSettings, report: DemoReport) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 2})
    result = ensure_topics(admin, wiring.topic_specs(settings))
    for name in result.created:
        report.topics[name] = "created"
    for name in result.unchanged:
        report.topics[name] = "drift" if result.drift_of(name) else "ok"


def publish(settings: AuditlogSettings, events: int, tenants: int, report: DemoReport) -> set[str]:
    """Publish generated events whose last one happens now; returns their ids."""
    # The generated span is about events x gap; a margin keeps the last event in the past.
    start = datetime.now(UTC) - timedelta(milliseconds=1.2 * _GAP_MS * events + 60_000)
    config = GeneratorConfig(
        events=events, tenants=tenants, seed=7, start=start, mean_gap_ms=_GAP_MS, diurnal=False
    )
    ids: set[str] = set()
    began = time.monotonic()
    with AuditProducer(
        wiring.producer_config(settings, client_id="auditlog-demo"),
        validator=wiring.validator(settings),
        encoder=wiring.encoder(settings),
    ) as producer:
        for event in generate(config):
            ids.add(producer.publish(event))
    report.published = len(ids)
    report.publish_seconds = time.monotonic() - began
    return ids


def read_back(
    settings: AuditlogSettings, ids: set[str], report: DemoReport
) -> list[dict[str, Any]]:
    """Consume the events topic with a fresh group until every published id was seen."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"auditlog-demo-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.events_topic])
    decoder = wiring.decoder(settings) if settings.schema_registry_url else Decoder()
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    try:
        while len(found) < len(ids) and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=1.0):
                if msg.error():
                    raise KafkaException(msg.error())
                event = decoder.decode(msg.value() or b"")
                event_id = str(event["event_id"])
                if event_id in ids:
                    found[event_id] = event
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    if len(found) != len(ids):
        raise RuntimeError(f"read back {len(found)} of {len(ids)} published events")
    events = list(found.values())
    per_tenant = Counter(e["tenant_id"] for e in events)
    report.consumed = len(events)
    report.tenants = len(per_tenant)
    report.biggest_tenants = per_tenant.most_common(3)
    report.categories = dict(Counter(e["category"] for e in events).most_common())
    report.failed_logins = sum(1 for e in events if e["action"] == "user.login_failed")
    return events


def store(settings: AuditlogSettings, events: list[dict[str, Any]], report: DemoReport) -> None:
    """Insert into a stand-in table and count back (the writer of issue 4 replaces this)."""
    client = clickhouse_connect.get_client(dsn=settings.clickhouse_url)
    try:
        client.command("CREATE DATABASE IF NOT EXISTS demo")
        client.command(
            "CREATE TABLE IF NOT EXISTS demo.events (event_id UUID, "
            "tenant_id LowCardinality(String), occurred_at DateTime64(3, 'UTC'), "
            "action LowCardinality(String)) ENGINE = MergeTree "
            "ORDER BY (tenant_id, occurred_at) TTL toDateTime(occurred_at) + INTERVAL 7 DAY"
        )
        rows = [[e["event_id"], e["tenant_id"], e["occurred_at"], e["action"]] for e in events]
        client.insert(
            "demo.events", rows, column_names=["event_id", "tenant_id", "occurred_at", "action"]
        )
        counted = client.query(
            "SELECT count() FROM demo.events WHERE event_id IN {ids:Array(UUID)}",
            parameters={"ids": [e["event_id"] for e in events]},
        )
        report.clickhouse_rows = int(counted.result_rows[0][0])
    finally:
        client.close()
    if report.clickhouse_rows != len(events):
        raise RuntimeError(f"ClickHouse holds {report.clickhouse_rows} of {len(events)} events")


def archive(settings: AuditlogSettings, bucket: str, report: DemoReport) -> None:
    import boto3  # noqa: PLC0415 - boto3 is part of the local extra only

    from deploy.stack.s3 import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY  # noqa: PLC0415

    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.s3_region,
        aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_SECRET_KEY,
    )
    key = f"demo/summary-{uuid.uuid4().hex[:8]}.json"
    body = json.dumps({"published": report.published, "categories": report.categories}).encode()
    client.put_object(Bucket=bucket, Key=key, Body=body)
    if client.get_object(Bucket=bucket, Key=key)["Body"].read() != body:
        raise RuntimeError(f"s3://{bucket}/{key} did not read back as written")
    report.s3_object = f"s3://{bucket}/{key}"


def run(settings: AuditlogSettings, *, events: int, tenants: int, bucket: str) -> DemoReport:
    report = DemoReport()
    ensure(settings, report)
    ids = publish(settings, events, tenants, report)
    decoded = read_back(settings, ids, report)
    store(settings, decoded, report)
    archive(settings, bucket, report)
    return report
