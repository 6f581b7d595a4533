"""A customer destination: where one tenant's audit events are streamed, and how.

A destination belongs to one account (``tenant_id``: that account's events) or to an
embedded partner (``partner_id``: the events of every account the partner manages at each
event's publish time, narrowed by ``accounts``; see docs/partners.md). Exactly one of the
two is given when a destination is made; a partner destination also stores its partner as
``tenant_id``, its owner: the account whose log records its changes, whose id the S3 role's
external id and the ownership challenge name (partners are accounts).

A destination is a pydantic model so it validates at the edge (the CLI) and travels as
JSON through the destination store. Secrets never appear in clear: a :class:`SecretValue`
holds either ciphertext (encrypted with the operator's key) or a reference to where the
secret lives (``env:NAME``); see :mod:`sinks.destinations.secrets`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DestinationState = Literal["pending_verification", "active", "paused"]
PayloadFormat = Literal["ndjson", "json_array"]
Compression = Literal["gzip", "none"]

DESTINATION_ID = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")
ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")  # schemas.event.TenantId
MAX_LISTED_ACCOUNTS = 10_000
TEMPLATE_FIELDS = ("tenant_id", "destination_id")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SecretValue(_Frozen):
    """A secret as stored: exactly one of ``encrypted`` (a Fernet token made with the
    operator's key) or ``ref`` (``env:NAME``: read from the worker's environment)."""

    encrypted: str | None = None
    ref: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretValue:
        if (self.encrypted is None) == (self.ref is None):
            raise ValueError("a secret is either encrypted or a reference, not both or neither")
        if self.ref is not None and not re.fullmatch(r"env:[A-Za-z_][A-Za-z0-9_]*", self.ref):
            raise ValueError(f"secret reference {self.ref!r}: expected env:NAME")
        return self

    def describe(self) -> str:
        """What may be printed: never the secret itself."""
        return f"reference {self.ref}" if self.ref is not None else "encrypted"


class Filters(_Frozen):
    """Which events a destination receives. Empty include lists mean everything; an
    exclude wins over an include."""

    include_categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    include_actions: frozenset[str] = frozenset()
    exclude_actions: frozenset[str] = frozenset()

    def accepts(self, category: str, action: str) -> bool:
        if category in self.exclude_categories or action in self.exclude_actions:
            return False
        if self.include_categories or self.include_actions:
            return category in self.include_categories or action in self.include_actions
        return True


def _account_ids(value: frozenset[str]) -> frozenset[str]:
    if len(value) > MAX_LISTED_ACCOUNTS:
        raise ValueError(f"at most {MAX_LISTED_ACCOUNTS} accounts may be listed")
    for account in value:
        if not isinstance(account, str) or not ACCOUNT_ID.fullmatch(account):
            shown = repr(account)[:80]
            raise ValueError(
                f"{shown} is not an account id (letters, digits and . _ : @ -, at most 128)"
            )
    return value


class AccountSelection(_Frozen):
    """Which managed accounts a partner destination receives: every one (both lists empty),
    only ``include_accounts`` (when not empty), never ``exclude_accounts`` (an exclude wins).
    Only an account the partner manages at an event's publish time is ever considered: the
    lists narrow the partner's accounts, they never add one."""

    include_accounts: frozenset[str] = frozenset()
    exclude_accounts: frozenset[str] = frozenset()

    @field_validator("include_accounts", "exclude_accounts")
    @classmethod
    def _valid_ids(cls, value: frozenset[str]) -> frozenset[str]:
        return _account_ids(value)

    def accepts(self, account_id: str) -> bool:
        if account_id in self.exclude_accounts:
            return False
        return not self.include_accounts or account_id in self.include_accounts

    @property
    def everyone(self) -> bool:
        return not self.include_accounts and not self.exclude_accounts


ALL_ACCOUNTS = AccountSelection()


class BatchLimits(_Frozen):
    """A batch is sent when it holds ``max_records`` records or ``max_bytes`` bytes of
    encoded (uncompressed) events, or when its oldest record has waited ``max_age_s``."""

    max_records: int = Field(default=10_000, ge=1, le=1_000_000)
    max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    max_age_s: float = Field(default=30.0, gt=0, le=3600)


class S3Target(_Frozen):
    """An S3 (or S3-compatible) bucket. Credentials come from assuming ``role_arn`` (with
    the external id the service derives from the tenant; ``external_id``, when stored, must
    be that one), or from ``access_key_id`` and ``secret_access_key``, or, only where the
    operator allows it, from the worker's environment (the AWS default chain); see
    :mod:`sinks.senders.s3_confinement`."""

    kind: Literal["s3"] = "s3"
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix_template: str = "auditlog/{tenant_id}/{destination_id}"
    region: str = "us-east-1"
    endpoint_url: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    access_key_id: SecretValue | None = None
    secret_access_key: SecretValue | None = None
    server_side_encryption: Literal["AES256", "aws:kms"] | None = None
    kms_key_id: str | None = None

    @field_validator("prefix_template")
    @classmethod
    def _confined(cls, value: str) -> str:
        """The prefix stays under the bucket root: no absolute path, no ``..``, only the
        known placeholders."""
        if value.startswith("/") or ".." in value.split("/") or "//" in value:
            raise ValueError(f"prefix template {value!r}: no leading '/', '//' or '..'")
        for name in re.findall(r"{([^}]*)}", value):
            if name not in TEMPLATE_FIELDS:
                raise ValueError(
                    f"prefix template {value!r}: unknown placeholder {{{name}}} "
                    f"(known: {', '.join(TEMPLATE_FIELDS)})"
                )
        return value.strip("/")


