"""The sinks' control topics: the destination store (:mod:`sinks.destinations.store`) and
the lanes' delivery progress (:mod:`sinks.progress`), both compacted topics used as tables.
``auditlog topics ensure`` creates them with the events topics (:mod:`auditlog.wiring`)."""

from __future__ import annotations

from runtime.topic_spec import TopicSpec, compacted_topic_spec


def control_topic_specs(
    *,
    destinations_topic: str,
    progress_topic: str,
    replication_factor: int | None,
    min_insync_replicas: int | None,
) -> list[TopicSpec]:
    """The destinations topic and the sink progress topic, in that order: each keeps the
    latest record per key (:func:`~runtime.topic_spec.compacted_topic_spec`)."""
    return [
        compacted_topic_spec(
            name, replication_factor=replication_factor, min_insync_replicas=min_insync_replicas
        )
        for name in (destinations_topic, progress_topic)
    ]
