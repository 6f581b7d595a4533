"""A local Kafka cluster's configuration without a broker: each node's server.properties,
the stack's ports and state for N brokers, and the exported topic settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditlog.settings import AuditlogSettings
from deploy.stack import kafka, local_stack
from deploy.stack.endpoints import S3Keys, StackEndpoints
from deploy.stack.errors import StackError
from deploy.stack.kafka_cluster import KafkaCluster
from deploy.stack.layout import PreferredPorts, StackLayout

VOTERS = (
    kafka.KafkaPorts(29092, 29093),
    kafka.KafkaPorts(29094, 29095),
    kafka.KafkaPorts(29096, 29097),
)


def _props(text: str) -> dict[str, str]:
    pairs = (line.partition("=") for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, _, value in pairs}


@pytest.mark.parametrize("node", [1, 2, 3])
def test_each_node_is_a_broker_and_one_of_three_voters(tmp_path: Path, node: int) -> None:
    ports = VOTERS[node - 1]
    props = _props(
        kafka.render_server_properties(
            data_dir=tmp_path / f"kafka-{node}",
            ports=ports,
            membership=kafka.ClusterMembership(node_id=node, voters=VOTERS),
        )
    )

    assert props["node.id"] == str(node)
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:29093,2@127.0.0.1:29095,3@127.0.0.1:29097"
    )
    assert props["listeners"] == (
        f"PLAINTEXT://127.0.0.1:{ports.broker},CONTROLLER://127.0.0.1:{ports.controller}"
    )
    assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{ports.broker}"
    assert props["log.dirs"] == str(tmp_path / f"kafka-{node}" / "data")
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "3", key
    for key in (
        "min.insync.replicas",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "2", key


def test_min_insync_replicas_is_two_from_three_nodes_on() -> None:
    assert [kafka.cluster_min_insync_replicas(n) for n in (1, 2, 3, 5)] == [1, 1, 2, 2]


def test_a_node_must_be_a_voter_with_its_own_ports(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="one of the 3 voters"):
        kafka.render_server_properties(
            data_dir=tmp_path,
            ports=VOTERS[0],
            membership=kafka.ClusterMembership(node_id=2, voters=VOTERS),
        )
    twice = (VOTERS[0], kafka.KafkaPorts(29094, 29093), VOTERS[2])
    with pytest.raises(StackError, match="different ports"):
        kafka.render_server_properties(
            data_dir=tmp_path, ports=VOTERS[0], membership=kafka.ClusterMembership(1, twice)
        )


def test_cluster_nodes_have_directories_of_their_own_and_one_bootstrap(tmp_path: Path) -> None:
    cluster = KafkaCluster(root=tmp_path, cache_dir=tmp_path / "cache", ports=VOTERS)

    assert list(cluster.nodes) == [1, 2, 3]
    assert [cluster.node_dir(n) for n in cluster.nodes] == [
        tmp_path / "kafka-1",
        tmp_path / "kafka-2",
        tmp_path / "kafka-3",
    ]
    assert cluster.bootstrap == "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096"
    assert (cluster.replication_factor, cluster.min_insync_replicas) == (3, 2)
    with pytest.raises(StackError, match="no Kafka node 4"):
        cluster.node_dir(4)


def test_every_node_gets_the_same_cluster_id(tmp_path: Path) -> None:
    cluster = KafkaCluster(root=tmp_path, cache_dir=tmp_path / "cache", ports=VOTERS)
    (tmp_path / "kafka-2").mkdir()
    (tmp_path / "kafka-2" / "cluster.id").write_text("kept-from-before\n")

    cluster._ensure_cluster_id()

    ids = {(cluster.node_dir(n) / "cluster.id").read_text() for n in cluster.nodes}
    assert ids == {"kept-from-before\n"}


def test_nodes_formatted_for_different_clusters_are_refused(tmp_path: Path) -> None:
    cluster = KafkaCluster(root=tmp_path, cache_dir=tmp_path / "cache", ports=VOTERS)
    for node, cluster_id in ((1, "one"), (3, "other")):
        cluster.node_dir(node).mkdir()
        (cluster.node_dir(node) / "cluster.id").write_text(cluster_id)

    with pytest.raises(StackError, match="different clusters"):
        cluster._ensure_cluster_id()


def test_three_brokers_prefer_consecutive_port_pairs_and_keep_them(tmp_path: Path) -> None:
    layout = StackLayout(root=tmp_path, cache_dir=tmp_path / "cache")
    preferred = PreferredPorts(kafka=0, kafka_controller=0, clickhouse=0, s3=0)

    state = local_stack._choose_ports(layout, preferred, 3)
    local_stack._write_state(layout, state)

    every = [p for node in state.kafka_nodes for p in (node.broker, node.controller)]
    assert len({*every, state.ports.clickhouse, state.ports.s3}) == 8
    assert state.kafka_nodes[0] == kafka.KafkaPorts(state.ports.kafka, state.ports.kafka_controller)
    assert local_stack._read_state(layout) == state
    written = json.loads(layout.state_file.read_text())
    assert set(written["endpoints"]) == {"kafka-1", "kafka-2", "kafka-3", "clickhouse", "s3"}
    assert local_stack._choose_ports(layout, preferred, 3) == state  # free again: reused


def test_one_broker_keeps_the_state_file_of_before(tmp_path: Path) -> None:
    layout = StackLayout(root=tmp_path, cache_dir=tmp_path / "cache")
    layout.state_file.write_text(
        json.dumps({"ports": {"kafka": 1, "kafka_controller": 2, "clickhouse": 3, "s3": 4}})
    )

    state = local_stack._read_state(layout)

    assert state is not None
    assert state.kafka_nodes == (kafka.KafkaPorts(1, 2),)
    assert list(local_stack._pid_files(layout, state.brokers)) == ["kafka", "clickhouse", "s3"]
    assert list(local_stack._pid_files(layout, 3)) == [
        "kafka-1",
        "kafka-2",
        "kafka-3",
        "clickhouse",
        "s3",
    ]


def test_a_cluster_stack_exports_rf_3_and_min_isr_2_for_topics_ensure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = local_stack._State(PreferredPorts(29092, 29093, 28123, 29000), VOTERS)
    endpoints = local_stack._endpoints(state, S3Keys("r", "rs"), S3Keys("u", "us"))
    for line in endpoints.exports():
        name, _, value = line.removeprefix("export ").partition("=")
        monkeypatch.setenv(name, value)

    settings = AuditlogSettings()  # as `auditlog topics ensure` reads them

    assert settings.kafka_bootstrap == "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096"
    assert settings.topic_replication_factor == 3
    assert settings.topic_min_insync_replicas == 2


def test_a_single_broker_stack_leaves_topic_settings_to_the_broker() -> None:
    exports = StackEndpoints("127.0.0.1:1", "http://x", "http://y", S3Keys("a", "b")).exports()

    assert not any("REPLICATION" in line or "INSYNC" in line for line in exports)
