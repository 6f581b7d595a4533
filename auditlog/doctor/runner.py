"""The doctor's checks in order, each judged from facts its probe read; a check whose
service did not answer is skipped (the service's own check says why). :class:`Probes` is
the seam: :class:`LiveProbes` reads Kafka and ClickHouse, unit tests pass fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from confluent_kafka import KafkaException

from auditlog import wiring
from auditlog.doctor import checks_keys, probes_clickhouse, probes_kafka
from auditlog.doctor.checks_clickhouse import ClickHouseFacts, check_clickhouse
from auditlog.doctor.checks_destinations import check_destinations
from auditlog.doctor.checks_kafka import Cluster, TopicFacts, check_brokers, check_topics
from auditlog.doctor.checks_lag import ConsumerGroup, GroupOffsets, check_lag
from auditlog.doctor.checks_settings import check_settings
from auditlog.doctor.model import CheckResult, LagThresholds, Problem, Status, result, skipped
from auditlog.settings import AuditlogSettings
from runtime.compacted_table import TableError
from runtime.topic_admin import TopicsError
from sinks.destinations.model import Destination
from sinks.progress import LaneProgress

# What a probe raises when Kafka answered the metadata request but not a later one.
_KAFKA_ERRORS = (KafkaException, TopicsError, TableError, RuntimeError)


class Probes(Protocol):
    """The doctor's reads; each bounded by the probes' timeout."""

    def cluster(self, names: Sequence[str]) -> tuple[Cluster, dict[str, TopicFacts] | None]: ...

    def group(self, group: str, topic: str, partitions: int) -> GroupOffsets: ...

    def destinations(self) -> tuple[list[Destination], list[LaneProgress]]: ...

    def clickhouse(self) -> ClickHouseFacts: ...


class LiveProbes:
    """:class:`Probes` against the configured Kafka and ClickHouse."""

    def __init__(self, settings: AuditlogSettings, timeout_s: float) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._kafka = wiring.kafka_connection(settings)
        self._admin = probes_kafka.quiet_admin(self._kafka)

    def cluster(self, names: Sequence[str]) -> tuple[Cluster, dict[str, TopicFacts] | None]:
        return probes_kafka.read_cluster(self._kafka, self._admin, names, timeout_s=self._timeout_s)

    def group(self, group: str, topic: str, partitions: int) -> GroupOffsets:
        return probes_kafka.read_group(
            self._kafka, self._admin, group, topic, partitions, timeout_s=self._timeout_s
        )

    def destinations(self) -> tuple[list[Destination], list[LaneProgress]]:
        return probes_kafka.read_destinations(
            self._kafka,
            self._settings.destinations_topic,
            self._settings.sink_progress_topic,
            timeout_s=self._timeout_s,
        )

    def clickhouse(self) -> ClickHouseFacts:
        return probes_clickhouse.read_clickhouse(self._settings, timeout_s=self._timeout_s)


@dataclass(frozen=True)
class DoctorOptions:
    thresholds: LagThresholds = field(default_factory=LagThresholds)
    now: datetime | None = None  # the key check's clock; None: now


def run_checks(
    settings: AuditlogSettings, probes: Probes, options: DoctorOptions
) -> list[CheckResult]:
    """Every check, in the order they are printed. Never raises for what a service
    answers: an unexpected answer is that check's FAIL."""
    results = [check_settings(settings)]
    try:
        specs = wiring.topic_specs(settings)
    except ValueError:
        specs = []
    kafka = wiring.kafka_connection(settings)
    try:
        cluster, topics = probes.cluster([spec.name for spec in specs])
    except _KAFKA_ERRORS as exc:
        topics = None
        results.append(_failed("brokers", "Kafka answered, then did not", exc))
    else:
        results.append(check_brokers(kafka, cluster, specs))
    results.append(check_topics(kafka, specs, topics, events_topic=settings.events_topic))
    results.append(check_clickhouse(probes.clickhouse()))

    destinations: list[Destination] | None = None
    progress: list[LaneProgress] = []
    unread: str | None = None
    if topics is not None:
        try:
            destinations, progress = probes.destinations()
        except _KAFKA_ERRORS as exc:
            unread = str(exc)
    keys_in_use = checks_keys.configured(settings.integrity_keys_dir)
    consumers = [
        ConsumerGroup("writer lag", settings.writer_group_id, "auditlog consume"),
        ConsumerGroup(
            "sinks lag", settings.sink_group_id, "auditlog sink", in_use=bool(destinations)
        ),
        ConsumerGroup(
            "integrity lag",
            settings.integrity_group_id,
            "auditlog integrity run",
            in_use=keys_in_use,
        ),
    ]
    events = None if topics is None else topics.get(settings.events_topic)
    for consumer in consumers:
        results.append(_lag(probes, consumer, settings.events_topic, events, options))
    results.append(check_destinations(destinations, progress, unread=unread))
    now = options.now or datetime.now(UTC)
    results.append(checks_keys.check_keys(settings.integrity_keys_dir, int(now.timestamp() * 1000)))
    return results


def _lag(
    probes: Probes,
    consumer: ConsumerGroup,
    topic: str,
    events: TopicFacts | None,
    options: DoctorOptions,
) -> CheckResult:
    if events is None:
        return skipped(consumer.check, "Kafka did not answer")
    if events.state is None:
        return skipped(consumer.check, f"topic {topic} does not exist")
    try:
        offsets = probes.group(consumer.group, topic, events.state.partitions)
    except _KAFKA_ERRORS as exc:
        return _failed(consumer.check, f"the offsets of group {consumer.group} were not read", exc)
    return check_lag(consumer, offsets, options.thresholds)


def _failed(name: str, summary: str, exc: BaseException) -> CheckResult:
    return result(
        name,
        summary,
        [Problem(Status.FAIL, f"{summary}: {exc}", "run the doctor again; check the brokers")],
    )
