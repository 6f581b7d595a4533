"""Fixtures shared by the stack tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auditlog.settings import AuditlogSettings
from deploy.stack.endpoints import StackEndpoints
from tests.stack.sink_support import drop_topics, sink_settings


@pytest.fixture
def sink(stack_endpoints: StackEndpoints) -> Iterator[AuditlogSettings]:
    """Settings with sink topics and a sink group of the test's own; topics dropped after."""
    created = sink_settings(stack_endpoints)
    yield created
    drop_topics(created)
