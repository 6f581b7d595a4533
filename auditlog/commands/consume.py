"""``auditlog consume``: the ClickHouse writer, until stopped (or idle, for batch runs)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from auditlog import startup_checks, wiring
from auditlog.logging_setup import configure_json_logging
from auditlog.settings import AuditlogSettings
from consumers.dead_letter_budget import DeadLetterLimitExceeded
from consumers.metrics import writer_metrics
from consumers.telemetry import Telemetry
from runtime.health import HealthServer, HealthState

_LOG = logging.getLogger("auditlog.consume")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "consume",
        help="run the ClickHouse writer (consumer group into the events table)",
        description=(
            "Consume the events topic in the writer's group and insert into ClickHouse, "
            "exactly once. SIGTERM or SIGINT: finish or abandon the current insert, commit "
            "what landed, leave the group, exit 0. Exit 3 when the dead-letter limit stops it; "
            "10-16 when Kafka, its topics, ClickHouse, the schema or the metrics port are not "
            "set up (one line saying what to do)."
        ),
    )
    parser.add_argument(
        "--exit-when-idle",
        type=float,
        metavar="SECONDS",
        help="exit once no record arrived for this long and everything read was written",
    )
    parser.set_defaults(run=_consume)


def _consume(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    configure_json_logging(settings.log_level)
    startup_checks.check_kafka(settings, topics=[settings.events_topic, settings.dead_letter_topic])
    startup_checks.require_schema(settings)
    config = wiring.writer_config(settings, exit_when_idle_s=args.exit_when_idle)
    health = HealthState(config.group_id)
    server = HealthServer(health)
    port = startup_checks.start_health_server(server, settings)
    _LOG.info(
        "writer starting",
        extra={
            "group": config.group_id,
            "topic": config.topic,
            "table": config.table,
            "metrics": f"http://{settings.metrics_host}:{port}/metrics",
        },
    )
    writer, dead_letters = wiring.writer(
        settings,
        exit_when_idle_s=args.exit_when_idle,
        observer=Telemetry(writer_metrics(), health, config.topic, config.table),
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: writer.stop())
    wiring.freeze_startup_heap()
    wiring.collect_young_less_often()
    try:
        stats = writer.run()
    except DeadLetterLimitExceeded as exc:
        print(f"auditlog: {exc}", file=sys.stderr)
        return 3
    finally:
        dead_letters.close()
        server.stop()
    print(
        f"records: {stats.records}, rows: {stats.rows}, batches: {stats.batches}, "
        f"dead-lettered: {stats.dead_lettered}, retries: {stats.retries}"
    )
    return 0
