"""``auditlog stack up | status | down``: the local development stack."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from auditlog.settings import AuditlogSettings
from deploy.stack import local_stack
from deploy.stack.layout import StackLayout
from runtime.redaction import redact_url


def layout_from(settings: AuditlogSettings) -> StackLayout:
    return StackLayout(root=settings.stack_dir.resolve(), cache_dir=settings.cache_dir.resolve())


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "stack",
        help="run the local development stack (Kafka, ClickHouse engine, S3)",
        description=(
            "The local development stack: Apache Kafka run with java, the embedded ClickHouse "
            "engine behind an HTTP gateway, and moto's S3 server. Development tooling only."
        ),
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser(
        "up",
        help="start what is not running; print export lines for the settings",
        description='Start the stack (idempotent). Use as: eval "$(auditlog stack up)"',
    )
    up.add_argument(
        "--brokers",
        type=int,
        default=1,
        metavar="N",
        help=(
            "Kafka KRaft nodes (default 1). N > 1: a cluster of N combined broker+controller "
            "nodes; topics at replication factor N with min.insync.replicas 2 (N >= 3), "
            "exported for `auditlog topics ensure`"
        ),
    )
    up.set_defaults(run=_up)
    actions.add_parser("status", help="show what runs and whether it answers").set_defaults(
        run=_status
    )
    actions.add_parser("down", help="stop everything the stack started").set_defaults(run=_down)


def _up(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    started = time.monotonic()
    endpoints = local_stack.up(
        layout_from(settings),
        brokers=args.brokers,
        on_progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(f"stack is up in {time.monotonic() - started:.1f} s", file=sys.stderr)
    for line in endpoints.exports():
        print(line)
    return 0


def _status(_args: argparse.Namespace, settings: AuditlogSettings) -> int:
    components = local_stack.status(layout_from(settings))
    for c in components:
        state = "up" if c.answering else ("running, not answering" if c.pid else "down")
        pid = str(c.pid) if c.pid else "-"
        print(f"{c.name:<11} {state:<23} pid {pid:<8} {redact_url(c.endpoint)}")
    return 0 if all(c.answering for c in components) else 3


def _down(_args: argparse.Namespace, settings: AuditlogSettings) -> int:
    stopped = local_stack.down(layout_from(settings))
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0
