"""How a live topic differs from its spec: :func:`compare` gives one :class:`Drift` per
difference, for an operator to decide on (:func:`runtime.topic_admin.ensure_topics` never
alters a live topic). Pure: no broker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from runtime.topic_spec import TopicSpec

# Configs whose value is a list whose order means nothing.
_LIST_CONFIGS = frozenset({"cleanup.policy"})


@dataclass(frozen=True)
class Drift:
    """One way a live topic differs from its spec; ``message`` says it for a person."""

    topic: str
    setting: str
    expected: str
    actual: str
    message: str


def compare(
    spec: TopicSpec,
    actual_partitions: int,
    actual_rf: int | None,
    actual_configs: Mapping[str, str | None],
) -> list[Drift]:
    """How a live topic differs from ``spec``; empty when it matches. Pure.

    Compared: the partition count (any change: the tenant -> partition mapping depends on
    it), the replication factor when the spec names one (``actual_rf`` None: unknown, not
    compared), and each config in ``spec.config`` against its effective live value (a key
    missing from ``actual_configs`` is drift: the broker does not report it). A replication
    factor below the spec's ``min.insync.replicas`` is drift too, whatever the spec's factor:
    every ``acks=all`` write to such a topic is refused.
    """
    drift: list[Drift] = []
    if actual_partitions != spec.partitions:
        drift.append(
            Drift(
                topic=spec.name,
                setting="partitions",
                expected=str(spec.partitions),
                actual=str(actual_partitions),
                message=(
                    f"partitions: expected {spec.partitions}, found {actual_partitions} "
                    "(which partition a tenant's events go to, and so their order, depends "
                    "on this count)"
                ),
            )
        )
    if (
        spec.replication_factor is not None
        and actual_rf is not None
        and actual_rf != spec.replication_factor
    ):
        drift.append(
            Drift(
                topic=spec.name,
                setting="replication.factor",
                expected=str(spec.replication_factor),
                actual=str(actual_rf),
                message=(
                    f"replication factor: expected {spec.replication_factor}, found {actual_rf}"
                ),
            )
        )
    for key, expected in spec.config.items():
        actual = actual_configs.get(key)
        if actual is not None and _same_value(key, expected, actual):
            continue
        shown = "nothing (the broker does not report it)" if actual is None else actual
        drift.append(
            Drift(
                topic=spec.name,
                setting=key,
                expected=expected,
                actual="" if actual is None else actual,
                message=f"{key}: expected {expected}, found {shown}",
            )
        )
    isr = spec.config.get("min.insync.replicas", "")
    rf_reported = any(d.setting == "replication.factor" for d in drift)
    if isr.isdigit() and actual_rf is not None and actual_rf < int(isr) and not rf_reported:
        drift.append(
            Drift(
                topic=spec.name,
                setting="replication.factor",
                expected=f">= {isr}",
                actual=str(actual_rf),
                message=(
                    f"replication factor: {actual_rf} is below min.insync.replicas {isr}, so "
                    "every acks=all write is refused"
                ),
            )
        )
    return drift


def _same_value(key: str, expected: str, actual: str) -> bool:
    if key in _LIST_CONFIGS:
        return _items(expected) == _items(actual)
    return expected == actual


def _items(value: str) -> frozenset[str]:
    return frozenset(item.strip() for item in value.split(",") if item.strip())
