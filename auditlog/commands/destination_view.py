"""How ``auditlog destinations list`` and ``show`` print destinations: every field, and
secrets only as what they are ("encrypted", "reference env:NAME"), never their value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from auditlog.commands.destination_options import shown_header_value
from runtime.redaction import redact_url
from sinks.destinations.model import Destination, Filters, S3Target, SecretValue
from sinks.destinations.ownership import render_prefix
from sinks.senders.s3_confinement import role_external_id


def external_id(destination: Destination) -> str:
    """The external id the workers send when they assume the destination's role (the
    service's, per tenant: the role's trust policy must require it)."""
    return role_external_id(destination.tenant_id)


def when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "-"


def target_summary(destination: Destination) -> str:
    target = destination.target
    if isinstance(target, S3Target):
        prefix = render_prefix(
            target, tenant_id=destination.tenant_id, destination_id=destination.id
        )
        return f"s3://{target.bucket}/{prefix}" if prefix else f"s3://{target.bucket}"
    parts = urlsplit(target.url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.hostname}{port}" if parts.hostname else redact_url(target.url)


def filters_summary(filters: Filters) -> str:
    parts = [
        f"{sign}{what}:{','.join(sorted(values))}"
        for sign, what, values in (
            ("+", "category", filters.include_categories),
            ("+", "action", filters.include_actions),
            ("-", "category", filters.exclude_categories),
            ("-", "action", filters.exclude_actions),
        )
        if values
    ]
    return " ".join(parts) if parts else "all events"


def table(destinations: list[Destination]) -> list[str]:
    """One line per destination under a header, columns aligned."""
    rows = [("ID", "TENANT", "KIND", "STATE", "TARGET", "FILTERS")]
    rows += [
        (d.id, _owner(d), d.kind, d.state, target_summary(d), _selection(d)) for d in destinations
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        + "  "
        + row[-1]
        for row in rows
    ]


def _owner(destination: Destination) -> str:
    """The tenant column: an account, or ``partner:P``."""
    if destination.partner_id is not None:
        return f"partner:{destination.partner_id}"
    return destination.tenant_id


def _selection(destination: Destination) -> str:
    summary = filters_summary(destination.filters)
    accounts = destination.accounts
    parts = [
        f"{sign}account:{','.join(sorted(values))}"
        for sign, values in (("+", accounts.include_accounts), ("-", accounts.exclude_accounts))
        if values
    ]
    return " ".join([summary, *parts]) if parts else summary


def _value(name: str, value: Any) -> str:
    """One setting as ``show`` prints it: secrets described, never their value."""
    if isinstance(value, SecretValue):
        shown = value.describe()
    elif isinstance(value, frozenset | set):
        shown = ", ".join(sorted(value))
    elif isinstance(value, datetime):
        shown = when(value)
    elif isinstance(value, dict) and name == "headers":
        shown = ", ".join(f"{k}: {shown_header_value(k, v)}" for k, v in value.items())
    elif isinstance(value, dict):
        shown = ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    elif name in ("url", "endpoint_url") and isinstance(value, str):
        shown = redact_url(value)  # a token in its query is a secret too
    else:
        shown = "" if value is None else str(value)
    return shown or "-"


def _section(model: BaseModel) -> list[str]:
    return [
        f"  {name.replace('_', ' ')}: {_value(name, getattr(model, name))}"
        for name in type(model).model_fields
    ]


def details(destination: Destination) -> list[str]:
    """Every field of the destination, for ``show``."""
    lines = [
        f"id: {destination.id}",
        f"partner: {destination.partner_id} (the events of the accounts it manages)"
        if destination.partner_id is not None
        else f"tenant: {destination.tenant_id}",
        f"name: {destination.name or '-'}",
        f"kind: {destination.kind}",
        f"state: {destination.state}"
        + (f" ({destination.state_reason})" if destination.state_reason else ""),
        f"revision: {destination.revision}",
        f"created: {when(destination.created_at)}",
        f"updated: {when(destination.updated_at)}",
        "target:",
        *_section(destination.target),
    ]
    if isinstance(destination.target, S3Target):
        lines.append(f"  objects under: {target_summary(destination)}/")
        if destination.target.role_arn is not None:
            lines.append(f"  role assumed with external id: {external_id(destination)}")
    lines += ["filters:" + (" all events" if destination.filters == Filters() else "")]
    if destination.filters != Filters():
        lines += _section(destination.filters)
    if destination.partner_id is not None:
        accounts = destination.accounts
        lines += ["accounts:" + (" every managed account" if accounts.everyone else "")]
        if not accounts.everyone:
            lines += _section(accounts)
    batch = destination.batch
    lines += [
        f"batch: at most {batch.max_records} records or {batch.max_bytes} bytes, "
        f"sent after {batch.max_age_s:g} s",
        f"format: {destination.format}, compression {destination.compression}",
    ]
    ownership = destination.ownership
    if ownership is not None:
        status = (
            f"verified {when(ownership.verified_at)}"
            if ownership.verified_at
            else "pending: the token is in the challenge object"
        )
        lines.append(f"ownership: {status}; challenge object {ownership.challenge_key}")
    replay = destination.replay
    if replay is not None:
        offsets = ", ".join(f"{p}:{o}" for p, o in sorted(replay.offsets.items()))
        lines.append(f"replay: {replay.id} since {when(replay.since)}; offsets {offsets}")
        if replay.accounts:
            lines.append(f"  accounts: {', '.join(sorted(replay.accounts))}")
    return lines
