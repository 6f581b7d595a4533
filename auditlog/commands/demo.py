"""``auditlog demo``: start the local stack if needed, run the main job end to end on the
embedded defaults, print what happened, and stop what it started."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from auditlog import smoke
from auditlog.commands.stack import layout_from
from auditlog.settings import AuditlogSettings
from deploy.stack import local_stack
from deploy.stack.endpoints import StackEndpoints


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the pipeline end to end on the local stack and print what happened",
    )
    parser.add_argument(
        "--external",
        action="store_true",
        help="use the AUDITLOG_* endpoints instead of starting the local stack",
    )
    parser.add_argument("--events", type=int, default=4000, help="how many events to send")
    parser.set_defaults(run=_demo)


def _say(msg: str) -> None:
    print(msg, flush=True)


def _demo(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    layout = layout_from(settings)
    started_here = False
    if args.external:
        endpoints = StackEndpoints(
            settings.kafka_bootstrap, settings.clickhouse_url, settings.s3_endpoint
        )
    else:
        existing = local_stack.running_endpoints(layout)
        started_here = existing is None
        endpoints = existing or local_stack.up(layout, on_progress=_say)
        _say(f"local stack in {layout.root}: " + ", ".join(endpoints.exports()))
    try:
        report = smoke.run(endpoints, bucket=local_stack.DEFAULT_BUCKET, count=args.events)
    finally:
        if started_here:
            _say("stopping the stack this demo started: " + ", ".join(local_stack.down(layout)))
    _say(f"smoke run {report.run_id} in {report.seconds:.1f} s:")
    _say(f"  kafka       produced {report.produced}, consumed {report.consumed} (group committed)")
    _say(f"  clickhouse  rows per tenant {report.rows_per_tenant}")
    _say(f"  s3          wrote and read back {report.s3_object}")
    print("demo ok", file=sys.stdout, flush=True)
    return 0
