"""The viewer page: its files, the sign-in exchange, and the two calls only the page makes.

- ``GET /`` the page (``viewer/static/index.html``); ``/static/...`` its script and styles.
- ``GET /sign-in?token=&next=`` (a link) and ``POST /sign-in`` (a form, for embedding):
  a short-lived platform token, used once, becomes the page's session cookie
  (:mod:`viewer.session`), then ``303`` to ``next`` (a path of this origin only).
- ``POST /sign-out``: the cookie is cleared.
- ``GET /api/session``: who is signed in, which accounts they may open, the CSRF token.
- ``GET /api/activities``: the activity catalog, for filters and activities in words.

The API itself (:mod:`viewer.routes`) accepts the session cookie with its CSRF token. See
``docs/viewer-page.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from schemas.catalog.model import Catalog
from viewer import caller, problems
from viewer.access import Forbidden, authorize
from viewer.forms import form_items
from viewer.identity import InvalidToken
from viewer.notice_page import notice, same_origin_path
from viewer.principal import ADMIN_ROLE, OWNER_ROLE, Principal
from viewer.routes import ViewerServices
from viewer.session import COOKIE_NAME, SessionCodec, SessionTooLarge, SignInLedger

log = logging.getLogger("auditlog.viewer")

STATIC_DIR = Path(__file__).parent / "static"
MAX_SIGN_IN_FORM_BYTES = 32 * 1024
MAX_LISTED_ACCOUNTS = 1000


@dataclass(frozen=True)
class PageServices:
    """What the page needs beyond the API's services, built at the edge."""

    sessions: SessionCodec
    sign_ins: SignInLedger
    managed_by: Callable[[str], frozenset[str]]  # a partner's accounts
    catalog: Catalog
    sign_in_max_ttl_s: float = 300.0  # a longer-lived token is refused for signing in
    cookie_secure: bool | None = None  # None: Secure when the request came over HTTPS
    embedded: bool = False  # framed by another site: the cookie must be SameSite=None


def mount_page(app: FastAPI, services: ViewerServices, page: PageServices) -> None:
    """Add the page's routes and static files to ``app``."""
    index = (STATIC_DIR / "index.html").read_bytes()
    activities = orjson.dumps(_catalog_json(page.catalog))
    routes = _PageRoutes(services, page)
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def _index() -> Response:
        return HTMLResponse(index)

    @router.get("/api/activities")
    def _activities() -> Response:
        return Response(activities, media_type="application/json")

    router.add_api_route("/sign-in", routes.sign_in_link, methods=["GET"])
    router.add_api_route("/sign-in", routes.sign_in_form, methods=["POST"])
    router.add_api_route("/sign-out", routes.sign_out, methods=["POST"])
    router.add_api_route("/api/session", routes.session, methods=["GET"])
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


