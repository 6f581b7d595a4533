"""Session fixtures: the stack the tests run against, started once per test run.

``AUDITLOG_TEST_STACK`` chooses it: ``local`` (Kafka with java, the embedded ClickHouse
engine, moto; in a temporary directory on free ports, so a developer's own stack is never
touched), ``docker`` (testcontainers), ``external`` (the ``AUDITLOG_*`` endpoints as they
are), or ``auto``: docker when a Docker engine answers, local otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from auditlog.settings import AuditlogSettings
from deploy.stack import local_stack
from deploy.stack.containers import docker_available, docker_stack
from deploy.stack.endpoints import StackEndpoints
from deploy.stack.layout import PreferredPorts, StackLayout
from deploy.stack.s3 import ensure_bucket


@pytest.fixture(scope="session")
def settings() -> AuditlogSettings:
    return AuditlogSettings()


@pytest.fixture(scope="session")
def stack_endpoints(
    settings: AuditlogSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackEndpoints]:
    """A running stack for the whole test run; stopped at the end of it."""
    backend = settings.test_stack
    if backend == "auto":
        backend = "docker" if docker_available() else "local"
    with contextlib.ExitStack() as cleanup:
        if backend == "external":
            endpoints = StackEndpoints(
                settings.kafka_bootstrap, settings.clickhouse_url, settings.s3_endpoint
            )
        elif backend == "docker":
            endpoints = cleanup.enter_context(docker_stack())
        else:
            layout = StackLayout(
                root=tmp_path_factory.mktemp("stack"), cache_dir=settings.cache_dir.resolve()
            )
            cleanup.callback(local_stack.down, layout)
            endpoints = local_stack.up(layout, PreferredPorts.any_free())
        ensure_bucket(endpoints.s3_endpoint, local_stack.DEFAULT_BUCKET)
        yield endpoints
