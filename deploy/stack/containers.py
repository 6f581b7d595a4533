"""The same stack from real server images, for machines with a Docker engine.

Used by the test fixtures when a Docker engine answers (or ``AUDITLOG_TEST_STACK=docker``).
It cannot run on the development machines this project is built on (no Docker engine),
so it is kept small; ``deploy/docker-compose.yml`` runs the same images by hand.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from deploy.stack.endpoints import StackEndpoints
from deploy.stack.processes import choose_port
from deploy.stack.s3 import DEV_USER, ROOT_USER, new_keys

KAFKA_IMAGE = "apache/kafka:4.1.1"
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:25.8"
MINIO_IMAGE = "minio/minio:RELEASE.2025-04-22T22-12-26Z"


def docker_available() -> bool:
    """True if a Docker engine answers a ping within a few seconds."""
    try:
        import docker  # noqa: PLC0415 - optional, comes with testcontainers

        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return False


@contextlib.contextmanager
def docker_stack() -> Iterator[StackEndpoints]:
    """Start Kafka (KRaft), ClickHouse and MinIO containers; stop them on exit. MinIO gets
    new root keys; the development user of ``s3_keys`` is made by
    :func:`deploy.stack.local_stack.prepare_s3`."""
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy  # noqa: PLC0415

    kafka_port = choose_port(0)
    kafka = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, kafka_port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{kafka_port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        )
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .waiting_for(LogMessageWaitStrategy("Kafka Server started"))
    )
    clickhouse = (
        DockerContainer(CLICKHOUSE_IMAGE)
        .with_exposed_ports(8123)
        .with_env("CLICKHOUSE_USER", "auditlog")
        .with_env("CLICKHOUSE_PASSWORD", "auditlog")
        .waiting_for(LogMessageWaitStrategy("Ready for connections"))
    )
    root = new_keys(ROOT_USER)
    minio = (
        DockerContainer(MINIO_IMAGE)
        .with_command("server /data")
        .with_exposed_ports(9000)
        .with_env("MINIO_ROOT_USER", root.access_key)
        .with_env("MINIO_ROOT_PASSWORD", root.secret_key)
        .waiting_for(LogMessageWaitStrategy("API:"))
    )
    with kafka, clickhouse, minio:
        ch_host = clickhouse.get_container_host_ip()
        yield StackEndpoints(
            kafka_bootstrap=f"127.0.0.1:{kafka_port}",
            clickhouse_url=f"http://auditlog:auditlog@{ch_host}:{clickhouse.get_exposed_port(8123)}",
            s3_endpoint=f"http://{minio.get_container_host_ip()}:{minio.get_exposed_port(9000)}",
            s3_keys=new_keys(DEV_USER),
            s3_admin=root,
        )
