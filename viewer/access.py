"""Whether a verified principal may read an account's activity audit log: pure, no I/O
beyond the ``facts_of`` callable it is given.

- Their own account (no account requested, or the token's own): the owner role, the Admin
  role, or the activity-audit privilege.
- Another account: only an embedded partner's admin (``partner_id`` in the token and the
  admin or owner role), and only for an account that partner manages. Anyone else is
  refused with the same reason whether or not the account exists.
- Either way the account read must have the audit log enabled
  (:attr:`~accounts.model.AccountFacts.audit_log_enabled`; an account without facts is not
  enabled).
"""

from __future__ import annotations

from collections.abc import Callable

from accounts.model import AccountFacts
from consumers.retention import RetentionError, validate_tenant
from viewer.principal import ADMIN_ROLE, AUDIT_PRIVILEGE, OWNER_ROLE, Basis, Grant, Principal

FactsOf = Callable[[str], AccountFacts | None]


class Forbidden(Exception):
    """The principal may not read the log (HTTP 403); ``reason`` says why and what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def authorize(principal: Principal, requested_account: str | None, facts_of: FactsOf) -> Grant:
    """The grant to read ``requested_account`` (default: the token's own account); raises
    :class:`Forbidden`. Exceptions of ``facts_of`` (a store that does not answer) pass
    through unchanged: they are not a refusal."""
    own = principal.account_id
    if requested_account is None or requested_account == own:
        basis = own_basis(principal)
        if basis is None:
            raise Forbidden(
                f"you need the Admin role or the activity audit privilege for account {own}"
            )
        _require_enabled(own, facts_of(own))
        return Grant(principal=principal, account_id=own, basis=basis)
    try:
        validate_tenant(requested_account)
    except RetentionError:
        raise Forbidden("the account requested is not an account id") from None
    if principal.partner_id is None or not principal.roles & {ADMIN_ROLE, OWNER_ROLE}:
        raise Forbidden(
            f"you may read only the log of your own account {own}; only a partner's admins "
            "may name an account their partner manages"
        )
    facts = facts_of(requested_account)
    if facts is None or facts.partner_id != principal.partner_id:
        raise Forbidden(f"account {requested_account} is not managed by your partner")
    _require_enabled(requested_account, facts)
    return Grant(
        principal=principal,
        account_id=requested_account,
        basis="partner_admin",
        partner_id=principal.partner_id,
    )


def own_basis(principal: Principal) -> Basis | None:
    """Why ``principal`` may read their own account's log, or None."""
    if OWNER_ROLE in principal.roles:
        return "owner"
    if ADMIN_ROLE in principal.roles:
        return "admin"
    if AUDIT_PRIVILEGE in principal.privileges:
        return "privilege"
    return None


def _require_enabled(account_id: str, facts: AccountFacts | None) -> None:
    if facts is None or not facts.audit_log_enabled:
        raise Forbidden(
            f"the activity audit log is not enabled for account {account_id}: it is an "
            "add-on, ask your Customer Success Manager"
        )
