"""The brokers and the topics, judged from facts read by :mod:`auditlog.doctor.probes_kafka`.
Pure: no broker here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from auditlog.doctor.model import CheckResult, Problem, Status, result, skipped
from auditlog.setup_failures import START_STACK
from auditlog.topic_remedies import remedies
from runtime.kafka_connection import KafkaConnection
from runtime.topic_admin import TopicState
from runtime.topic_drift import Drift, compare
from runtime.topic_spec import TopicSpec

BROKERS, TOPICS = "brokers", "topics"

#: Drift in these breaks the product (tenant order, durability, compaction of the control
#: tables): a failure. Drift in the other configs (retention, compression, sizes) a warning.
SEVERE_SETTINGS = frozenset(
    {"partitions", "replication.factor", "min.insync.replicas", "cleanup.policy"}
)


@dataclass(frozen=True)
class Cluster:
    """What the brokers said: ``brokers`` as ``id host:port``; ``refused`` and ``unreachable``
    the sentence when no metadata came back."""

    brokers: tuple[str, ...] = ()
    controller: int | None = None
    cluster_id: str | None = None
    unreachable: str | None = None
    refused: str | None = None

    @property
    def answered(self) -> bool:
        return self.unreachable is None and self.refused is None


@dataclass(frozen=True)
class PartitionReplicas:
    partition: int
    leader: int  # -1: no leader
    replicas: int
    in_sync: int


@dataclass(frozen=True)
class TopicFacts:
    """A live topic (``state`` None: it does not exist) and its partitions' replicas."""

    state: TopicState | None
    partitions: tuple[PartitionReplicas, ...] = ()


def check_brokers(
    kafka: KafkaConnection, cluster: Cluster, specs: Sequence[TopicSpec]
) -> CheckResult:
    if cluster.refused is not None:
        return result(
            BROKERS,
            f"Kafka at {kafka} refused this client",
            [Problem(Status.FAIL, cluster.refused, "correct the AUDITLOG_KAFKA_* settings named")],
        )
    if cluster.unreachable is not None:
        return result(
            BROKERS,
            f"Kafka at {kafka}: {cluster.unreachable}",
            [
                Problem(
                    Status.FAIL,
                    f"no broker answered at {kafka.bootstrap}",
                    f"{START_STACK}, or set AUDITLOG_KAFKA_BOOTSTRAP to where it runs",
                )
            ],
        )
    problems = []
    wanted = max((s.replication_factor or 0 for s in specs), default=0)
    if wanted > len(cluster.brokers):
        problems.append(
            Problem(
                Status.FAIL,
                f"the topics want replication factor {wanted}, the cluster has "
                f"{len(cluster.brokers)} broker(s)",
                "add brokers, or lower AUDITLOG_TOPIC_REPLICATION_FACTOR",
            )
        )
    count = len(cluster.brokers)
    return result(
        BROKERS,
        f"{count} broker{'s' if count != 1 else ''} answered at {kafka.bootstrap} "
        f"(controller {cluster.controller}; versions are not reported by the Kafka protocol)",
        problems,
        brokers=list(cluster.brokers),
        controller=cluster.controller,
        cluster_id=cluster.cluster_id,
    )


def check_topics(
    kafka: KafkaConnection,
    specs: Sequence[TopicSpec],
    topics: Mapping[str, TopicFacts] | None,
    *,
    events_topic: str,
) -> CheckResult:
    """Each spec against its live topic: exists, drift (:func:`runtime.topic_drift.compare`),
    partitions without a leader, partitions with fewer in-sync replicas than
    ``min.insync.replicas`` (writes refused) or than their replicas (under-replicated)."""
    if topics is None:
        return skipped(TOPICS, "Kafka did not answer")
    problems: list[Problem] = []
    for spec in specs:
        facts = topics.get(spec.name, TopicFacts(None))
        if facts.state is None:
            problems.append(
                Problem(
                    Status.FAIL,
                    f"{spec.name}: does not exist",
                    "create it with `auditlog topics ensure`",
                )
            )
            continue
        state = facts.state
        drift = compare(spec, state.partitions, state.replication_factor, state.configs)
        problems += _drift_problems(kafka, spec.name, drift, events=spec.name == events_topic)
        problems += _replica_problems(spec, state, facts.partitions)
    present = sum(1 for spec in specs if topics.get(spec.name, TopicFacts(None)).state)
    return result(
        TOPICS,
        f"{present} of {len(specs)} topics exist"
        + ("" if problems else ", as specified, every partition led and in sync"),
        problems,
        topics={
            name: None
            if facts.state is None
            else {
                "partitions": facts.state.partitions,
                "replication_factor": facts.state.replication_factor,
                "configs": facts.state.configs,
            }
            for name, facts in topics.items()
        },
    )


def _drift_problems(
    kafka: KafkaConnection, topic: str, drift: list[Drift], *, events: bool
) -> list[Problem]:
    problems = []
    for d in drift:
        fixes = remedies(kafka, topic, [d], events=events)
        problems.append(
            Problem(
                Status.FAIL if d.setting in SEVERE_SETTINGS else Status.WARN,
                f"{topic}: {d.message}",
                "; ".join(fix.removeprefix("fix: ") for fix in fixes),
            )
        )
    return problems


def _replica_problems(
    spec: TopicSpec, state: TopicState, partitions: Sequence[PartitionReplicas]
) -> list[Problem]:
    problems = []
    leaderless = [p.partition for p in partitions if p.leader < 0]
    if leaderless:
        problems.append(
            Problem(
                Status.FAIL,
                f"{spec.name}: partitions {_list(leaderless)} have no leader (offline)",
                "bring back the brokers holding their replicas (kafka-topics.sh --describe "
                "--unavailable-partitions lists them)",
            )
        )
    isr_text = state.configs.get("min.insync.replicas") or spec.config.get("min.insync.replicas")
    isr = int(isr_text) if isr_text and isr_text.isdigit() else 1
    below = [p.partition for p in partitions if p.leader >= 0 and p.in_sync < isr]
    if below:
        problems.append(
            Problem(
                Status.FAIL,
                f"{spec.name}: partitions {_list(below)} have fewer in-sync replicas than "
                f"min.insync.replicas {isr}: every acks=all write to them is refused",
                "bring back the brokers of the missing replicas (kafka-topics.sh --describe "
                "--under-min-isr-partitions)",
            )
        )
    lagging = [p.partition for p in partitions if isr <= p.in_sync < p.replicas]
    if lagging:
        problems.append(
            Problem(
                Status.WARN,
                f"{spec.name}: partitions {_list(lagging)} are under-replicated",
                "check the brokers of the missing replicas (kafka-topics.sh --describe "
                "--under-replicated-partitions)",
            )
        )
    return problems


def _list(partitions: list[int], shown: int = 8) -> str:
    text = ", ".join(map(str, partitions[:shown]))
    return text + (f" and {len(partitions) - shown} more" if len(partitions) > shown else "")
