"""``auditlog topics ensure | show``: the events and dead-letter topics, and the compacted
control topics (the destination store, the sinks' progress and the account facts).

``ensure`` creates what is missing and reports, without changing anything, how live topics
differ from the settings. Exit codes: 0 everything exists and matches (or was just created),
4 drift found (or, with ``--check-only``, a topic is missing), 2 settings that make no valid
topic, 1 the broker did not answer or refused.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from auditlog import startup_checks, wiring
from auditlog.settings import AuditlogSettings
from runtime.kafka_connection import KafkaConnection
from runtime.topic_admin import EnsureReport, TopicsError, describe_topics, ensure_topics
from runtime.topic_drift import Drift
from runtime.topic_spec import TopicSpec

EXIT_DRIFT = 4

#: Configs ``auditlog topics show`` prints for each topic, whether we set them or not.
SHOWN_CONFIGS = (
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "compression.type",
    "message.timestamp.type",
    "max.message.bytes",
    "min.insync.replicas",
    "unclean.leader.election.enable",
)

# Drift in these is not fixed with kafka-configs.sh.
_STRUCTURAL = frozenset({"partitions", "replication.factor"})


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "topics",
        help="create or check the events, dead-letter and control topics",
        description=(
            "The events topic, the dead-letter topic, and the compacted control topics "
            "(destinations, sink progress, account facts). Live topics are never changed: "
            "differences from the settings are reported for an operator to act on."
        ),
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    ensure = actions.add_parser(
        "ensure",
        help="create missing topics; report drift of existing ones (exit 4)",
        description=(
            "Create the topics that do not exist; compare the existing ones with the settings "
            "and report each difference without changing the topic. Exit 0: all match or "
            "were created; 4: drift (or missing topics with --check-only); 1: Kafka did not "
            "answer or refused."
        ),
    )
    ensure.add_argument(
        "--check-only",
        action="store_true",
        help="create nothing; a missing topic exits 4 like drift",
    )
    _add_timeout(ensure)
    ensure.set_defaults(run=_ensure)
    show = actions.add_parser(
        "show", help="print partitions, replication factor and configs of the topics"
    )
    _add_timeout(show)
    show.set_defaults(run=_show)


def _add_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for Kafka in all (default: 30)",
    )


class _Admin:
    """An AdminClient whose connection errors are kept for the message, not logged by the
    thousand (librdkafka logs a failed connect every few milliseconds while it retries)."""

    def __init__(self, kafka: KafkaConnection) -> None:
        self.kafka = kafka
        self._last_error: str | None = None
        self.client = AdminClient({**kafka.properties(), "log_level": 2}, error_cb=self._on_error)

    def _on_error(self, error: KafkaError) -> None:
        self._last_error = error.str()

    def failure(self, exc: TopicsError) -> str:
        self.client.poll(0)  # serves the error callbacks queued so far
        last = f"; last connection error: {self._last_error}" if self._last_error else ""
        return f"auditlog: {exc} (Kafka at {self.kafka}{last})"


def _specs_or_exit(settings: AuditlogSettings) -> list[TopicSpec] | None:
    try:
        return wiring.topic_specs(settings)
    except ValueError as exc:
        print(f"auditlog: topic settings: {exc}", file=sys.stderr)
        return None


def _ensure(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    specs = _specs_or_exit(settings)
    if specs is None:
        return 2
    startup_checks.check_kafka(settings)
    admin = _Admin(wiring.kafka_connection(settings))
    try:
        report = ensure_topics(
            admin.client, specs, create=not args.check_only, timeout_s=args.timeout_s
        )
    except TopicsError as exc:
        print(admin.failure(exc), file=sys.stderr)
        return 1
    width = max(len(spec.name) for spec in specs)
    for spec in specs:
        _print_outcome(spec, report, settings, width)
    if report.drift:
        print(
            "auditlog never changes a live topic: apply a fix above once you have decided on "
            "it, or change the AUDITLOG_* settings to the values found."
        )
    return 0 if report.in_sync else EXIT_DRIFT


def _print_outcome(
    spec: TopicSpec, report: EnsureReport, settings: AuditlogSettings, width: int
) -> None:
    """One line for the topic, then its differences and what could fix them."""
    name = spec.name.ljust(width)
    drift = report.drift_of(spec.name)
    if spec.name in report.missing:
        print(f"{name}  missing  not created (--check-only); `auditlog topics ensure` creates it")
        return
    if spec.name in report.created:
        rf = spec.replication_factor
        rf_text = f"replication factor {rf}" if rf else "the cluster's replication factor"
        print(f"{name}  created  {spec.partitions} partitions, {rf_text}")
        if drift:
            print("    but it does not match the settings:")
    elif drift:
        print(f"{name}  drift    topic NOT changed; differences from the settings:")
    else:
        print(f"{name}  ok")
    for d in drift:
        print(f"    {d.message}")
    events = spec.name == settings.events_topic
    kafka = wiring.kafka_connection(settings)
    for line in _remedies(kafka, spec.name, drift, events=events):
        print(f"  {line}")


def _remedies(kafka: KafkaConnection, topic: str, drift: list[Drift], *, events: bool) -> list[str]:
    """What an operator can run or set about ``drift``; printed, never run."""
    lines: list[str] = []
    configs = [d for d in drift if d.setting not in _STRUCTURAL]
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


def _show(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    specs = _specs_or_exit(settings)
    if specs is None:
        return 2
    startup_checks.check_kafka(settings)
    admin = _Admin(wiring.kafka_connection(settings))
    try:
        states = describe_topics(admin.client, [s.name for s in specs], timeout_s=args.timeout_s)
    except TopicsError as exc:
        print(admin.failure(exc), file=sys.stderr)
        return 1
    for spec in specs:
        state = states[spec.name]
        if state is None:
            print(f"{spec.name}: does not exist (`auditlog topics ensure` creates it)")
            continue
        print(
            f"{spec.name}: {state.partitions} partitions, "
            f"replication factor {state.replication_factor}"
        )
        for key in SHOWN_CONFIGS:
            value = state.configs.get(key)
            source = "topic" if key in state.overrides else "default"
            expected = spec.config.get(key)
            note = f", expected {expected}" if expected is not None and expected != value else ""
            print(f"  {key} = {value if value is not None else '-'}  ({source}{note})")
    return 0
