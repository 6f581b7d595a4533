"""Who is calling the viewer: a bearer JWT from the platform's identity provider, verified
with PyJWT, turned into a :class:`~viewer.principal.Principal`.

Accepted signatures, and nothing else:

- HS256 with the configured shared secret (``hs256_secret``);
- RS256 and ES256 with a public key of the provider's JWKS (file or URL, see
  :mod:`viewer.jwks`), chosen by ``kid``;
- when ``dev_secret`` is configured, HS256 development tokens signed with it, which carry
  the issuer ``auditlog-dev`` (:mod:`viewer.dev_tokens`); no other token may carry it.

The algorithm a token names only selects which of these applies; the key never comes from
the token, so ``alg: none``, HS256 signed with a provider's public key, and unknown
algorithms are refused. Every token must have ``exp`` and the configured audience; ``nbf``
and ``iat`` are checked when present, with ``leeway_s``; the issuer when one is configured.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from consumers.retention import RetentionError, validate_tenant
from viewer.jwks import FileKeys, KeyRefused, KeySource, KeysUnavailable, UrlKeys, url_problem
from viewer.principal import Principal

DEV_ISSUER = "auditlog-dev"
DEFAULT_AUDIENCE = "auditlog-viewer"
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key of at least 256 bits
MAX_TOKEN_CHARS = 16 * 1024
MAX_LEEWAY_S = 300.0
_MAX_TEXT_CHARS = 320
MAX_USER_ID_CHARS = 256  # the audit event's actor id: a longer one could not record a read
_MAX_NAMES = 100
_NAME = re.compile(r"[a-z0-9][a-z0-9._:-]{0,127}")

Namer = Callable[[str], str]


class InvalidToken(Exception):
    """The token does not identify anyone (HTTP 401). ``str(exc)`` is a short reason that is
    safe to show and log: it never contains the token nor a value taken from it."""


class IdentityConfigError(ValueError):
    """The identity settings do not go together; one problem per line."""


@dataclass(frozen=True)
class IdentityConfig:
    """How tokens are verified and read. Secrets are kept out of ``repr``."""

    hs256_secret: str | None = field(default=None, repr=False)
    jwks_file: Path | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str = DEFAULT_AUDIENCE
    claim_user_id: str = "sub"
    claim_email: str = "email"
    claim_name: str = "name"
    claim_account: str = "account_id"
    claim_roles: str = "roles"
    claim_privileges: str = "privileges"
    claim_partner: str = "partner_id"
    leeway_s: float = 30.0
    dev_secret: str | None = field(default=None, repr=False)
    jwks_timeout_s: float = 5.0
    jwks_cache_s: float = 300.0
    jwks_refetch_cooldown_s: float = 30.0

    @property
    def claim_names(self) -> dict[str, str]:
        return {
            "claim_user_id": self.claim_user_id,
            "claim_email": self.claim_email,
            "claim_name": self.claim_name,
            "claim_account": self.claim_account,
            "claim_roles": self.claim_roles,
            "claim_privileges": self.claim_privileges,
            "claim_partner": self.claim_partner,
        }

    @property
    def can_verify(self) -> bool:
        """Whether any key is configured (a secret, a JWKS file or URL)."""
        return bool(self.hs256_secret or self.dev_secret or self.jwks_file or self.jwks_url)

    def problems(self, name: Namer = str) -> list[str]:
        """Every incoherent setting, one sentence each, naming fields with ``name``; empty
        when all is well. Does not read the JWKS file nor fetch the URL."""
        return [
            *self._secret_problems(name),
            *self._key_problems(name),
            *self._claim_problems(name),
        ]

    def _secret_problems(self, name: Namer) -> list[str]:
        found: list[str] = []
        for field_name in ("hs256_secret", "dev_secret"):
            secret: str | None = getattr(self, field_name)
            if secret is None:
                continue
            if len(secret.encode()) < MIN_SECRET_BYTES:
                found.append(
                    f"{name(field_name)} is shorter than {MIN_SECRET_BYTES} bytes "
                    "(HS256 needs a secret of at least 256 bits)"
                )
            if "-----BEGIN" in secret:
                found.append(f"{name(field_name)} is a PEM key, not a shared secret")
        if self.hs256_secret is not None and self.hs256_secret == self.dev_secret:
            found.append(f"{name('dev_secret')} must differ from {name('hs256_secret')}")
        return found

    def _key_problems(self, name: Namer) -> list[str]:
        found: list[str] = []
        if self.jwks_file is not None and self.jwks_url is not None:
            found.append(f"set one of {name('jwks_file')} and {name('jwks_url')}, not both")
        if self.jwks_url is not None:
            problem = url_problem(self.jwks_url)
            if problem is not None:
                found.append(f"{name('jwks_url')} {problem}")
        if self.jwks_timeout_s <= 0 or self.jwks_cache_s <= 0 or self.jwks_refetch_cooldown_s < 0:
            found.append("the JWKS timeout and cache lifespan must be positive")
        return found

    def _claim_problems(self, name: Namer) -> list[str]:
        found: list[str] = []
        if self.issuer == DEV_ISSUER:
            found.append(f"{name('issuer')} {DEV_ISSUER!r} is reserved for development tokens")
        if self.issuer is not None and not self.issuer:
            found.append(f"{name('issuer')} is empty: unset it, or name the issuer")
        if not self.audience:
            found.append(f"{name('audience')} is empty")
        if not 0 <= self.leeway_s <= MAX_LEEWAY_S:
            found.append(f"{name('leeway_s')} must be between 0 and {MAX_LEEWAY_S:g} seconds")
        claims = self.claim_names
        found += [
            f"{name(field_name)} is empty" for field_name, claim in claims.items() if not claim
        ]
        if len(set(claims.values())) != len(claims):
            found.append("two claim settings name the same claim: each must be distinct")
        return found


@dataclass(frozen=True)
class SignInToken:
    """A verified sign-in token: who it names, its id (``jti``) and when it expires (epoch
    seconds)."""

    principal: Principal
    token_id: str
    expires_at: float


class TokenVerifier:
    """Verifies bearer tokens against one :class:`IdentityConfig`.

    The constructor raises :class:`IdentityConfigError` for incoherent settings or when
    nothing could verify a token, and reads the JWKS file (its errors too). ``verify``
    blocks while a JWKS URL is fetched (at most the configured timeout, rarely: the key set
    is cached); it is safe to call from several threads.
    """

    def __init__(self, config: IdentityConfig, *, keys: KeySource | None = None) -> None:
        problems = config.problems()
        if not config.can_verify:
            problems.append(
                "no way to verify tokens: configure a shared secret, a JWKS file or URL, "
                "or a development secret"
            )
        if problems:
            raise IdentityConfigError("\n".join(problems))
        self._config = config
        self._keys = keys if keys is not None else _key_source(config)

    @property
    def config(self) -> IdentityConfig:
        return self._config

    def verify(self, token: str) -> Principal:
        """The principal ``token`` names; raises :class:`InvalidToken` with a safe reason."""
        return self._principal(self._verified_claims(token))

    def verify_sign_in(self, token: str) -> SignInToken:
        """A token handed to the page to sign in with: verified as :meth:`verify` does, and
        it must carry a ``jti`` (so it can be used once) and an ``exp``."""
        claims = self._verified_claims(token)
        token_id = claims.get("jti")
        if not isinstance(token_id, str) or not 0 < len(token_id) <= _MAX_TEXT_CHARS:
            raise InvalidToken("a sign-in token needs a jti claim, so it can be used only once")
        expires = claims.get("exp")
        if not isinstance(expires, int | float):
            raise InvalidToken("malformed token")
        return SignInToken(self._principal(claims), token_id, float(expires))

    def _verified_claims(self, token: str) -> dict[str, Any]:
        if not token:
            raise InvalidToken("missing token")
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise InvalidToken("malformed token") from None
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise InvalidToken("malformed token")
        if alg.lower() == "none":
            raise InvalidToken("algorithm none refused")
        key: str | PyJWK
        if alg == "HS256":
            key, issuer = self._hmac_key(token)
        elif alg in ("RS256", "ES256") and self._keys is not None:
            key, issuer = self._key_set_key(header.get("kid"), alg), self._config.issuer
        else:
            raise InvalidToken("algorithm not accepted")
        claims = self._decode(token, key, alg, issuer)
        stated = claims.get("iss")
        if stated is not None and not isinstance(stated, str):
            raise InvalidToken("wrong issuer")
        if issuer != DEV_ISSUER and stated == DEV_ISSUER:
            raise InvalidToken("wrong issuer")
        return claims

    def _hmac_key(self, token: str) -> tuple[str, str | None]:
        """The secret and the issuer an HS256 token must be verified with: development
        tokens are told apart by their (still unverified) issuer, then fully verified."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except PyJWTError:
            raise InvalidToken("malformed token") from None
        if unverified.get("iss") == DEV_ISSUER:
            if self._config.dev_secret is None:
                raise InvalidToken("development tokens are not accepted")
            return self._config.dev_secret, DEV_ISSUER
        if self._config.hs256_secret is None:
            raise InvalidToken("algorithm not accepted")
        return self._config.hs256_secret, self._config.issuer

    def _key_set_key(self, kid: object, alg: str) -> PyJWK:
        assert self._keys is not None
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("malformed token")
        try:
            return self._keys.key_for(kid, alg)
        except (KeyRefused, KeysUnavailable) as exc:
            raise InvalidToken(str(exc)) from None

    def _decode(self, token: str, key: str | PyJWK, alg: str, issuer: str | None) -> dict[str, Any]:
        required = ["exp", "aud"] + (["iss"] if issuer is not None else [])
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._config.audience,
                issuer=issuer,
                leeway=self._config.leeway_s,
                options={"require": required, "enforce_minimum_key_length": True},
            )
        except PyJWTError as exc:
            raise InvalidToken(_reason(exc)) from None
        return claims

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        config = self._config
        return Principal(
            user_id=_text(claims, config.claim_user_id, required=True, max_chars=MAX_USER_ID_CHARS)
            or "",
            account_id=_account(claims, config.claim_account, required=True) or "",
            email=_text(claims, config.claim_email),
            name=_text(claims, config.claim_name),
            roles=_names(claims, config.claim_roles, split=False),
            privileges=_names(claims, config.claim_privileges, split=True),
            partner_id=_account(claims, config.claim_partner),
        )


