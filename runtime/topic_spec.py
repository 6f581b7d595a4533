"""A Kafka topic as we want it (:class:`TopicSpec`), and the compacted topic that serves as
a table (:func:`compacted_topic_spec`).

The pipeline's topics are stated by their owners: the events and dead-letter topics in
:mod:`producers.topic_specs`, the sinks' destinations and progress topics in
:mod:`sinks.control_topics`, the account facts in :mod:`accounts.topic`.
:mod:`runtime.topic_admin` creates and checks them; :mod:`runtime.topic_drift` says how a
live topic differs from its spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka.admin import NewTopic

MS_PER_HOUR = 3_600_000

#: Control topics (destinations, sink progress, account facts) hold small keyed records.
CONTROL_PARTITIONS = 3


@dataclass(frozen=True)
class TopicSpec:
    """A topic as we want it.

    ``replication_factor`` None means the cluster's default (``default.replication.factor``);
    ``config`` holds only the topic-level configs we set explicitly, and only those are
    compared with a live topic.
    """

    name: str
    partitions: int
    replication_factor: int | None
    config: dict[str, str] = field(hash=False)

    def new_topic(self) -> NewTopic:
        """The creation request for this topic (replication factor -1: the cluster's default)."""
        rf = -1 if self.replication_factor is None else self.replication_factor
        return NewTopic(
            self.name,
            num_partitions=self.partitions,
            replication_factor=rf,
            config=dict(self.config),
        )


def compacted_topic_spec(
    name: str, *, replication_factor: int | None, min_insync_replicas: int | None
) -> TopicSpec:
    """A compacted topic that keeps the latest record per key forever (a table, read and
    written through :class:`~runtime.compacted_table.CompactedTable`). A record with no
    value (a tombstone) deletes its key after ``delete.retention.ms``."""
    isr = {} if min_insync_replicas is None else {"min.insync.replicas": str(min_insync_replicas)}
    return TopicSpec(
        name=name,
        partitions=CONTROL_PARTITIONS,
        replication_factor=replication_factor,
        config={
            "cleanup.policy": "compact",
            "min.compaction.lag.ms": "0",
            "delete.retention.ms": str(24 * MS_PER_HOUR),
            "compression.type": "zstd",
            **isr,
        },
    )
