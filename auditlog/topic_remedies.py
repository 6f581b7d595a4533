"""What an operator can run or set about a topic's drift (:mod:`runtime.topic_drift`), in
the settings' own names: printed by ``auditlog topics ensure`` and ``auditlog doctor``,
never run. Pure."""

from __future__ import annotations

import shlex

from runtime.kafka_connection import KafkaConnection
from runtime.topic_drift import Drift

# Drift in these is not fixed with kafka-configs.sh.
STRUCTURAL = frozenset({"partitions", "replication.factor"})


def remedies(kafka: KafkaConnection, topic: str, drift: list[Drift], *, events: bool) -> list[str]:
    """What an operator can run or set about ``drift``; printed, never run."""
    lines: list[str] = []
    configs = [d for d in drift if d.setting not in STRUCTURAL]
    if configs:
        values = ",".join(f"{d.setting}={d.expected}" for d in configs)
        command = [
            "kafka-configs.sh",
            "--bootstrap-server",
            kafka.bootstrap,
            # A secured cluster wants the client's SASL/TLS settings too.
            *(
                ["--command-config", "client.properties"]
                if kafka.security.security_protocol != "PLAINTEXT"
                else []
            ),
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            topic,
            "--add-config",
            values,
        ]
        lines.append("fix: " + shlex.join(command))
    for d in drift:
        if d.setting == "partitions":
            accept = (
                f", or set AUDITLOG_TOPIC_PARTITIONS={d.actual} to accept the live count"
                if events
                else " (this topic's count is min(AUDITLOG_TOPIC_PARTITIONS, 3))"
            )
            lines.append(
                "partitions: changing the count remaps tenants to partitions and breaks their "
                f"order across the change: plan a migration to a new topic{accept}"
            )
        elif d.setting == "replication.factor" and d.expected.startswith(">="):
            lines.append(
                "replication factor: raise it with kafka-reassign-partitions.sh, or lower "
                f"AUDITLOG_TOPIC_MIN_INSYNC_REPLICAS and the topic's min.insync.replicas to "
                f"{d.actual}"
            )
        elif d.setting == "replication.factor":
            lines.append(
                "replication factor: change it with kafka-reassign-partitions.sh, or set "
                f"AUDITLOG_TOPIC_REPLICATION_FACTOR={d.actual} to accept it"
            )
    return lines