class WebhookTarget(_Frozen):
    """An HTTPS endpoint that receives signed POSTs (see :mod:`sinks.signing`)."""

    kind: Literal["webhook"] = "webhook"
    url: str
    signing_secret: SecretValue
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = {"host", "content-length", "content-type", "content-encoding"}
        for name in value:
            lowered = name.lower()
            if lowered in reserved or lowered.startswith("x-auditlog-"):
                raise ValueError(f"header {name!r} is set by the sender and cannot be overridden")
        return value


class SplunkHecTarget(_Frozen):
    """Splunk's HTTP Event Collector (``/services/collector/event``)."""

    kind: Literal["splunk_hec"] = "splunk_hec"
    url: str
    token: SecretValue
    index: str | None = None
    source: str = "auditlog"
    sourcetype: str = "auditlog:event"


Target = Annotated[S3Target | WebhookTarget | SplunkHecTarget, Field(discriminator="kind")]


def secrets_of(target: S3Target | WebhookTarget | SplunkHecTarget) -> dict[str, SecretValue]:
    """The target's secrets that are set, by field name."""
    found = {name: getattr(target, name) for name in type(target).model_fields}
    return {name: value for name, value in found.items() if isinstance(value, SecretValue)}


class ReplayRequest(_Frozen):
    """Re-send the destination's events from ``offsets`` (per partition of the events
    topic, found from ``since``) up to where the workers were when they saw the request.
    ``accounts`` (partner destinations only): re-send only these accounts' events (still
    only those published while the partner managed them); empty: every managed account."""

    id: str
    since: datetime
    offsets: dict[int, int]
    accounts: frozenset[str] = frozenset()

    @field_validator("accounts")
    @classmethod
    def _valid_ids(cls, value: frozenset[str]) -> frozenset[str]:
        return _account_ids(value)


class Ownership(_Frozen):
    """S3 ownership challenge: the digest of the token written to the bucket."""

    challenge_key: str
    token_sha256: str
    verified_at: datetime | None = None


class Destination(_Frozen):
    """One destination of one tenant (or of one partner: ``partner_id``), as kept in the
    destination store."""

    id: str
    tenant_id: str = Field(min_length=1, max_length=128)
    partner_id: str | None = None
    name: str = Field(default="", max_length=200)
    target: Target
    filters: Filters = Filters()
    accounts: AccountSelection = ALL_ACCOUNTS
    batch: BatchLimits = BatchLimits()
    format: PayloadFormat = "ndjson"
    compression: Compression = "gzip"
    state: DestinationState = "active"
    state_reason: str = ""
    revision: int = Field(default=1, ge=1)
    created_at: datetime
    updated_at: datetime
    replay: ReplayRequest | None = None
    ownership: Ownership | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not DESTINATION_ID.fullmatch(value):
            raise ValueError(
                f"destination id {value!r}: 3-63 characters, lowercase letters, digits and '-'"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _owner(cls, data: object) -> object:
        """Exactly one of ``tenant_id`` and ``partner_id`` names the owner; a partner
        destination is stored with both, equal."""
        if not isinstance(data, dict):
            return data
        tenant, partner = data.get("tenant_id"), data.get("partner_id")
        if partner is None:
            return data
        if tenant is not None and tenant != partner:
            raise ValueError("a destination belongs to an account or to a partner, not both")
        return {**data, "tenant_id": partner}

    @model_validator(mode="after")
    def _account_lists_for_partners(self) -> Destination:
        if self.partner_id is not None and not ACCOUNT_ID.fullmatch(self.partner_id):
            raise ValueError(f"partner {self.partner_id[:80]!r} is not an account id")
        if self.partner_id is None and not self.accounts.everyone:
            raise ValueError("only a partner destination has lists of accounts")
        if self.partner_id is None and self.replay is not None and self.replay.accounts:
            raise ValueError("only a partner destination replays chosen accounts")
        return self

    @property
    def kind(self) -> str:
        return self.target.kind

    @property
    def is_partner(self) -> bool:
        """It receives the events of the accounts its partner manages, not its own."""
        return self.partner_id is not None

    @property
    def scope(self) -> str:
        """``account`` or ``partner`` (audit events and listings say which)."""
        return "partner" if self.partner_id is not None else "account"

    @property
    def deliverable(self) -> bool:
        """Workers deliver only to active destinations."""
        return self.state == "active"
