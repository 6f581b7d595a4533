"""The accounts topic (:mod:`accounts.store`): a compacted topic used as a table, one record
per account. ``auditlog topics ensure`` creates it with the other topics
(:mod:`auditlog.wiring`)."""

from __future__ import annotations

from runtime.topic_spec import TopicSpec, compacted_topic_spec


def accounts_topic_spec(
    name: str, *, replication_factor: int | None, min_insync_replicas: int | None
) -> TopicSpec:
    """The accounts topic: keeps the latest record per account
    (:func:`~runtime.topic_spec.compacted_topic_spec`)."""
    return compacted_topic_spec(
        name, replication_factor=replication_factor, min_insync_replicas=min_insync_replicas
    )