def _key_source(config: IdentityConfig) -> KeySource | None:
    if config.jwks_url is not None:
        return UrlKeys(
            config.jwks_url,
            timeout_s=config.jwks_timeout_s,
            cache_s=config.jwks_cache_s,
            refetch_cooldown_s=config.jwks_refetch_cooldown_s,
        )
    if config.jwks_file is not None:
        try:
            return FileKeys(config.jwks_file)
        except (OSError, ValueError, PyJWTError) as exc:
            raise IdentityConfigError(f"JWKS file {config.jwks_file}: {exc}") from exc
    return None


def _reason(exc: PyJWTError) -> str:
    """A short reason for PyJWT's error, without anything taken from the token."""
    reasons: list[tuple[type[PyJWTError], str]] = [
        (ExpiredSignatureError, "expired"),
        (ImmatureSignatureError, "not yet valid"),
        (InvalidAudienceError, "wrong audience"),
        (InvalidIssuerError, "wrong issuer"),
        (InvalidIssuedAtError, "invalid issued-at time"),
        (InvalidSignatureError, "signature does not verify"),
        (InvalidAlgorithmError, "algorithm not accepted"),
        (InvalidKeyError, "the key is too weak"),
        (DecodeError, "malformed token"),
    ]
    if isinstance(exc, MissingRequiredClaimError):
        return f"missing claim {exc.claim}"  # one of exp, aud, iss: named by us
    for kind, reason in reasons:
        if isinstance(exc, kind):
            return reason
    return "invalid token"


