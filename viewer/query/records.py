"""One stored row -> the JSON record the viewer answers with (pages, one event, NDJSON),
and the flat form of that record for CSV.

The row is the tuple :data:`viewer.query.sql.COLUMNS` selects, in that order. The record::

    {"id", "timestamp" (ISO 8601 UTC, milliseconds, Z), "event_type" (the action),
     "category", "user": {id, type, name, email}, "resource": {id, type, name},
     "workspace": {id, name, environment}, "outcome": {status, reason},
     "details": {"request": {ip, user_agent, request_id, session_id}, ...activity fields},
     "changes": [{field, before, after}], "source", "ingested_at"}

``details.request`` is always the request context: an activity field that is itself
named ``request`` (event fields are tenant input) is moved to ``_request`` (a name the
producer's key rule, lowercase letter first, never makes), so it cannot overwrite it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RESERVED_DETAIL = "request"
MOVED_DETAIL = "_request"

CSV_HEADER: tuple[str, ...] = (
    "id",
    "timestamp",
    "event_type",
    "category",
    "user.id",
    "user.type",
    "user.name",
    "user.email",
    "resource.id",
    "resource.type",
    "resource.name",
    "workspace.id",
    "workspace.name",
    "workspace.environment",
    "outcome.status",
    "outcome.reason",
    "details.request.ip",
    "details.request.user_agent",
    "details.request.request_id",
    "details.request.session_id",
    "details",  # the activity-specific fields, as a JSON object
    "changes",  # [{field, before, after}] as a JSON array
    "source",
    "ingested_at",
)


def iso_ms(epoch_ms: int) -> str:
    """``2026-11-30T08:15:02.123Z`` for milliseconds since the epoch."""
    seconds, ms = divmod(epoch_ms, 1000)
    moment = _EPOCH + timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms:03d}Z"


def activity_details(details: Mapping[str, str]) -> dict[str, str]:
    """The activity-specific fields, the reserved name moved aside."""
    if RESERVED_DETAIL not in details:
        return dict(details)
    moved = {k: v for k, v in details.items() if k != RESERVED_DETAIL}
    moved[MOVED_DETAIL] = details[RESERVED_DETAIL]
    return moved


def _change(change: Any) -> dict[str, Any]:
    """clickhouse-connect reads the named tuples of ``changes`` as dicts (tuples from
    other clients are taken in the schema's order: field, before, after)."""
    if isinstance(change, Mapping):
        return {"field": change["field"], "before": change["before"], "after": change["after"]}
    field, before, after = change
    return {"field": field, "before": before, "after": after}


def record(row: Sequence[Any]) -> dict[str, Any]:
    """The JSON record of one row (see module doc)."""
    (
        event_id,
        occurred_ms,
        action,
        category,
        actor_type,
        actor_id,
        actor_name,
        actor_email,
        resource_type,
        resource_id,
        resource_name,
        workspace_id,
        workspace_name,
        environment,
        ip,
        user_agent,
        request_id,
        session_id,
        status,
        reason,
        details,
        changes,
        source,
        ingested_ms,
    ) = row
    out_details: dict[str, Any] = {
        "request": {
            "ip": ip,
            "user_agent": user_agent,
            "request_id": request_id,
            "session_id": session_id,
        }
    }
    for key, value in activity_details(details).items():
        out_details[key] = value
    return {
        "id": str(event_id),
        "timestamp": iso_ms(occurred_ms),
        "event_type": action,
        "category": category,
        "user": {"id": actor_id, "type": actor_type, "name": actor_name, "email": actor_email},
        "resource": {"id": resource_id, "type": resource_type, "name": resource_name},
        "workspace": {"id": workspace_id, "name": workspace_name, "environment": environment},
        "outcome": {"status": status, "reason": reason},
        "details": out_details,
        "changes": [_change(c) for c in changes],
        "source": source,
        "ingested_at": iso_ms(ingested_ms),
    }


def flat(rec: Mapping[str, Any]) -> list[str]:
    """The CSV cells of a record, in :data:`CSV_HEADER` order (None -> empty cell),
    not yet neutralised (see :func:`viewer.query.export.csv_cell`)."""
    user, resource, workspace = rec["user"], rec["resource"], rec["workspace"]
    outcome, details = rec["outcome"], rec["details"]
    request = details["request"]
    activity = {k: v for k, v in details.items() if k != RESERVED_DETAIL}
    cells = [
        rec["id"],
        rec["timestamp"],
        rec["event_type"],
        rec["category"],
        user["id"],
        user["type"],
        user["name"],
        user["email"],
        resource["id"],
        resource["type"],
        resource["name"],
        workspace["id"],
        workspace["name"],
        workspace["environment"],
        outcome["status"],
        outcome["reason"],
        request["ip"],
        request["user_agent"],
        request["request_id"],
        request["session_id"],
        orjson.dumps(activity).decode() if activity else "",
        orjson.dumps(rec["changes"]).decode() if rec["changes"] else "",
        rec["source"],
        rec["ingested_at"],
    ]
    return ["" if c is None else str(c) for c in cells]
