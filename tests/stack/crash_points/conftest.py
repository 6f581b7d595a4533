"""Fixtures of the crash-point tests: a fake broker, the real engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy.stack.endpoints import StackEndpoints
from tests.stack.crash_points.writer_crash_support import CrashHarness, create_harness


@pytest.fixture
def harness(stack_endpoints: StackEndpoints) -> Iterator[CrashHarness]:
    """A fake broker with the events and dead-letter topics, and a migrated database of the
    test's own whose events table never merges in the background; dropped after."""
    created = create_harness(stack_endpoints.clickhouse_url)
    yield created
    created.client().command(f"DROP DATABASE IF EXISTS {created.database}")
