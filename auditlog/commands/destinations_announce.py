"""Publishing a destination change as an audit event, once the change itself succeeded."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from auditlog import wiring
from auditlog.commands.destinations_common import EXIT_NOT_PUBLISHED
from auditlog.settings import AuditlogSettings
from producers.delivery import DeliveryError, PublishError
from schemas.validation import InvalidEventError
from sinks.destinations.model import Destination


def _publish(
    settings: AuditlogSettings,
    destination: Destination,
    action: str,
    actor: Mapping[str, str],
    details: Mapping[str, str],
    *,
    failure: str | None = None,
) -> str:
    """Publish ``action`` as an audit event of the destination's tenant; blocks until
    Kafka acknowledged it (raises :class:`PublishError` subclasses when it did not)."""
    event = {
        "tenant_id": destination.tenant_id,
        "occurred_at": datetime.now(UTC),
        "action": action,
        "actor": dict(actor),
        "resource": {
            "type": "audit_stream",
            "id": destination.id,
            "name": destination.name or None,
        },
        "outcome": {"status": "failure", "reason": failure[:1024]}
        if failure
        else {"status": "success"},
        "details": {key: value[:2048] for key, value in details.items()},
        "source": "auditlog-cli",
    }
    with wiring.audit_producer(settings, client_id="auditlog-destinations") as producer:
        return producer.publish(event)


def announce(
    settings: AuditlogSettings,
    destination: Destination,
    action: str,
    actor: Mapping[str, str],
    details: Mapping[str, str],
    *,
    failure: str | None = None,
    code: int = 0,
) -> int:
    """Publish the change; ``code`` when published, 5 when not (the change stays)."""
    try:
        event_id = _publish(settings, destination, action, actor, details, failure=failure)
    except (PublishError, DeliveryError, InvalidEventError, OSError) as exc:
        print(
            f"auditlog: the change is stored, but its audit event was not published: {exc}",
            file=sys.stderr,
        )
        return code or EXIT_NOT_PUBLISHED
    print(f"published {action} {event_id}")
    return code
