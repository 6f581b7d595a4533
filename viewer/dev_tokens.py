"""Development tokens: HS256 JWTs signed with the configured development secret and
carrying the issuer ``auditlog-dev``, which :class:`~viewer.identity.TokenVerifier`
accepts only while that secret is configured. They name any user, account, role and
privilege, so a deployment that serves real users leaves the development secret unset.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import jwt

from viewer.identity import DEV_ISSUER, IdentityConfig

MAX_TTL_S = 24 * 3600


class DevTokensDisabled(Exception):
    """No development secret is configured: development tokens are neither minted nor
    accepted."""


def mint_development_token(
    config: IdentityConfig,
    *,
    account_id: str,
    user_id: str,
    roles: Iterable[str] = (),
    privileges: Iterable[str] = (),
    partner_id: str | None = None,
    email: str | None = None,
    name: str | None = None,
    ttl_s: int = 3600,
    now: datetime | None = None,
) -> str:
    """A development token for ``user_id`` of ``account_id``, valid ``ttl_s`` seconds from
    ``now`` (1 to a day), with the claim names and audience of ``config``. Raises
    :class:`DevTokensDisabled` without a development secret and ``ValueError`` for a ttl
    out of range. Ids are not checked here: the verifier checks what it reads."""
    if config.dev_secret is None:
        raise DevTokensDisabled("no development secret is configured")
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"the ttl must be between 1 and {MAX_TTL_S} seconds")
    issued = now or datetime.now(UTC)
    claims: dict[str, object] = {
        "iss": DEV_ISSUER,
        "aud": config.audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + timedelta(seconds=ttl_s),
        "jti": uuid.uuid4().hex,
        config.claim_user_id: user_id,
        config.claim_account: account_id,
        config.claim_roles: sorted({role.lower() for role in roles}),
        config.claim_privileges: sorted({privilege.lower() for privilege in privileges}),
    }
    for claim, value in (
        (config.claim_partner, partner_id),
        (config.claim_email, email),
        (config.claim_name, name),
    ):
        if value is not None:
            claims[claim] = value
    return jwt.encode(claims, config.dev_secret, algorithm="HS256")
