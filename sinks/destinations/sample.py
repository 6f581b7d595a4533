"""The sample delivery of ``auditlog destinations test``: one real audit event of the
destination's tenant, encoded as the destination receives events.

The event (``audit_stream.destination_tested``, by the actor who runs the test) is
validated like any other, framed and decoded again as the sink worker would see it, then
encoded with :mod:`sinks.encoding` in the destination's format and compression. Its
:class:`~sinks.senders.base.Payload` says partition ``-1`` and offsets ``0``-``0``: no
real partition has that number, so a test delivery never overwrites a real object in S3
nor shares an idempotency key with a real webhook delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from schemas.validation import EventValidator
from schemas.wire import Decoder, SingleObjectEncoder
from sinks.destinations.model import Destination
from sinks.encoding import assemble, event_json
from sinks.senders.base import Payload

TEST_PARTITION = -1
TEST_ACTION = "audit_stream.destination_tested"


def sample_event(
    destination: Destination,
    *,
    actor: Mapping[str, str],
    now: datetime,
    validator: EventValidator | None = None,
) -> dict[str, Any]:
    """The sample event as the sink worker decodes it from the events topic."""
    event = (validator or EventValidator()).validate(
        {
            "tenant_id": destination.tenant_id,
            "occurred_at": now,
            "action": TEST_ACTION,
            "actor": dict(actor),
            "resource": {
                "type": "audit_stream",
                "id": destination.id,
                "name": destination.name or None,
            },
            "details": {"sample": "true", "note": "a test delivery from auditlog"},
            "source": "auditlog-cli",
        }
    )
    return Decoder().decode(SingleObjectEncoder().encode(event.to_avro()))


def sample_payload(
    destination: Destination,
    *,
    topic: str,
    actor: Mapping[str, str],
    now: datetime,
    validator: EventValidator | None = None,
) -> Payload:
    """One-event payload for ``destination``, on partition :data:`TEST_PARTITION`."""
    event = sample_event(destination, actor=actor, now=now, validator=validator)
    encoded = assemble([event_json(event)], destination.format, destination.compression)
    return Payload(
        tenant_id=destination.tenant_id,
        destination_id=destination.id,
        topic=topic,
        partition=TEST_PARTITION,
        first_offset=0,
        last_offset=0,
        record_count=1,
        first_event_at=event["occurred_at"],
        body=encoded.body,
        content_type=encoded.content_type,
        content_encoding=encoded.content_encoding,
        file_extension=encoded.file_extension,
    )
