"""What the viewer's stack tests share: settings naming topics, a writer group and a
database of their own (created and migrated), and their removal afterwards."""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from consumers.migrations import apply_pending
from deploy.stack.endpoints import StackEndpoints


def viewer_settings(
    stack: StackEndpoints, prefix: str, dev_secret: str, **overrides: Any
) -> AuditlogSettings:
    """Settings of a viewer under test named ``prefix``: its topics exist and its database
    is migrated when this returns. ``overrides`` are further settings."""
    suffix = uuid.uuid4().hex[:10]
    settings = AuditlogSettings(
        **{
            "kafka_bootstrap": stack.kafka_bootstrap,
            "clickhouse_url": stack.clickhouse_url,
            "clickhouse_database": f"{prefix}_{suffix}",
            "events_topic": f"test.{prefix}.{suffix}",
            "dead_letter_topic": f"test.{prefix}.{suffix}.dlq",
            "accounts_topic": f"test.{prefix}.{suffix}.accounts",
            "writer_group_id": f"{prefix}-writer-{suffix}",
            "writer_flush_interval_s": 0.2,
            "viewer_dev_secret": SecretStr(dev_secret),
            "viewer_cursor_key": SecretStr("c" * 40),
            "viewer_rate_limit_burst": 10_000,
            "viewer_ingest_lag_s": 0.5,
            "metrics_port": 0,
            **overrides,
        }
    )
    admin = AdminClient(wiring.kafka_connection(settings).properties())
    topics = [
        NewTopic(settings.events_topic, 4),
        NewTopic(settings.dead_letter_topic, 1),
        NewTopic(settings.accounts_topic, 1, config={"cleanup.policy": "compact"}),
    ]
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)
    client = wiring.clickhouse_client(settings)
    try:
        apply_pending(client, database=settings.clickhouse_database)
    finally:
        client.close()
    return settings


def drop(settings: AuditlogSettings) -> None:
    """Delete the topics and the database of :func:`viewer_settings`."""
    admin = AdminClient(wiring.kafka_connection(settings).properties())
    names = [settings.events_topic, settings.dead_letter_topic, settings.accounts_topic]
    for future in admin.delete_topics(names).values():
        future.result(timeout=30)
    client = wiring.clickhouse_client(settings)
    try:
        client.command(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")
    finally:
        client.close()
