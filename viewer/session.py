"""The page's own session: a signed cookie made from a verified sign-in token, its CSRF
token, and the ledger that lets each sign-in token be used once.

The cookie holds the verified principal and an expiry, signed with HMAC-SHA256 under the
session key; nothing is stored on the server, so every replica that shares the key shares
sessions (and a session cannot be revoked before it expires: keep its lifetime short).
The CSRF token is derived from the session's id under the same key: a page read from the
viewer's origin gets it from ``GET /api/session``; another site cannot read it.

A value that is not base64url text, a wrong signature, an unknown version or an expired
session are all :class:`InvalidSession`; the reason is for logs, never for the client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from viewer.principal import Principal

COOKIE_NAME = "auditlog_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
MAX_COOKIE_CHARS = 3800  # browsers keep cookies of up to 4096 bytes, name and attributes included
_VERSION = 1
_SESSION_KEY_LABEL = b"auditlog viewer session key v1"
_CSRF_LABEL = b"csrf\x00"

Clock = Callable[[], float]


class InvalidSession(Exception):
    """The cookie is not a valid, unexpired session of this key."""


class SessionTooLarge(Exception):
    """The principal does not fit in a cookie (too many roles or privileges)."""


@dataclass(frozen=True)
class Session:
    principal: Principal
    session_id: str
    expires_at: float  # epoch seconds


def session_key(configured: bytes | None, cursor_key: bytes) -> bytes:
    """The configured session key, else one derived from the cursor key (so replicas that
    share the cursor key share sessions, and the two keys still differ)."""
    if configured is not None:
        return configured
    return hmac.new(cursor_key, _SESSION_KEY_LABEL, hashlib.sha256).digest()


class SessionCodec:
    """Issues and reads session cookies of one key and lifetime."""

    def __init__(self, key: bytes, *, ttl_s: float, clock: Clock = time.time) -> None:
        if len(key) < 32:
            raise ValueError("the session key must be at least 32 bytes")
        if ttl_s <= 0:
            raise ValueError("the session lifetime must be positive")
        self._key = key
        self._ttl_s = ttl_s
        self._clock = clock

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    def issue(self, principal: Principal, *, not_after: float | None = None) -> tuple[str, Session]:
        """A new session for ``principal`` and its cookie value; it ends after the
        lifetime, or at ``not_after`` if sooner. Raises :class:`SessionTooLarge`."""
        expires = self._clock() + self._ttl_s
        if not_after is not None:
            expires = min(expires, not_after)
        session = Session(principal, secrets.token_urlsafe(18), expires)
        payload = orjson.dumps(
            {
                "v": _VERSION,
                "sid": session.session_id,
                "exp": expires,
                **_principal_fields(principal),
            }
        )
        value = f"{_b64(payload)}.{_b64(self._sign(payload))}"
        if len(value) > MAX_COOKIE_CHARS:
            raise SessionTooLarge(
                f"the session would need {len(value)} characters, more than a cookie holds: "
                "the token carries too many roles or privileges"
            )
        return value, session

    def read(self, value: str) -> Session:
        """The session a cookie value holds; raises :class:`InvalidSession`."""
        if len(value) > MAX_COOKIE_CHARS:
            raise InvalidSession("too long")
        encoded, _, signature = value.partition(".")
        try:
            payload = _unb64(encoded)
            given = _unb64(signature)
        except ValueError:
            raise InvalidSession("not base64url") from None
        if not hmac.compare_digest(given, self._sign(payload)):
            raise InvalidSession("wrong signature")
        try:
            fields = orjson.loads(payload)
            if fields.get("v") != _VERSION:
                raise InvalidSession("unknown version")
            session = Session(_principal_of(fields), str(fields["sid"]), float(fields["exp"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise InvalidSession("malformed") from None
        if session.expires_at <= self._clock():
            raise InvalidSession("expired")
        return session

    def csrf_token(self, session: Session) -> str:
        return _b64(
            hmac.new(self._key, _CSRF_LABEL + session.session_id.encode(), hashlib.sha256).digest()
        )

    def csrf_matches(self, session: Session, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(
            given.encode(), self.csrf_token(session).encode()
        )

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()


class SignInLedger:
    """The ids of sign-in tokens already exchanged in this process, each kept until its
    token expires, so a link cannot sign in twice (a copied URL, a browser history, a
    proxy's log). At most ``capacity`` ids are held: when it is full of unexpired tokens,
    sign-ins are refused rather than forgetting one."""

    def __init__(self, *, capacity: int = 100_000, clock: Clock = time.time) -> None:
        self._capacity = capacity
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, token_id: str, expires_at: float) -> bool | None:
        """True the first time ``token_id`` is seen, False after; None when the ledger is
        full (the caller refuses the sign-in: try again later)."""
        now = self._clock()
        with self._lock:
            if token_id in self._expiry and self._expiry[token_id] > now:
                return False
            if len(self._expiry) >= self._capacity:
                self._expiry = {k: v for k, v in self._expiry.items() if v > now}
                if len(self._expiry) >= self._capacity:
                    return None
            self._expiry[token_id] = expires_at
            return True


def _principal_fields(principal: Principal) -> dict[str, Any]:
    return {
        "u": principal.user_id,
        "a": principal.account_id,
        "e": principal.email,
        "n": principal.name,
        "r": sorted(principal.roles),
        "p": sorted(principal.privileges),
        "pt": principal.partner_id,
    }


def _principal_of(fields: dict[str, Any]) -> Principal:
    def optional(name: str) -> str | None:
        value = fields.get(name)
        return None if value is None else str(value)

    return Principal(
        user_id=str(fields["u"]),
        account_id=str(fields["a"]),
        email=optional("e"),
        name=optional("n"),
        roles=frozenset(str(role) for role in fields["r"]),
        privileges=frozenset(str(privilege) for privilege in fields["p"]),
        partner_id=optional("pt"),
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("empty or not ASCII")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
