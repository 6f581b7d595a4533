"""What a change of an account's facts writes and publishes; pure (no I/O).

:func:`next_record` gives the record to write for the facts asked for (None when they are
already stored: nothing is written nor published). :func:`change_events` gives the audit
events that announce a written change, the account's own first:

- the add-on flag changed: ``audit_log.add_on_enabled`` / ``audit_log.add_on_disabled``
  in the account's log;
- the managing partner changed: ``account.partner_assigned`` / ``account.partner_removed``
  in the account's log, and ``managed_account.removed`` in the former partner's log,
  ``managed_account.added`` in the new partner's log (a partner's admins see which
  accounts they gained or lost, in the log they read and stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from accounts.record import AccountRecord, PartnerSpan

__all__ = ["KEEP", "Keep", "change_events", "next_record"]

SOURCE = "auditlog-cli"


class Keep(Enum):
    """A fact :func:`next_record` leaves as stored."""

    KEEP = "keep"


KEEP = Keep.KEEP


def next_record(
    current: AccountRecord | None,
    account_id: str,
    *,
    updated_at: datetime,
    updated_by: str,
    audit_log_add_on: bool | Keep | None = KEEP,
    partner_id: str | Keep | None = KEEP,
) -> AccountRecord | None:
    """The record to write so that the account has the facts given (``KEEP``: as stored),
    or None when the stored record has them already. Raises ``ValueError`` for facts that
    are not allowed (an id that is not valid, an account as its own partner)."""
    add_on = current.audit_log_add_on if current is not None else None
    partner = current.partner_id if current is not None else None
    if not isinstance(audit_log_add_on, Keep):
        add_on = audit_log_add_on
    if not isinstance(partner_id, Keep):
        partner = partner_id
    if current is not None and (add_on, partner) == (
        current.audit_log_add_on,
        current.partner_id,
    ):
        return None
    if current is None:
        return AccountRecord(
            account_id=account_id,
            audit_log_add_on=add_on,
            partner_id=partner,
            revision=1,
            updated_at=updated_at,
            updated_by=updated_by,
            partner_history=(PartnerSpan(partner_id=partner, since=updated_at),),
        )
    return current.changed(
        audit_log_add_on=add_on,
        partner_id=partner,
        updated_at=updated_at,
        updated_by=updated_by,
    )


def _flag(value: bool | None) -> str:
    return "unset" if value is None else str(value).lower()


def change_events(
    before: AccountRecord | None,
    after: AccountRecord,
    *,
    actor: Mapping[str, str],
    occurred_at: datetime,
) -> list[dict[str, Any]]:
    """The audit events of the change from ``before`` to ``after`` (the account's own
    first, then the partners'), ready for the producer SDK."""

    def event(
        tenant_id: str, action: str, resource: Mapping[str, str], details: Mapping[str, str]
    ) -> dict[str, Any]:
        return {
            "tenant_id": tenant_id,
            "occurred_at": occurred_at,
            "action": action,
            "actor": dict(actor),
            "resource": dict(resource),
            "outcome": {"status": "success"},
            "details": dict(details),
            "source": SOURCE,
        }

    account = after.account_id
    old_add_on = before.audit_log_add_on if before is not None else None
    old_partner = before.partner_id if before is not None else None
    enabled = str(after.facts.audit_log_enabled).lower()
    own: list[dict[str, Any]] = []
    partners: list[dict[str, Any]] = []
    if after.audit_log_add_on != old_add_on:
        action = "audit_log.add_on_disabled"
        if after.audit_log_add_on:
            action = "audit_log.add_on_enabled"
        details = {"previous_add_on": _flag(old_add_on), "audit_log_enabled": enabled}
        own.append(event(account, action, {"type": "audit_log", "id": account}, details))
    if after.partner_id != old_partner:
        details = {"audit_log_enabled": enabled}
        if after.partner_id is not None:
            action = "account.partner_assigned"
            details["partner_account_id"] = after.partner_id
            if old_partner is not None:
                details["previous_partner_account_id"] = old_partner
        else:
            assert old_partner is not None
            action = "account.partner_removed"
            details["partner_account_id"] = old_partner
        own.append(event(account, action, {"type": "account", "id": account}, details))
        managed = {"type": "managed_account", "id": account}
        for partner, partner_action in (
            (old_partner, "managed_account.removed"),
            (after.partner_id, "managed_account.added"),
        ):
            if partner is not None:
                details = {"partner_account_id": partner, "managed_account_id": account}
                partners.append(event(partner, partner_action, managed, details))
    return own + partners