class _PageRoutes:
    def __init__(self, services: ViewerServices, page: PageServices) -> None:
        self._services = services
        self._page = page

    def sign_in_link(self, request: Request) -> Response:
        params = request.query_params
        return self._sign_in(request, params.get("token", ""), params.get("next"))

    async def sign_in_form(self, request: Request) -> Response:
        try:
            fields = dict(await form_items(request, max_bytes=MAX_SIGN_IN_FORM_BYTES))
        except problems.ApiProblem as problem:
            return _sign_in_refused(problem.message, status=problem.status)
        return await run_in_threadpool(
            self._sign_in, request, fields.get("token", ""), fields.get("next")
        )

    def sign_out(self, request: Request) -> Response:
        session = caller.current_session(request, self._page.sessions)
        given = request.headers.get("X-CSRF-Token")
        if not self._page.sessions.csrf_matches(session, given):
            raise problems.csrf_failed()
        response = Response(status_code=204)
        response.headers.append("Set-Cookie", self._cookie(request, "", max_age_s=0))
        return response

    def session(self, request: Request) -> Response:
        session = caller.current_session(request, self._page.sessions)
        principal = session.principal
        accounts, denied = self._readable(principal)
        body = {
            "user": {"id": principal.user_id, "email": principal.email, "name": principal.name},
            "account_id": principal.account_id,
            "partner_id": principal.partner_id,
            "accounts": accounts,
            "denied_reason": denied,
            "csrf_token": self._page.sessions.csrf_token(session),
            "expires_at": datetime.fromtimestamp(session.expires_at, UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        }
        return Response(orjson.dumps(body), media_type="application/json")

    def _sign_in(self, request: Request, token: str, next_path: str | None) -> Response:
        page = self._page
        try:
            signed = self._services.verifier.verify_sign_in(token)
        except InvalidToken as exc:
            return _sign_in_refused(f"this sign-in link is not valid ({exc})")
        if signed.expires_at - time.time() > page.sign_in_max_ttl_s:
            return _sign_in_refused(
                f"this sign-in token lives longer than {page.sign_in_max_ttl_s:.0f} s; the "
                "platform must hand the viewer short-lived tokens"
            )
        first = page.sign_ins.first_use(signed.token_id, signed.expires_at)
        if first is None:
            return _sign_in_refused("too many sign-ins at once: try again in a minute", 503)
        if not first:
            return _sign_in_refused("this sign-in link was already used")
        try:
            value, session = page.sessions.issue(signed.principal)
        except SessionTooLarge as exc:
            return _sign_in_refused(str(exc), status=400)
        log.info(
            "viewer sign-in",
            extra={"account": signed.principal.account_id, "user": signed.principal.user_id},
        )
        response = RedirectResponse(same_origin_path(next_path), status_code=303)
        max_age_s = max(1, int(session.expires_at - time.time()))
        response.headers.append("Set-Cookie", self._cookie(request, value, max_age_s=max_age_s))
        return response

    def _cookie(self, request: Request, value: str, *, max_age_s: int) -> str:
        """The session's ``Set-Cookie`` value (``value`` is base64url text and a dot)."""
        page = self._page
        secure = request.url.scheme == "https" if page.cookie_secure is None else page.cookie_secure
        flags = [f"{COOKIE_NAME}={value}", f"Max-Age={max_age_s}", "Path=/", "HttpOnly"]
        if page.embedded:
            # A frame on another site gets its cookies only as SameSite=None (which needs
            # Secure), partitioned by the top site (CHIPS) where third-party cookies are off.
            flags += ["Secure", "SameSite=None", "Partitioned"]
        else:
            flags += (["Secure"] if secure else []) + ["SameSite=Lax"]
        return "; ".join(flags)

    def _readable(self, principal: Principal) -> tuple[list[str], str | None]:
        """The accounts the page may show ``principal`` (own first), and why none when so."""
        facts_of = self._services.facts_of
        accounts: list[str] = []
        denied: str | None = None
        try:
            accounts.append(authorize(principal, None, facts_of).account_id)
        except Forbidden as exc:
            denied = exc.reason
        if principal.partner_id is not None and principal.roles & {ADMIN_ROLE, OWNER_ROLE}:
            managed = sorted(self._page.managed_by(principal.partner_id))
            for account_id in managed[:MAX_LISTED_ACCOUNTS]:
                facts = facts_of(account_id)
                if account_id not in accounts and facts is not None and facts.audit_log_enabled:
                    accounts.append(account_id)
        return accounts, (denied if not accounts else None)


def _sign_in_refused(reason: str, status: int = 401) -> Response:
    return notice(
        "Sign-in refused",
        f"{reason[:1].upper()}{reason[1:]}.",
        "Open the activity audit log again from the platform to get a new sign-in link.",
        status=status,
    )


def _catalog_json(catalog: Catalog) -> dict[str, Any]:
    return {
        "categories": [{"id": c.id, "title": c.title} for c in catalog.categories],
        "resource_types": [{"id": r.id, "title": r.title} for r in catalog.resource_types],
        "activities": [
            {
                "action": a.action,
                "category": a.category,
                "resource_type": a.resource_type,
                "description": a.description,
            }
            for a in catalog.activities
        ],
    }
