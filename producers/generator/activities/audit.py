"""The audit log's own activities: streaming destinations, retention, who reads the log,
and the managed accounts of embedded partners.

Handlers follow the contract of :mod:`producers.generator.context`; they return None for
actors who are not admins.
"""

from __future__ import annotations

import uuid

from producers.generator import vocabulary as vocab
from producers.generator.activities.common import (
    DAY_MS,
    account_resource,
    audit_log_resource,
    other_member,
)
from producers.generator.context import (
    Ctx,
    FieldTable,
    change,
    changed_fields,
    field_changes,
)
from producers.generator.world import Event

# ---- audit log streaming and retention -------------------------------------------------

_STREAM_FIELDS: FieldTable = (
    ("prefix", ("audit/", "logs/audit/", "security/audit/")),
    ("batch_max_interval_s", ("30", "60", "300")),
    ("format", ("json", "ndjson.gz")),
    ("endpoint_url", ("https://http-inputs.example.splunkcloud.com", "https://logs.example.net")),
)


def stream_added(c: Ctx) -> Event | None:
    if not c.is_admin or c.count("audit_stream", account_wide=True) >= 4:
        return None
    stream = c.create("audit_stream", account_wide=True)
    scope = "partner" if c.tenant.partner and c.rng.random() < 0.5 else "account"
    details = {"destination_type": stream.extra, "scope": scope}
    return c.emit("audit_stream.destination_added", stream, details=details)


def stream_updated(c: Ctx) -> Event | None:
    stream = c.pick("audit_stream", account_wide=True)
    if stream is None or not c.is_admin:
        return None
    changes = field_changes(c.rng, _STREAM_FIELDS)
    details = {"changed_fields": changed_fields(changes)}
    return c.emit("audit_stream.destination_updated", stream, details=details, changes=changes)


def stream_tested(c: Ctx) -> Event | None:
    stream = c.pick("audit_stream", account_wide=True)
    if stream is None or not c.is_admin:
        return None
    if c.rng.random() < 0.2:
        error = c.rng.choice(vocab.STREAM_ERRORS)
        details = {"result": "failed", "error": error}
        return c.emit("audit_stream.destination_tested", stream, details=details, failure=error)
    return c.emit("audit_stream.destination_tested", stream, details={"result": "succeeded"})


def stream_paused(c: Ctx) -> Event | None:
    stream = c.pick("audit_stream", "active", account_wide=True)
    if stream is None or not c.is_admin:
        return None
    stream.state = "paused"
    return c.emit("audit_stream.destination_paused", stream)


def stream_resumed(c: Ctx) -> Event | None:
    stream = c.pick("audit_stream", "paused", account_wide=True) or c.pick(
        "audit_stream", "auto_paused", account_wide=True
    )
    if stream is None or not c.is_admin:
        return None
    stream.state = "active"
    return c.emit("audit_stream.destination_resumed", stream)


def stream_removed(c: Ctx) -> Event | None:
    stream = c.pick("audit_stream", account_wide=True)
    if stream is None or not c.is_admin:
        return None
    c.remove("audit_stream", stream, account_wide=True)
    details = {"destination_type": stream.extra}
    return c.emit("audit_stream.destination_removed", stream, details=details)


