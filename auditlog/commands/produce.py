"""``auditlog produce [FILE|-]``: publish NDJSON audit events, reporting every rejection."""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

from auditlog import startup_checks, wiring
from auditlog.settings import AuditlogSettings
from producers.delivery import DeliveryError
from producers.ndjson import read_ndjson
from producers.producer import AuditProducer
from schemas.validation import InvalidEventError

EXIT_REJECTED = 3
EXIT_DELIVERY_FAILED = 1


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "produce",
        help="publish NDJSON audit events (one JSON object per line)",
        description=(
            "Validate and publish audit events from an NDJSON file (or standard input). "
            "Invalid lines are reported with their line number and never sent. Exit status: "
            f"0 all sent, {EXIT_REJECTED} some lines rejected, {EXIT_DELIVERY_FAILED} some "
            "deliveries failed."
        ),
    )
    parser.add_argument("file", nargs="?", default="-", help="NDJSON file, or - for stdin")
    parser.add_argument("--dry-run", action="store_true", help="validate only; send nothing")
    parser.set_defaults(run=_produce)


def _produce(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    if args.file == "-":
        return _run(sys.stdin, args.dry_run, settings)
    with open(args.file, encoding="utf-8") as stream:
        return _run(stream, args.dry_run, settings)


def _run(stream: IO[str], dry_run: bool, settings: AuditlogSettings) -> int:
    validator = wiring.validator(settings)
    rejected = accepted = 0
    if not dry_run:
        startup_checks.check_kafka(settings, topics=[settings.events_topic])
    producer = (
        None
        if dry_run
        else AuditProducer(
            wiring.producer_config(settings, client_id="auditlog-produce"),
            validator=validator,
            encoder=wiring.encoder(settings),
        )
    )
    try:
        for line in read_ndjson(stream):
            try:
                if line.data is None:
                    raise ValueError(line.error)
                if producer is None:
                    validator.validate(line.data)
                else:
                    producer.publish(line.data)
                accepted += 1
            except (InvalidEventError, ValueError) as exc:
                rejected += 1
                print(f"line {line.number}: {exc}", file=sys.stderr)
    finally:
        failed = close_and_count_failures(producer)
    verb = "valid" if dry_run else "sent"
    print(f"{verb}: {accepted - failed}, rejected: {rejected}, failed: {failed}")
    if failed:
        return EXIT_DELIVERY_FAILED
    return EXIT_REJECTED if rejected else 0


def close_and_count_failures(producer: AuditProducer | None) -> int:
    """Flush; print each failed delivery; return how many failed or stayed undelivered."""
    if producer is None:
        return 0
    try:
        producer.close()
    except DeliveryError as exc:
        for result in exc.report.failed:
            print(f"event {result.event_id}: delivery failed: {result.error}", file=sys.stderr)
        return len(exc.report.failed) + exc.report.pending
    return 0
