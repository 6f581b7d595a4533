"""``auditlog destinations test``: send a sample event and print the destination's answer."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from auditlog import wiring
from auditlog.commands import destinations_common as common
from auditlog.commands.destinations_announce import announce
from auditlog.commands.destinations_common import EXIT_FAILED
from auditlog.settings import AuditlogSettings
from runtime.redaction import redact_text
from sinks.destinations.sample import sample_payload
from sinks.destinations.secrets import SecretError
from sinks.senders.base import DeliveryError as SendError


def send_sample(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = common.actor(args.actor)
    secrets = common.secret_box(settings)
    destination = common.load(common.store(settings), args.id)
    payload = sample_payload(
        destination,
        topic=settings.events_topic,
        actor=actor,
        now=datetime.now(UTC),
        validator=wiring.validator(settings),
    )
    error: str | None = None
    with wiring.http_client(settings) as http:
        try:
            sender = wiring.destination_sender(settings, destination, secrets, http=http)
            try:
                answer = sender.send(payload).detail
            finally:
                sender.close()
        except (SendError, SecretError) as exc:
            error = redact_text(str(exc)) or type(exc).__name__
    if error is None:
        print(f"{destination.id} accepted the sample event: {answer}")
        details = {"result": "succeeded", "answer": answer}
    else:
        print(
            f"auditlog: {destination.id} did not accept the sample event: {error}",
            file=sys.stderr,
        )
        details = {"result": "failed", "error": error}
    return announce(
        settings,
        destination,
        "audit_stream.destination_tested",
        actor,
        details,
        failure=error,
        code=EXIT_FAILED if error else 0,
    )