def _text(
    claims: Mapping[str, Any],
    claim: str,
    *,
    required: bool = False,
    max_chars: int = _MAX_TEXT_CHARS,
) -> str | None:
    value = claims.get(claim)
    if value is None or value == "":
        if required:
            raise InvalidToken(f"missing claim {claim}")
        return None
    if not isinstance(value, str):
        raise InvalidToken(f"claim {claim} is not a string")
    if len(value) > max_chars:
        raise InvalidToken(f"claim {claim} is too long")
    return value


def _account(claims: Mapping[str, Any], claim: str, *, required: bool = False) -> str | None:
    value = _text(claims, claim, required=required)
    if value is None:
        return None
    try:
        return validate_tenant(value)
    except RetentionError:
        raise InvalidToken(f"claim {claim} is not an account id") from None


def _names(claims: Mapping[str, Any], claim: str, *, split: bool) -> frozenset[str]:
    """Roles or privileges: a JSON list of strings, or one string, compared lower-case;
    absent means none. Entries that are not plain names are left out. A string is one
    role (``split=False``: a custom role named "Read-only admin" must not grant Admin), or
    space-separated privileges (``split=True``, as OAuth's ``scope`` claim)."""
    value = claims.get(claim)
    if value is None:
        return frozenset()
    if isinstance(value, str):
        items: list[Any] = value.split() if split else [value]
    elif isinstance(value, list):
        items = value
    else:
        raise InvalidToken(f"claim {claim} is not a list nor a string")
    if len(items) > _MAX_NAMES:
        raise InvalidToken(f"claim {claim} has too many entries")
    names: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise InvalidToken(f"claim {claim} holds something other than names")
        lowered = item.strip().lower()
        if _NAME.fullmatch(lowered):  # others (spaces, odd characters) grant nothing here
            names.add(lowered)
    return frozenset(names)
