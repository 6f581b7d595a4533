"""``auditlog destinations list | show``: what the store holds, and a destination's health."""

from __future__ import annotations

import argparse
import sys

from auditlog import wiring
from auditlog.commands import destination_view as view
from auditlog.commands import destinations_common as common
from auditlog.settings import AuditlogSettings
from runtime.compacted_table import TableError
from sinks.progress import destination_health


def list_destinations(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    store = common.store(settings)
    found = store.list(args.tenant)
    if found:
        for line in view.table(found):
            print(line)
    else:
        print("no destinations" + (f" of tenant {args.tenant}" if args.tenant else ""))
    for name, reason in sorted(store.invalid.items()):
        print(f"auditlog: destination {name} is unreadable and left out: {reason}", file=sys.stderr)
    return 0


def show(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    destination = common.load(common.store(settings), args.id)
    for line in view.details(destination):
        print(line)
    print("health:")
    for line in _health(settings, destination.id):
        print(f"  {line}")
    return 0


def _health(settings: AuditlogSettings, destination_id: str) -> list[str]:
    """The destination's delivery health as the sink workers recorded it."""
    try:
        health = destination_health(
            wiring.kafka_connection(settings), settings.sink_progress_topic, destination_id
        )
    except TableError as exc:
        return [f"unavailable: {exc}"]
    return health.lines()
