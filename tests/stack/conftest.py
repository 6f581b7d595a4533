"""Fixtures shared by the stack tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auditlog.settings import AuditlogSettings
from deploy.stack.endpoints import StackEndpoints
from runtime.kafka_connection import KafkaConnection
from tests.stack.sink_support import drop_topics, sink_settings
from tests.stack.writer_support import Pipeline, create_pipeline, drop_pipeline


@pytest.fixture
def sink(stack_endpoints: StackEndpoints) -> Iterator[AuditlogSettings]:
    """Settings with sink topics and a sink group of the test's own; topics dropped after."""
    created = sink_settings(stack_endpoints)
    yield created
    drop_topics(created)


@pytest.fixture
def pipeline(stack_endpoints: StackEndpoints) -> Iterator[Pipeline]:
    """A topic pair, a consumer group and a migrated database of the test's own (see
    :mod:`tests.stack.writer_support`); dropped after."""
    created = create_pipeline(
        KafkaConnection(stack_endpoints.kafka_bootstrap), stack_endpoints.clickhouse_url
    )
    yield created
    drop_pipeline(created)
