"""``auditlog generate``: realistic synthetic audit activity, to Kafka or to NDJSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from auditlog import startup_checks, wiring
from auditlog.commands.produce import close_and_count_failures
from auditlog.settings import AuditlogSettings
from producers.generator import DEFAULT_START, Event, GeneratorConfig, generate, paced
from producers.producer import AuditProducer

_MEAN_GAP_MS = 500.0


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "generate",
        help="generate synthetic audit activity (publish it, or write NDJSON)",
        description=(
            "Realistic synthetic activity: tenants of very different sizes, users with "
            "sessions (login, actions, logout), failed logins, admin actions, workflow starts "
            "and stops. The same --seed and --start give the same events. Without --output the "
            "events are validated and published to the events topic."
        ),
    )
    parser.add_argument("--events", type=int, required=True, help="how many events")
    parser.add_argument("--tenants", type=int, default=50, help="how many tenants (accounts)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--rate",
        type=float,
        help="events per second; each event is then stamped with the time it is sent",
    )
    parser.add_argument(
        "--start",
        type=datetime.fromisoformat,
        help=(
            "time of the first event, ISO 8601 with a zone (default: "
            f"{DEFAULT_START.isoformat()} with --output, otherwise so the last event is now)"
        ),
    )
    parser.add_argument("--output", help="write NDJSON to this file (- for stdout); no Kafka")
    parser.set_defaults(run=_generate)


def _generate(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    start = args.start
    live = args.output is None and start is None
    if start is None:
        # The generated span is about events x gap; the margin keeps the last one in the past.
        span = timedelta(milliseconds=1.2 * _MEAN_GAP_MS * args.events + 60_000)
        start = datetime.now(UTC) - span if live else DEFAULT_START
    config = GeneratorConfig(
        events=args.events,
        tenants=args.tenants,
        seed=args.seed,
        start=start,
        mean_gap_ms=_MEAN_GAP_MS,
        # Ending "now" needs a span that does not depend on the hour of day.
        diurnal=not live,
    )
    events: Iterator[Event] = generate(config)
    if args.rate:
        events = _stamped_now(paced(events, args.rate))
    if args.output == "-":
        return _write(events, sys.stdout)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            return _write(events, out)
    return _publish(events, settings)


def _stamped_now(events: Iterator[Event]) -> Iterator[Event]:
    """Live mode: each event happens when it is sent."""
    for event in events:
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        event["occurred_at"] = now.replace("+00:00", "Z")
        yield event


def _write(events: Iterator[Event], out: IO[str]) -> int:
    count = 0
    for event in events:
        out.write(json.dumps(event, separators=(",", ":")))
        out.write("\n")
        count += 1
    print(f"wrote {count} events", file=sys.stderr)
    return 0


def _publish(events: Iterator[Event], settings: AuditlogSettings) -> int:
    startup_checks.check_kafka(settings, topics=[settings.events_topic])
    producer = AuditProducer(
        wiring.producer_config(settings, client_id="auditlog-generate"),
        validator=wiring.validator(settings),
        encoder=wiring.encoder(settings),
    )
    sent = 0
    try:
        for event in events:
            producer.publish(event)
            sent += 1
    finally:
        failed = close_and_count_failures(producer)
    print(f"sent: {sent - failed}, failed: {failed}")
    return 1 if failed else 0
