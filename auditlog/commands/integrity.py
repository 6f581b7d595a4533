"""``auditlog integrity run``: the integrity appender, until stopped (or idle, for batch
runs). See docs/integrity.md and :mod:`integrity.appender`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from typing import Any

from auditlog import integrity_wiring, startup_checks, wiring
from auditlog.logging_setup import configure_json_logging
from auditlog.settings import AuditlogSettings
from integrity.copy_publisher import CopyPublishError
from integrity.keystore import KeyStore, KeyStoreError
from integrity.metrics import integrity_metrics
from runtime.health import HealthServer, HealthState

_LOG = logging.getLogger("auditlog.integrity")
EXIT_NO_KEY = 4
EXIT_COPY_UNACKNOWLEDGED = 1  # the streamed copy did not reach Kafka: restart (replays it)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "integrity",
        help="the integrity log: one verifiable Merkle log per account",
        description="Tamper evidence (docs/integrity.md).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="run the appender (consumer group integrity-log) and sign checkpoints",
        description=(
            "Append every record of the events topic to its account's Merkle log in "
            "ClickHouse and sign checkpoints of the logs with the keys of "
            "AUDITLOG_INTEGRITY_KEYS_DIR. SIGTERM or SIGINT: store and commit what is "
            "pending, sign the accounts that grew, leave the group, exit 0. Exit 4 when no "
            "signing key is valid now (auditlog keys generate); the setup codes 10-17 (see "
            "the README) when Kafka, the topic, ClickHouse or its schema is not there."
        ),
    )
    run.add_argument(
        "--exit-when-idle",
        type=float,
        metavar="SECONDS",
        help="exit once no record arrived for this long and everything read was appended",
    )
    run.set_defaults(run=_run)


def _run(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    store = KeyStore(settings.integrity_keys_dir)
    try:
        keys = store.active_signers(time.time_ns() // 1_000_000)
    except KeyStoreError as exc:
        print(f"auditlog: {exc}", file=sys.stderr)
        return EXIT_NO_KEY
    if not keys:
        print(
            f"auditlog: no checkpoint signing key is valid now in {settings.integrity_keys_dir}: "
            "run auditlog keys generate --name NAME",
            file=sys.stderr,
        )
        return EXIT_NO_KEY
    configure_json_logging(settings.log_level)
    startup_checks.check_kafka(settings, topics=[settings.events_topic])
    startup_checks.require_schema(settings)  # the integrity tables are migration 0005
    config = integrity_wiring.appender_config(settings, exit_when_idle_s=args.exit_when_idle)
    health = HealthState(config.group_id)
    appender = integrity_wiring.appender(
        settings,
        integrity_wiring.signers(store),
        exit_when_idle_s=args.exit_when_idle,
        metrics=integrity_metrics(),
        health=health,
    )
    server = HealthServer(health)
    port = startup_checks.start_health_server(server, settings)
    _LOG.info(
        "integrity appender starting",
        extra={
            "group": config.group_id,
            "topic": config.topic,
            "database": config.database,
            "keys": [key.name for key in keys],
            "metrics": f"http://{settings.metrics_host}:{port}/metrics",
        },
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: appender.stop())
    wiring.freeze_startup_heap()
    try:
        stats = appender.run()
    except CopyPublishError as exc:
        print(f"auditlog: {exc}; nothing past them was committed", file=sys.stderr)
        return EXIT_COPY_UNACKNOWLEDGED
    finally:
        server.stop()
    print(
        f"records: {stats.records}, appended: {stats.appended}, skipped: {stats.skipped}, "
        f"batches: {stats.batches}, checkpoints: {stats.checkpoints}, retries: {stats.retries}"
    )
    return 0
