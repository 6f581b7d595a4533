"""Who is asking (from a verified token) and what they were granted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AUDIT_PRIVILEGE = "activity_audit"
OWNER_ROLE = "owner"
ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Principal:
    """The user a verified bearer token names. ``account_id`` is the account the token was
    issued for; ``partner_id`` is set for an embedded partner's staff."""

    user_id: str
    account_id: str
    email: str | None = None
    name: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    privileges: frozenset[str] = field(default_factory=frozenset)
    partner_id: str | None = None


Basis = Literal["owner", "admin", "privilege", "partner_admin"]


@dataclass(frozen=True)
class Grant:
    """Permission for ``principal`` to read the log of ``account_id``, and on what basis.
    ``partner_id`` is set when a partner's admin reads a managed account."""

    principal: Principal
    account_id: str
    basis: Basis
    partner_id: str | None = None
