"""Who is calling, checked once per request: bearer token or session, then the caller's rate.

:func:`authenticate` turns the ``Authorization: Bearer`` header, or else the page's session
cookie with its CSRF token (:mod:`viewer.session`), into a
:class:`~viewer.principal.Principal` (401 otherwise; 403 for a session request without its
CSRF token) and spends one request of the user's rate (429 when none is left). A bearer
request ignores the cookie. Which account the principal may read is decided per route,
once its parameters are known (:func:`grant_for`), because a partner's admin names the
account in a parameter.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

from fastapi import Request

from accounts.model import AccountFacts
from viewer import problems
from viewer.access import Forbidden, authorize
from viewer.identity import InvalidToken, SignInToken
from viewer.principal import Grant, Principal
from viewer.rate_limit import RateLimiter
from viewer.session import COOKIE_NAME, CSRF_HEADER, InvalidSession, Session, SessionCodec
from viewer.viewing_audit import RequestContext

_SCHEME = "bearer"
_MAX_REQUEST_ID = 128


class Verifier(Protocol):
    def verify(self, token: str) -> Principal: ...

    def verify_sign_in(self, token: str) -> SignInToken: ...


FactsOf = Callable[[str], AccountFacts | None]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != _SCHEME or not token:
        return None
    return token


def authenticate(
    request: Request,
    verifier: Verifier,
    limiter: RateLimiter,
    sessions: SessionCodec | None = None,
    *,
    csrf_token: str | None = None,
) -> Principal:
    """The verified caller; raises :class:`~viewer.problems.ApiProblem` 401, 403 or 429.
    ``csrf_token`` is a session request's token when it came in a form field rather than
    the header."""
    token = bearer_token(request)
    if token is not None:
        try:
            principal = verifier.verify(token)
        except InvalidToken as exc:
            raise problems.invalid_token(str(exc)) from None
    elif sessions is not None and COOKIE_NAME in request.cookies:
        session = current_session(request, sessions)
        given = csrf_token if csrf_token is not None else request.headers.get(CSRF_HEADER)
        if not sessions.csrf_matches(session, given):
            raise problems.csrf_failed()
        principal = session.principal
    else:
        raise problems.invalid_token("send it as 'Authorization: Bearer <token>'")
    wait_s = limiter.take(f"{principal.account_id}\x00{principal.user_id}")
    if wait_s > 0:
        raise problems.rate_limited(wait_s)
    return principal


def current_session(request: Request, sessions: SessionCodec) -> Session:
    """The request's session; raises a 401 :class:`~viewer.problems.ApiProblem` when it has
    none or it ended."""
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        raise problems.no_session("you are not signed in")
    try:
        return sessions.read(value)
    except InvalidSession:
        raise problems.no_session("your session has ended") from None


def grant_for(principal: Principal, requested_account: str | None, facts_of: FactsOf) -> Grant:
    """The principal's grant on the account it asks for (its own unless named); raises
    :class:`~viewer.problems.ApiProblem` 403 with the reason."""
    try:
        return authorize(principal, requested_account, facts_of)
    except Forbidden as exc:
        raise problems.forbidden(str(exc)) from None


def request_context(request: Request) -> RequestContext:
    """Where the request came from (the client address is the proxy's unless the server
    trusts its forwarded headers: see ``AUDITLOG_VIEWER_FORWARDED_ALLOW_IPS``)."""
    return RequestContext(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request_id(request),
    )


def request_id(request: Request) -> str:
    """The request's id: the caller's ``X-Request-ID`` when it is a plain token of at most
    128 characters, else one made here; kept on the request for the response header."""
    found = getattr(request.state, "request_id", None)
    if isinstance(found, str):
        return found
    given = request.headers.get("x-request-id", "")
    if not (0 < len(given) <= _MAX_REQUEST_ID and given.isascii() and given.isprintable()):
        given = str(uuid.uuid4())
    request.state.request_id = given
    return given
