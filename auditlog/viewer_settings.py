"""The viewer's settings (``auditlog serve`` and ``auditlog viewer token``): where it
listens, how it pages, limits its callers, and verifies their tokens. A part of
:class:`~auditlog.settings.AuditlogSettings`, which reads them with the others, once, at
the edge (``AUDITLOG_VIEWER_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from viewer.identity import IdentityConfig, IdentityConfigError
from viewer.security_headers import NO_FRAMING, frame_ancestors_problem

# IdentityConfig field -> the setting it is read from (its variable names problems).
_IDENTITY_SETTINGS = {
    "hs256_secret": "viewer_jwt_secret",
    "jwks_file": "viewer_jwks_file",
    "jwks_url": "viewer_jwks_url",
    "issuer": "viewer_jwt_issuer",
    "audience": "viewer_jwt_audience",
    "claim_user_id": "viewer_claim_user_id",
    "claim_email": "viewer_claim_email",
    "claim_name": "viewer_claim_name",
    "claim_account": "viewer_claim_account",
    "claim_roles": "viewer_claim_roles",
    "claim_privileges": "viewer_claim_privileges",
    "claim_partner": "viewer_claim_partner",
    "leeway_s": "viewer_jwt_leeway_s",
    "dev_secret": "viewer_dev_secret",
}


def _identity_variable(field_name: str) -> str:
    return f"AUDITLOG_{_IDENTITY_SETTINGS.get(field_name, field_name).upper()}"


class ViewerSettings(BaseSettings):
    """The ``viewer_*`` settings; each its own ``AUDITLOG_VIEWER_*`` variable."""

    model_config = SettingsConfigDict(env_prefix="AUDITLOG_", extra="ignore", frozen=True)

    # -- the viewer service (auditlog serve) --
    viewer_host: str = Field(
        default="127.0.0.1", description="Address the viewer listens on (0.0.0.0 in containers)."
    )
    viewer_port: int = Field(
        default=8080, ge=0, le=65535, description="Port of the viewer (0: any free port)."
    )
    viewer_cursor_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key that signs the viewer's page cursors; the same on every replica (unset: a "
            "key of the process, so cursors stop working at a restart)."
        ),
    )
    viewer_rate_limit_per_s: float = Field(
        default=10.0, gt=0, description="Requests a second each user may make to the viewer."
    )
    viewer_rate_limit_burst: int = Field(
        default=40, ge=1, description="Requests a user may make at once before the rate applies."
    )
    viewer_exports_per_user: int = Field(
        default=2, ge=1, description="Exports one user may run at once in a viewer process."
    )
    viewer_exports_total: int = Field(
        default=8,
        ge=1,
        description="Exports a viewer process runs at once (each holds a ClickHouse query).",
    )
    viewer_forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description=(
            "Proxies whose X-Forwarded-For the viewer trusts for the client's address, comma "
            "separated ('*': any)."
        ),
    )
    viewer_ingest_lag_s: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Ingest-order pages (order=ingested) stop this far behind now, so an insert "
            "still in flight is not skipped."
        ),
    )

    # -- the viewer page: its sessions and who may frame it --
    viewer_session_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key (at least 32 bytes) that signs the page's session cookies; the same on every "
            "replica (unset: derived from AUDITLOG_VIEWER_CURSOR_KEY)."
        ),
    )
    viewer_session_ttl_s: int = Field(
        default=3600,
        ge=60,
        le=12 * 3600,
        description="How long a page session lasts after signing in (not renewed).",
    )
    viewer_sign_in_max_ttl_s: int = Field(
        default=300,
        ge=10,
        le=3600,
        description=(
            "The longest a sign-in token handed to the page may still be valid: a link "
            "that signs in must be short-lived."
        ),
    )
    viewer_cookie_secure: bool | None = Field(
        default=None,
        description=(
            "Mark the session cookie Secure (unset: when the request came over HTTPS, as seen "
            "through trusted proxies)."
        ),
    )
    viewer_frame_ancestors: str = Field(
        default=NO_FRAMING,
        description=(
            "Who may show the page in a frame: 'none', or 'self' and https:// origins "
            "separated by spaces; set, the session cookie becomes SameSite=None; Secure; "
            "Partitioned."
        ),
    )

    @field_validator("viewer_frame_ancestors")
    @classmethod
    def _frame_ancestors(cls, value: str) -> str:
        problem = frame_ancestors_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value.strip()

    @field_validator("viewer_session_key")
    @classmethod
    def _session_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 bytes: make one with `openssl rand -hex 32`")
        return value

    # -- The viewer's identity: how bearer tokens are verified and read
    #    (viewer.identity.IdentityConfig, built by identity_config below) --
    viewer_jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 shared secret of the identity provider (at least 32 bytes); "
        "unset: HS256 tokens are refused (development tokens aside).",
    )
    viewer_jwks_file: Path | None = Field(
        default=None,
        description="JWKS file of the identity provider's RS256/ES256 public keys (read "
        "again when it changes).",
    )
    viewer_jwks_url: str | None = Field(
        default=None,
        description="JWKS URL of the identity provider's RS256/ES256 public keys (https; "
        "http only to a loopback host); instead of the file.",
    )
    viewer_jwt_issuer: str | None = Field(
        default=None,
        description="The issuer (iss) tokens must carry; unset: not checked.",
    )
    viewer_jwt_audience: str = Field(
        default="auditlog-viewer", description="The audience (aud) tokens must name."
    )
    viewer_claim_user_id: str = Field(default="sub", description="Token claim holding the user id.")
    viewer_claim_email: str = Field(
        default="email", description="Token claim holding the user's email address."
    )
    viewer_claim_name: str = Field(
        default="name", description="Token claim holding the user's display name."
    )
    viewer_claim_account: str = Field(
        default="account_id",
        description="Token claim holding the account (tenant) the token was issued for.",
    )
    viewer_claim_roles: str = Field(
        default="roles",
        description="Token claim holding the roles (a list or a space-separated string).",
    )
    viewer_claim_privileges: str = Field(
        default="privileges",
        description="Token claim holding the privileges (a list or a space-separated string).",
    )
    viewer_claim_partner: str = Field(
        default="partner_id",
        description="Token claim holding the embedded partner a staff member works for.",
    )
    viewer_jwt_leeway_s: float = Field(
        default=30,
        ge=0,
        le=300,
        description="Clock skew tolerated on exp, nbf and iat, in seconds.",
    )
    viewer_dev_secret: SecretStr | None = Field(
        default=None,
        description="Development only: HS256 secret (at least 32 bytes) of tokens minted by "
        "`auditlog viewer token` (issuer auditlog-dev), accepted while it is set.",
    )

    def identity_config(self, *, require_keys: bool = False) -> IdentityConfig:
        """How the viewer verifies and reads bearer tokens. Raises
        :class:`~viewer.identity.IdentityConfigError` naming the variables when they do not
        go together, or (``require_keys``) when nothing could verify a token. Reads no file,
        fetches nothing."""
        values = {field: getattr(self, setting) for field, setting in _IDENTITY_SETTINGS.items()}
        for secret in ("hs256_secret", "dev_secret"):
            if values[secret] is not None:
                values[secret] = values[secret].get_secret_value()
        config = IdentityConfig(**values)
        problems = config.problems(_identity_variable)
        if problems:
            raise IdentityConfigError("\n".join(problems))
        if require_keys and not config.can_verify:
            raise IdentityConfigError(
                "no way to verify viewer tokens: set AUDITLOG_VIEWER_JWKS_URL, "
                "AUDITLOG_VIEWER_JWKS_FILE or AUDITLOG_VIEWER_JWT_SECRET (or, in development, "
                "AUDITLOG_VIEWER_DEV_SECRET)"
            )
        return config
