"""What the doctor reads from Kafka: the cluster, the topics, the consumer groups' offsets
and the sinks' control tables. Every function blocks at most about ``timeout_s`` (a closed
port answers at once) and turns Kafka's errors into facts for the checks, never a hang."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from auditlog.doctor.checks_kafka import Cluster, PartitionReplicas, TopicFacts
from auditlog.doctor.checks_lag import GroupOffsets, PartitionOffsets
from auditlog.startup_checks import KAFKA_REFUSAL_HINTS
from runtime.compacted_table import CompactedTable
from runtime.kafka_connection import KafkaConnection
from runtime.kafka_refusal import KafkaRefusedError, cluster_topics
from runtime.standalone_consumer import standalone_consumer
from runtime.topic_admin import describe_topics
from sinks.destinations.model import Destination
from sinks.destinations.store import DestinationStore
from sinks.progress import LaneProgress


def quiet_admin(kafka: KafkaConnection) -> AdminClient:
    """An admin client that logs nothing (its errors are the probes' results)."""
    quiet: dict[str, Any] = {"log_level": 0, "error_cb": lambda _error: None}
    return AdminClient({**kafka.properties(), **quiet})


def read_cluster(
    kafka: KafkaConnection, admin: AdminClient, names: Sequence[str], *, timeout_s: float
) -> tuple[Cluster, dict[str, TopicFacts] | None]:
    """The brokers and, when they answered, every named topic (None: not read). Raises
    :class:`runtime.topic_admin.TopicsError` when the brokers answer the metadata request
    but not the describe requests in time."""
    try:
        found = cluster_topics(kafka, timeout_s=timeout_s, hints=KAFKA_REFUSAL_HINTS)
    except KafkaRefusedError as exc:
        return Cluster(refused=str(exc)), None
    if found is None:
        return Cluster(unreachable=f"no broker answered within {timeout_s:g} s"), None
    metadata = admin.list_topics(timeout=timeout_s)
    cluster = Cluster(
        brokers=tuple(
            f"{b.id} {b.host}:{b.port}" for b in sorted(metadata.brokers.values(), key=_id)
        ),
        controller=metadata.controller_id if metadata.controller_id >= 0 else None,
        cluster_id=metadata.cluster_id,
    )
    states = describe_topics(admin, names, timeout_s=timeout_s)
    topics = {}
    for name, state in states.items():
        live = metadata.topics.get(name)
        partitions = (
            ()
            if live is None
            else tuple(
                PartitionReplicas(p.id, p.leader, len(p.replicas), len(p.isrs))
                for p in sorted(live.partitions.values(), key=_id)
            )
        )
        topics[name] = TopicFacts(state, partitions)
    return cluster, topics


def _id(item: Any) -> int:
    return int(item.id)


def read_group(
    kafka: KafkaConnection,
    admin: AdminClient,
    group: str,
    topic: str,
    partitions: int,
    *,
    timeout_s: float,
) -> GroupOffsets:
    """The group's committed offset, and the log start and end, of every partition of
    ``topic``, and how many members the group has now. Joins nothing, commits nothing."""
    consumer = standalone_consumer(kafka, client_id="auditlog-doctor", **{"group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=timeout_s)}
        rows = []
        for tp in tps:
            start, end = consumer.get_watermark_offsets(tp, timeout=timeout_s)
            offset = committed.get(tp.partition, -1)
            rows.append(PartitionOffsets(tp.partition, offset if offset >= 0 else None, start, end))
    finally:
        consumer.close()
    return GroupOffsets(group, topic, tuple(rows), _members(admin, group, timeout_s))


def _members(admin: AdminClient, group: str, timeout_s: float) -> int | None:
    """Members of the group now; None when the broker does not say."""
    futures = admin.describe_consumer_groups([group], request_timeout=timeout_s)
    try:
        description = futures[group].result(timeout=timeout_s + 1)
    except (KafkaException, concurrent.futures.TimeoutError):
        return None
    return len(description.members)


def read_destinations(
    kafka: KafkaConnection, destinations_topic: str, progress_topic: str, *, timeout_s: float
) -> tuple[list[Destination], list[LaneProgress]]:
    """Every destination, and every progress record of the sinks. Raises
    :class:`runtime.compacted_table.TableError` when a topic cannot be read in time."""
    store = DestinationStore(
        kafka, destinations_topic, client_id="auditlog-doctor", timeout_s=timeout_s
    )
    try:
        destinations = store.list()
    finally:
        store.close()
    table = CompactedTable(kafka, progress_topic, client_id="auditlog-doctor")
    try:
        records = table.load(timeout_s)
    finally:
        table.close()
    return destinations, [LaneProgress.from_json(value) for value in records.values()]
