"""``auditlog sink``: a sink worker, until stopped (or idle, for batch runs)."""

from __future__ import annotations

import argparse
import logging
import signal
from typing import Any

from auditlog import sink_wiring, startup_checks
from auditlog.logging_setup import configure_json_logging
from auditlog.settings import AuditlogSettings
from runtime.health import HealthServer, HealthState
from sinks.behind import describe

_LOG = logging.getLogger("auditlog.sink")
#: ``--exit-when-idle`` ended with destinations behind (failing, or parked and not caught up).
EXIT_BEHIND = 6


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "sink",
        help="run a sink worker (streams each tenant's events to its destinations)",
        description=(
            "Consume the events topic in the sink group and deliver each tenant's events to "
            "its destinations. SIGTERM or SIGINT: let deliveries in flight finish, commit, "
            "leave the group, list the destinations left behind, exit 0."
        ),
    )
    parser.add_argument(
        "--exit-when-idle",
        type=float,
        metavar="SECONDS",
        help="exit once nothing arrived for this long and everything read was delivered to "
        "every destination that answers; destinations whose deliveries fail do not hold it, "
        f"they are listed as behind and the exit code is {EXIT_BEHIND}",
    )
    parser.set_defaults(run=_sink)


def _sink(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    configure_json_logging(settings.log_level)
    startup_checks.check_kafka(
        settings,
        topics=[settings.events_topic, settings.destinations_topic, settings.sink_progress_topic],
    )
    health = HealthState(settings.sink_group_id)
    server = HealthServer(health)
    port = startup_checks.start_health_server(server, settings)
    with sink_wiring.sink_worker(settings, health, exit_when_idle_s=args.exit_when_idle) as worker:
        _LOG.info(
            "sink starting",
            extra={
                "group": settings.sink_group_id,
                "topic": settings.events_topic,
                "metrics": f"http://{settings.metrics_host}:{port}/metrics",
            },
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _signum, _frame: worker.stop())
        try:
            stats = worker.run()
        finally:
            server.stop()
    print(
        f"records: {stats.records}, delivered: {stats.delivered_records} in "
        f"{stats.batches} batches, failed attempts: {stats.failed_attempts}, "
        f"parked: {stats.parked}"
    )
    for line in describe(stats.behind):
        print(line)
    return EXIT_BEHIND if stats.idle_exit and stats.behind else 0
