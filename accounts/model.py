"""What the control plane knows of one account (tenant)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccountFacts:
    """One account's facts, as the viewer and the sinks use them.

    ``audit_log_add_on`` is the operator's explicit setting (None: never set).
    ``partner_id`` names the embedded partner that manages the account, if any.
    """

    account_id: str
    audit_log_add_on: bool | None = None
    partner_id: str | None = None

    @property
    def audit_log_enabled(self) -> bool:
        """The audit log is an add-on for direct customers and on by default for accounts an
        embedded partner manages: the explicit setting wins, else managed means enabled."""
        if self.audit_log_add_on is not None:
            return self.audit_log_add_on
        return self.partner_id is not None

    @property
    def audit_log_status(self) -> str:
        """The effective state in words, and why: ``enabled (add-on)``, ``enabled (managed
        by partner P)``, ``not enabled (add-on disabled)`` or ``not enabled``."""
        if self.audit_log_add_on is True:
            return "enabled (add-on)"
        if self.audit_log_add_on is False:
            return "not enabled (add-on disabled)"
        if self.partner_id is not None:
            return f"enabled (managed by partner {self.partner_id})"
        return "not enabled"
