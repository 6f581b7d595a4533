"""The three-node Kafka cluster of the cluster and fault tests: its own nodes, data and ports,
separate from the session stack's single broker. Started once for the tests of this package
that ask for it, stopped after the last of them however they ended (so three JVMs do not
idle through the rest of the suite); a test that stopped a node starts it again itself, and
:func:`kafka_cluster` starts whatever a failed test left stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auditlog.settings import AuditlogSettings
from deploy.stack import processes
from deploy.stack.kafka import KafkaPorts
from deploy.stack.kafka_cluster import KafkaCluster
from tests.waiting import wait_until

NODES = 3


@pytest.fixture(scope="package")
def kafka_cluster_session(
    settings: AuditlogSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaCluster]:
    taken: list[int] = []
    for _ in range(2 * NODES):
        taken.append(processes.choose_port(0, taken=taken))
    cluster = KafkaCluster(
        root=tmp_path_factory.mktemp("kafka-cluster"),
        cache_dir=settings.cache_dir.resolve(),
        ports=tuple(KafkaPorts(taken[2 * i], taken[2 * i + 1]) for i in range(NODES)),
    )
    try:
        cluster.start_all()
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def kafka_cluster(kafka_cluster_session: KafkaCluster) -> Iterator[KafkaCluster]:
    """The cluster with every node running and listed, before and after the test (a node
    the test left stopped is started again)."""
    cluster = kafka_cluster_session
    for node in cluster.nodes:
        cluster.start(node)
    wait_until(lambda: cluster.broker_ids() == set(cluster.nodes), 120, "every node to be a broker")
    yield cluster
    for node in cluster.nodes:
        cluster.start(node)
