"""The audit event as a pydantic model: the Python mirror of the current Avro schema.

It checks what can be checked on one event alone: types, required fields, sizes, formats.
Rules that need context (the activity catalog, the clock) live in :mod:`schemas.validation`.
Field names are those of the schema and of the NDJSON input of ``auditlog produce``.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from schemas.catalog.model import ACTION_PATTERN, ID_PATTERN

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)

MAX_DETAILS = 64
MAX_DETAILS_BYTES = 16 * 1024
MAX_CHANGES = 200

Text256 = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text512 = Annotated[str, StringConstraints(min_length=1, max_length=512)]
SnakeId = Annotated[str, StringConstraints(max_length=64, pattern=ID_PATTERN.pattern)]
TenantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")]
Email = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Action = Annotated[str, StringConstraints(max_length=128, pattern=ACTION_PATTERN.pattern)]
DetailValue = Annotated[str, StringConstraints(max_length=2048)]
ChangeValue = Annotated[str, StringConstraints(max_length=4096)]


def normalise_ip(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


IpAddress = Annotated[str, AfterValidator(normalise_ip)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Actor(_Part):
    """Who did it: a user, an API client, or the platform itself."""

    type: Literal["user", "api_client", "system", "unknown"]
    id: Text256
    name: Text512 | None = None
    email: Email | None = None


class Resource(_Part):
    """What it was done to."""

    type: SnakeId
    id: Text256
    name: Text512 | None = None


class Workspace(_Part):
    """Where in the account, when the activity has a workspace."""

    id: Text256 | None = None
    name: Text512 | None = None
    environment: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class RequestContext(_Part):
    """From where: the request that caused the event."""

    ip: IpAddress | None = None
    user_agent: Annotated[str, StringConstraints(max_length=1024)] | None = None
    request_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    session_id: Annotated[str, StringConstraints(max_length=128)] | None = None


class Outcome(_Part):
    """With what result. A failure must say why."""

    status: Literal["success", "failure"]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None

    @model_validator(mode="after")
    def _failure_has_reason(self) -> Outcome:
        if self.status == "failure" and self.reason is None:
            raise ValueError("a failure needs a reason (outcome.reason)")
        return self


class FieldChange(_Part):
    """One modified field, its values before and after rendered as strings."""

    field: Text256
    before: ChangeValue | None = None
    after: ChangeValue | None = None


_DETAILS_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _check_details(details: dict[str, str]) -> dict[str, str]:
    if len(details) > MAX_DETAILS:
        raise ValueError(f"at most {MAX_DETAILS} entries, got {len(details)}")
    size = 0
    for key, value in details.items():
        if not _DETAILS_KEY.fullmatch(key):
            raise ValueError(f"key {key!r} is not lowercase snake_case of at most 64 characters")
        size += len(key) + len(value.encode())
    if size > MAX_DETAILS_BYTES:
        raise ValueError(f"at most {MAX_DETAILS_BYTES} bytes of keys and values, got {size}")
    return details


def _to_utc_millis(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


class AuditEvent(BaseModel):
    """One audit event. ``event_id`` is assigned here when the caller gives none;
    ``occurred_at`` must carry a timezone and is kept in UTC at millisecond precision;
    ``category`` may be left out and is then taken from the activity catalog."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    tenant_id: TenantId
    occurred_at: Annotated[AwareDatetime, AfterValidator(_to_utc_millis)]
    action: Action
    category: SnakeId | None = None
    actor: Actor
    resource: Resource
    workspace: Workspace = Workspace()
    request: RequestContext = RequestContext()
    outcome: Outcome = Outcome(status="success")
    details: Annotated[dict[str, DetailValue], AfterValidator(_check_details)] = Field(
        default_factory=dict
    )
    changes: Annotated[list[FieldChange], Field(max_length=MAX_CHANGES)] = Field(
        default_factory=list
    )
    source: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None

    def to_avro(self) -> dict[str, Any]:
        """The datum for the current Avro schema (``category`` must be set by now)."""
        actor, resource, ws, req, outcome = (
            self.actor,
            self.resource,
            self.workspace,
            self.request,
            self.outcome,
        )
        return {
            "event_id": str(self.event_id),
            "tenant_id": self.tenant_id,
            "occurred_at": (self.occurred_at - EPOCH) // _ONE_MS,
            "action": self.action,
            "category": self.category,
            "actor": {"type": actor.type, "id": actor.id, "name": actor.name, "email": actor.email},
            "resource": {"type": resource.type, "id": resource.id, "name": resource.name},
            "workspace": {"id": ws.id, "name": ws.name, "environment": ws.environment},
            "request": {
                "ip": req.ip,
                "user_agent": req.user_agent,
                "request_id": req.request_id,
                "session_id": req.session_id,
            },
            "outcome": {"status": outcome.status, "reason": outcome.reason},
            "details": self.details,
            "changes": [
                {"field": c.field, "before": c.before, "after": c.after} for c in self.changes
            ],
            "source": self.source,
        }
