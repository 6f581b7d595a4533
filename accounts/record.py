"""One account's stored record: its facts plus who changed them, when, and how often.

The record is the JSON value of the account's key in the accounts topic (see
:mod:`accounts.store`). Account and partner ids follow the tenant id rule
(:func:`consumers.retention.validate_tenant`): an account is a tenant of the audit log.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from accounts.model import AccountFacts
from consumers.retention import validate_tenant
from runtime.keyed_records import RecordKind

__all__ = [
    "ACCOUNT_RECORDS",
    "MAX_PARTNER_SPANS",
    "AccountRecord",
    "PartnerSpan",
    "check_id",
    "decode_record",
    "encode_record",
    "parse_table",
]

log = logging.getLogger("accounts.store")

#: Partner changes an account's record remembers (the oldest are dropped beyond): enough to
#: cover the events topic's retention for any account that does not change hands hourly.
MAX_PARTNER_SPANS = 64


def check_id(value: str, what: str = "account") -> str:
    """``value`` if it is a valid account (or partner) id; raises ``ValueError`` with one
    line naming ``what`` otherwise."""
    try:
        return validate_tenant(value)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


class PartnerSpan(BaseModel):
    """From ``since`` on (until the next span), ``partner_id`` managed the account (None:
    nobody). The sinks route an event to a partner's destinations by the span its publish
    time falls in (docs/partners.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner_id: str | None
    since: AwareDatetime


class AccountRecord(BaseModel):
    """What the accounts topic holds for one account (immutable; a change is a new record
    with ``revision + 1``).

    ``audit_log_add_on``: the operator's explicit add-on setting (None: never set).
    ``partner_id``: the embedded partner that manages the account (None: a direct customer).
    ``partner_history``: who managed it since when, oldest first, the last span being
    ``partner_id`` (at most :data:`MAX_PARTNER_SPANS`; empty in records of older releases:
    the sinks then know ``partner_id`` only from ``updated_at`` on). Unknown fields are
    refused, so a value written by a newer release is skipped rather
    than silently rewritten without what this release does not know.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str
    audit_log_add_on: bool | None = None
    partner_id: str | None = None
    revision: int = Field(ge=1)
    updated_at: AwareDatetime
    updated_by: str = Field(min_length=1, max_length=256)
    partner_history: tuple[PartnerSpan, ...] = ()

    @field_validator("account_id")
    @classmethod
    def _account_id(cls, value: str) -> str:
        return check_id(value, "account_id")

    @field_validator("partner_id")
    @classmethod
    def _partner_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        check_id(value, "partner_id")
        return value

    @model_validator(mode="after")
    def _not_its_own_partner(self) -> Self:
        if self.partner_id == self.account_id:
            raise ValueError(f"account {self.account_id} cannot be its own partner")
        history = self.partner_history
        if len(history) > MAX_PARTNER_SPANS:
            raise ValueError(f"partner_history: at most {MAX_PARTNER_SPANS} spans")
        if any(a.since > b.since for a, b in itertools.pairwise(history)):
            raise ValueError("partner_history: spans out of order")
        if history and history[-1].partner_id != self.partner_id:
            raise ValueError("partner_history: the last span is not partner_id")
        for span in history:
            if span.partner_id is not None:
                check_id(span.partner_id, "partner_history")
        return self

    def spans(self) -> tuple[PartnerSpan, ...]:
        """Who managed the account since when: ``partner_history``, or for a record of an
        older release its current partner from ``updated_at`` (earlier: unknown)."""
        if self.partner_history:
            return self.partner_history
        return (PartnerSpan(partner_id=self.partner_id, since=self.updated_at),)

    @property
    def facts(self) -> AccountFacts:
        return AccountFacts(
            account_id=self.account_id,
            audit_log_add_on=self.audit_log_add_on,
            partner_id=self.partner_id,
        )

    def changed(
        self,
        *,
        audit_log_add_on: bool | None,
        partner_id: str | None,
        updated_at: datetime,
        updated_by: str,
    ) -> AccountRecord:
        """The next revision of this record with these facts (a new partner opens a span
        of ``partner_history`` at ``updated_at``)."""
        history = self.partner_history
        if partner_id != self.partner_id:
            # Never before the previous span (another operator's clock may be behind).
            since = max(updated_at, self.spans()[-1].since)
            history = (*self.spans(), PartnerSpan(partner_id=partner_id, since=since))
            history = history[-MAX_PARTNER_SPANS:]
        return AccountRecord(
            account_id=self.account_id,
            audit_log_add_on=audit_log_add_on,
            partner_id=partner_id,
            revision=self.revision + 1,
            updated_at=updated_at,
            updated_by=updated_by,
            partner_history=history,
        )


ACCOUNT_RECORDS = RecordKind(
    model=AccountRecord,
    id_of=lambda record: record.account_id,
    revision_of=lambda record: record.revision,
    noun="account",
    description="an account record",
    log=log,
    value_name="record",
    # A record grants access (the add-on, the managing partner): an unreadable new value
    # may be a revocation, so a running directory forgets the account (no facts: not
    # enabled) rather than keep serving the old grant; a restarted one reads it the same.
    keep_last_good=False,
)
"""How the accounts topic's values read (see :mod:`runtime.keyed_records`)."""


def encode_record(record: AccountRecord) -> bytes:
    return ACCOUNT_RECORDS.encode(record)


def decode_record(key: bytes, value: bytes) -> AccountRecord:
    """The record stored under ``key``; raises ``ValueError`` (with a message that holds no
    value) when the key is not UTF-8, the value does not parse, or its id is not the key."""
    return ACCOUNT_RECORDS.decode(key, value)


def parse_table(
    records: Mapping[bytes, bytes], topic: str
) -> tuple[dict[str, AccountRecord], dict[str, str]]:
    """The readable records by account id, and the unreadable keys with the reason (each
    logged as a warning; the reason never holds the value)."""
    return ACCOUNT_RECORDS.decode_table(records, topic)