def stream_replay_requested(c: Ctx) -> Event | None:
    stream = c.pick("audit_stream", "active", account_wide=True)
    if stream is None or not c.is_admin:
        return None
    hours = c.rng.choice((1, 6, 24, 72))
    details = {
        "replay_id": str(uuid.UUID(int=c.rng.getrandbits(128), version=4)),
        "since": c.iso(-hours * DAY_MS // 24),
        "from_log_start": "false",
    }
    return c.emit("audit_stream.destination_replay_requested", stream, details=details)


def stream_verified(c: Ctx) -> Event | None:
    stream = c.pick("audit_stream", account_wide=True)
    if stream is None or stream.extra != "s3" or not c.is_admin:
        return None
    details = {"bucket": f"{c.tenant.id.lower()}-audit-logs"}
    return c.emit("audit_stream.destination_verified", stream, details=details)


def retention_changed(c: Ctx) -> Event | None:
    if not c.is_admin:
        return None
    old = c.tenant.retention_days
    new = c.rng.choice([d for d in (365, 730, 1095, 1825) if d != old])
    c.tenant.retention_days = new
    return c.emit(
        "audit_log.retention_changed",
        audit_log_resource(c.tenant),
        details={"old_retention_days": str(old), "new_retention_days": str(new)},
        changes=[change("retention_days", str(old), str(new))],
    )


# ---- audit log access ------------------------------------------------------------------

_FILTERS = (
    "",
    "include_event_types[]=recipe.stopped",
    "categories[]=account_security",
    "include_event_types[]=user.login_failed&outcome=failure",
    "include_resource_types[]=recipe&resource_ids[]={recipe}",
    "users_ids[]={user}",
    "categories[]=members_roles",
    "exclude_event_types[]=user.login&exclude_event_types[]=user.logout",
)


def audit_filters(c: Ctx) -> str:
    """A filter query string, as the viewer sends it."""
    template = c.rng.choice(_FILTERS)
    if "{recipe}" in template:
        recipe = c.pick("recipe")
        return template.format(recipe=recipe.id if recipe else "")
    return template.format(user=c.rng.choice(c.tenant.users).id)


def audit_viewed(c: Ctx) -> Event | None:
    if not c.is_admin:
        return None
    details = {"filters": audit_filters(c)}
    return c.emit("audit_log.viewed", audit_log_resource(c.tenant), details=details)


def audit_exported(c: Ctx) -> Event | None:
    if not c.is_admin:
        return None
    days = c.rng.choice((1, 7, 30, 90))
    details = {
        "from": c.iso(-days * DAY_MS),
        "to": c.iso(),
        "filters": audit_filters(c),
        "format": c.rng.choice(("csv", "ndjson")),
        "event_count": str(int(c.rng.paretovariate(0.9) * 40 * days)),
        "complete": "true",
    }
    return c.emit("audit_log.exported", audit_log_resource(c.tenant), details=details)


def audit_access_granted(c: Ctx) -> Event | None:
    member = other_member(c)
    if member is None or not c.is_admin:
        return None
    details = {"member_email": member.email}
    return c.emit("audit_log.access_granted", audit_log_resource(c.tenant), details=details)


def audit_access_revoked(c: Ctx) -> Event | None:
    member = other_member(c)
    if member is None or not c.is_admin:
        return None
    details = {"member_email": member.email}
    return c.emit("audit_log.access_revoked", audit_log_resource(c.tenant), details=details)


def add_on_toggled(c: Ctx) -> Event | None:
    """The audit log add-on switched on (mostly) or off, as the operator records it."""
    if c.tenant.partner or not c.is_admin:
        return None
    before = c.tenant.audit_add_on
    enabled = before is not True or c.rng.random() < 0.2
    if enabled == before:
        return None
    c.tenant.audit_add_on = enabled
    action = "audit_log.add_on_enabled" if enabled else "audit_log.add_on_disabled"
    details = {
        "previous_add_on": "unset" if before is None else str(before).lower(),
        "audit_log_enabled": str(enabled).lower(),
    }
    return c.emit(action, audit_log_resource(c.tenant), details=details)


def partner_changed(c: Ctx) -> Event | None:
    """An embedded partner starts or stops managing the account."""
    if c.tenant.partner or not c.is_admin:
        return None
    before = c.tenant.managing_partner
    if before is not None and c.rng.random() < 0.5:
        c.tenant.managing_partner = None
        details = {"partner_account_id": before, "audit_log_enabled": "false"}
        if c.tenant.audit_add_on:
            details["audit_log_enabled"] = "true"
        return c.emit("account.partner_removed", account_resource(c.tenant), details=details)
    partner = f"partner-{c.rng.randrange(1, 40):03d}"
    if partner == before:
        return None
    c.tenant.managing_partner = partner
    details = {
        "partner_account_id": partner,
        "audit_log_enabled": "false" if c.tenant.audit_add_on is False else "true",
    }
    if before is not None:
        details["previous_partner_account_id"] = before
    return c.emit("account.partner_assigned", account_resource(c.tenant), details=details)


# ---- managed accounts (embedded partners) ----------------------------------------------


def managed_added(c: Ctx) -> Event | None:
    if not c.tenant.partner or not c.is_admin:
        return None
    managed = c.create("managed_account", account_wide=True)
    details = {"partner_account_id": c.tenant.id, "managed_account_id": managed.id}
    return c.emit("managed_account.added", managed, details=details)


def managed_removed(c: Ctx) -> Event | None:
    managed = c.pick("managed_account", account_wide=True)
    if managed is None or not c.tenant.partner or not c.is_admin:
        return None
    c.remove("managed_account", managed, account_wide=True)
    details = {"partner_account_id": c.tenant.id, "managed_account_id": managed.id}
    return c.emit("managed_account.removed", managed, details=details)
