"""Session fixtures: the stack the tests run against, started once per test run.

``AUDITLOG_TEST_STACK`` chooses it: ``local`` (Kafka with java, the embedded ClickHouse
engine, MinIO; in a temporary directory on free ports, so a developer's own stack is never
touched), ``docker`` (testcontainers), ``external`` (the ``AUDITLOG_*`` endpoints as they
are, and the S3 keys that ``auditlog stack up`` exports), or ``auto``: docker when a Docker
engine answers, local otherwise.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from auditlog.settings import AuditlogSettings
from deploy.stack import local_stack, minio_binary
from deploy.stack.containers import docker_available, docker_stack
from deploy.stack.endpoints import S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV, S3Keys, StackEndpoints
from deploy.stack.errors import StackError
from deploy.stack.layout import PreferredPorts, StackLayout
from tests import go_tool_support

# On CI (CI set, as CI services and .ci/run do) property tests draw the same examples every
# run, so a failure there is reproducible; locally they keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build what the selected tests need and the cache lacks before the first test: the
    builds take minutes, more than one test may take (pytest-timeout). The Go tools that
    tests mark (see :mod:`tests.go_tool_support`); the local stack's S3 server (MinIO) when
    stack tests will run on the local stack, where a missing Go toolchain stops the run
    with its line."""
    if session.config.option.collectonly:
        return
    settings = AuditlogSettings()
    cache_dir = settings.cache_dir.resolve()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def say(msg: str) -> None:
        if reporter:
            reporter.write_line(msg)

    go_tool_support.build_marked_tools(session.config, session.items, cache_dir, say)
    if not any(item.get_closest_marker("stack") for item in session.items):
        return
    if minio_binary.is_built(cache_dir) or settings.test_stack in ("external", "docker"):
        return
    if settings.test_stack == "auto" and docker_available():
        return
    try:
        minio_binary.ensure_minio(cache_dir, on_progress=say)
    except StackError as exc:
        pytest.exit(f"auditlog: {exc}", returncode=3)


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
            keys = [os.environ.get(name) for name in (S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV)]
            if not all(keys):
                pytest.exit(
                    f"AUDITLOG_TEST_STACK=external needs {S3_ACCESS_KEY_ENV} and "
                    f'{S3_SECRET_KEY_ENV}: eval "$(auditlog stack up)" sets them',
                    2,
                )
            endpoints = StackEndpoints(
                settings.kafka_bootstrap,
                settings.clickhouse_url,
                settings.s3_endpoint,
                S3Keys(str(keys[0]), str(keys[1])),
            )
        elif backend == "docker":
            endpoints = cleanup.enter_context(docker_stack())
        else:
            layout = StackLayout(
                root=tmp_path_factory.mktemp("stack"), cache_dir=settings.cache_dir.resolve()
            )
            cleanup.callback(local_stack.down, layout)
            endpoints = local_stack.up(layout, PreferredPorts.any_free())
        local_stack.prepare_s3(endpoints)
        yield endpoints
