"""The events topic and the dead-letter topic, as they should be (:func:`topic_specs`).

The specs are built from plain values (the command line builds them from the settings);
:func:`runtime.topic_admin.ensure_topics` makes them exist.
"""

from __future__ import annotations

from runtime.topic_spec import MS_PER_HOUR, TopicSpec

#: Largest record batch the events topic accepts (Kafka's own default, stated explicitly).
EVENTS_MAX_MESSAGE_BYTES = 1_048_576
#: Dead-letter records carry the original record plus headers with the reason, the origin
#: (topic, partition, offset) and the error text; 64 KiB above the events topic leaves room.
DEAD_LETTER_MAX_MESSAGE_BYTES = EVENTS_MAX_MESSAGE_BYTES + 65_536
#: Dead-letter traffic is poison records only; a few partitions let a replay run in parallel.
DEAD_LETTER_MAX_PARTITIONS = 3


def topic_specs(
    *,
    events_topic: str,
    dead_letter_topic: str,
    partitions: int,
    replication_factor: int | None,
    min_insync_replicas: int | None,
    events_retention_hours: int,
    dead_letter_retention_hours: int,
) -> list[TopicSpec]:
    """The events topic and the dead-letter topic, in that order.

    Events: ``partitions`` partitions (the tenant key maps to one of them: per-tenant
    ordering), time-based retention only (``retention.bytes=-1``: a size cap would silently
    shorten the replay window of the sinks), zstd, producer timestamps, 1 MiB records.
    Dead letters: ``min(partitions, 3)`` partitions (poison records only, still keyed by
    tenant), its own retention, zstd, room for the extra headers. ``min.insync.replicas`` is
    set on both only when given. Raises ValueError on values Kafka would refuse or that would
    refuse every ``acks=all`` write.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    if replication_factor is not None and replication_factor < 1:
        raise ValueError(f"replication factor must be at least 1, got {replication_factor}")
    if min_insync_replicas is not None:
        if min_insync_replicas < 1:
            raise ValueError(f"min.insync.replicas must be at least 1, got {min_insync_replicas}")
        if replication_factor is not None and min_insync_replicas > replication_factor:
            raise ValueError(
                f"min.insync.replicas {min_insync_replicas} exceeds the replication factor "
                f"{replication_factor}: every acks=all write would be refused"
            )
    for what, hours in (
        ("events retention", events_retention_hours),
        ("dead-letter retention", dead_letter_retention_hours),
    ):
        if hours < 1:
            raise ValueError(f"{what} must be at least 1 hour, got {hours}")
    if events_topic == dead_letter_topic:
        raise ValueError(
            f"the events and dead-letter topics must differ, both are {events_topic!r}"
        )

    isr = {} if min_insync_replicas is None else {"min.insync.replicas": str(min_insync_replicas)}
    events = TopicSpec(
        name=events_topic,
        partitions=partitions,
        replication_factor=replication_factor,
        config={
            "cleanup.policy": "delete",
            "retention.ms": str(events_retention_hours * MS_PER_HOUR),
            "retention.bytes": "-1",
            "compression.type": "zstd",
            "message.timestamp.type": "CreateTime",
            "max.message.bytes": str(EVENTS_MAX_MESSAGE_BYTES),
            **isr,
        },
    )
    dead_letters = TopicSpec(
        name=dead_letter_topic,
        partitions=min(partitions, DEAD_LETTER_MAX_PARTITIONS),
        replication_factor=replication_factor,
        config={
            "cleanup.policy": "delete",
            "retention.ms": str(dead_letter_retention_hours * MS_PER_HOUR),
            "retention.bytes": "-1",
            "compression.type": "zstd",
            "message.timestamp.type": "CreateTime",
            "max.message.bytes": str(DEAD_LETTER_MAX_MESSAGE_BYTES),
            **isr,
        },
    )
    return [events, dead_letters]
