"""A three-node KRaft cluster from the same jars as the single broker: topics created by
`auditlog topics ensure` at replication factor 3 with min.insync.replicas 2, acks=all
produce and consume with a node killed, and the node back in every ISR after a restart."""

from __future__ import annotations

import signal
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from deploy.stack.endpoints import S3Keys, StackEndpoints
from deploy.stack.kafka_cluster import KafkaCluster
from tests.cli_process import clean_environment, run_auditlog
from tests.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.slow]

WAIT_S = 120.0


def test_topics_at_rf_3_survive_a_killed_node_and_its_isr_comes_back(
    kafka_cluster: KafkaCluster,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    topic = f"test.cluster.{suffix}"
    endpoints = StackEndpoints(
        kafka_cluster.bootstrap,
        "http://127.0.0.1:1",
        "http://127.0.0.1:1",
        S3Keys("unused", "unused"),
        topic_replication_factor=kafka_cluster.replication_factor,
        topic_min_insync_replicas=kafka_cluster.min_insync_replicas,
    )
    exported = dict(line.removeprefix("export ").split("=", 1) for line in endpoints.exports())
    env = clean_environment(
        **{k: v for k, v in exported.items() if "TOPIC" in k or "KAFKA" in k},
        AUDITLOG_EVENTS_TOPIC=topic,
        AUDITLOG_DEAD_LETTER_TOPIC=f"{topic}.dlq",
        AUDITLOG_TOPIC_PARTITIONS="3",
    )
    ensured = run_auditlog(["topics", "ensure"], env)
    assert ensured.returncode == 0, ensured.stderr + ensured.stdout

    partitions = kafka_cluster.partitions(topic)
    assert len(partitions) == 3
    assert all(len(p.replicas) == 3 for p in partitions.values()), partitions
    assert _config(kafka_cluster, topic, "min.insync.replicas") == "2"
    wait_until(lambda: kafka_cluster.fully_replicated(topic), WAIT_S, "ISR 3 everywhere")

    victim = partitions[0].leader
    kafka_cluster.stop(victim, signal.SIGKILL)
    wait_until(
        lambda: all(victim not in p.isr for p in kafka_cluster.partitions(topic).values()),
        WAIT_S,
        f"node {victim} out of every ISR",
    )

    producer = Producer(
        {"bootstrap.servers": kafka_cluster.bootstrap, "acks": "all", "enable.idempotence": True}
    )
    sent = {f"m-{n}".encode() for n in range(300)}
    for value in sorted(sent):
        producer.produce(topic, value=value, key=value)
    assert producer.flush(WAIT_S) == 0, "acks=all with two of three replicas in sync"

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_cluster.bootstrap,
            "group.id": f"cluster-test-{suffix}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    got: set[bytes] = set()

    def read() -> bool:
        for message in consumer.consume(500, timeout=0.5):
            if message.error() is None and message.value() is not None:
                got.add(bytes(message.value()))  # type: ignore[arg-type]
        return got >= sent

    try:
        wait_until(read, WAIT_S, "every message consumed with a node down")
    finally:
        consumer.close()
    assert got == sent

    kafka_cluster.start(victim)
    wait_until(lambda: kafka_cluster.fully_replicated(topic), WAIT_S, f"node {victim} in every ISR")


def _config(cluster: KafkaCluster, topic: str, name: str) -> str:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    described = admin.describe_configs([resource])[resource].result(timeout=30)
    return str(described[name].value)
