"""The viewer page's HTTP side with fakes at its seams: the sign-in exchange, the session
cookie and its CSRF token on the API, ``/api/session``, the form export, and the security
headers. The page itself runs in a real browser in tests/stack/browser/."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from accounts.model import AccountFacts
from schemas.catalog.model import load_catalog
from tests.unit import viewer_fakes as fakes
from tests.unit.viewer_fakes import RECORD, Viewer
from viewer.identity import InvalidToken, SignInToken
from viewer.page import STATIC_DIR, PageServices
from viewer.principal import AUDIT_PRIVILEGE, Principal
from viewer.session import COOKIE_NAME, SessionCodec, SignInLedger

ADMIN = Principal("u-admin", "acme", email="ada@acme.test", roles=frozenset({"admin"}))
MEMBER = Principal("u-member", "acme", roles=frozenset({"member"}))
AUDITOR = Principal("u-aud", "acme", privileges=frozenset({AUDIT_PRIVILEGE}))
PARTNER_ADMIN = Principal("u-p", "partnerco", roles=frozenset({"admin"}), partner_id="partnerco")
PEOPLE = {"admin": ADMIN, "member": MEMBER, "auditor": AUDITOR, "partner": PARTNER_ADMIN}
FACTS = {
    "acme": AccountFacts("acme", audit_log_add_on=True),
    "partnerco": AccountFacts("partnerco", audit_log_add_on=True),
    "managed-b": AccountFacts("managed-b", partner_id="partnerco"),
    "managed-a": AccountFacts("managed-a", partner_id="partnerco"),
    "managed-off": AccountFacts("managed-off", audit_log_add_on=False, partner_id="partnerco"),
}
KEY = b"k" * 32


@dataclass
class Clock:
    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now


class FakeVerifier:
    """Tokens are ``<person>`` (bearer) or ``sign-in:<person>:<jti>[:<ttl_s>]``."""

    def verify(self, token: str) -> Principal:
        if token not in PEOPLE:
            raise InvalidToken("signature does not verify")
        return PEOPLE[token]

    def verify_sign_in(self, token: str) -> SignInToken:
        kind, _, rest = token.partition(":")
        person, _, rest = rest.partition(":")
        jti, _, ttl = rest.partition(":")
        if kind != "sign-in" or person not in PEOPLE:
            raise InvalidToken("signature <b>does not</b> verify")
        return SignInToken(PEOPLE[person], jti, time.time() + float(ttl or 60))


def page_viewer(clock: Callable[[], float] = time.time, **kw: object) -> Viewer:
    page = PageServices(
        sessions=SessionCodec(KEY, ttl_s=600, clock=clock),
        sign_ins=SignInLedger(),
        managed_by=lambda partner: frozenset(
            account for account, facts in FACTS.items() if facts.partner_id == partner
        ),
        catalog=load_catalog(),
        **kw,  # type: ignore[arg-type]
    )
    return fakes.make_viewer(FakeVerifier(), FACTS.get, page=page)


def signed_in(viewer: Viewer, person: str = "admin", jti: str = "j1") -> str:
    """Sign in through the link; the session's CSRF token."""
    answer = viewer.client.get(f"/sign-in?token=sign-in:{person}:{jti}", follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return str(viewer.client.get("/api/session").json()["csrf_token"])


def test_a_sign_in_link_sets_an_httponly_session_cookie_and_lands_on_the_page() -> None:
    viewer = page_viewer()
    answer = viewer.client.get(
        "/sign-in?token=sign-in:admin:j1&next=/%3Frange%3D24h", follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/?range=24h"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in this test; https sets it
    session = viewer.client.get("/api/session").json()
    assert session["user"] == {"id": "u-admin", "email": "ada@acme.test", "name": None}
    assert session["account_id"] == "acme"
    assert session["accounts"] == ["acme"]
    assert session["denied_reason"] is None
    assert len(session["csrf_token"]) >= 32
    assert session["expires_at"].endswith("Z")


def test_a_sign_in_form_post_works_as_the_link_does() -> None:
    viewer = page_viewer()
    answer = viewer.client.post(
        "/sign-in",
        data={"token": "sign-in:auditor:j9", "next": "/?tz=utc"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/?tz=utc"
    assert viewer.client.get("/api/session").json()["user"]["id"] == "u-aud"


def test_a_sign_in_token_works_once() -> None:
    viewer = page_viewer()
    signed_in(viewer, jti="once")
    again = viewer.client.get("/sign-in?token=sign-in:admin:once", follow_redirects=False)
    assert again.status_code == 401
    assert "already used" in again.text
    assert "set-cookie" not in again.headers


def test_an_invalid_sign_in_token_gets_a_page_that_says_what_to_do_escaped() -> None:
    viewer = page_viewer()
    answer = viewer.client.get("/sign-in?token=forged", follow_redirects=False)
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("text/html")
    assert "Open the activity audit log again from the platform" in answer.text
    assert "<b>" not in answer.text
    assert "&lt;b&gt;does not&lt;/b&gt;" in answer.text
    assert "script-src 'self'" in answer.headers["content-security-policy"]


def test_a_long_lived_token_does_not_sign_in() -> None:
    viewer = page_viewer(sign_in_max_ttl_s=300)
    answer = viewer.client.get("/sign-in?token=sign-in:admin:j1:3600", follow_redirects=False)
    assert answer.status_code == 401
    assert "short-lived" in answer.text


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.test/",
        "//evil.test/",
        "/\\evil.test",
        "\\\\evil.test",
        "javascript:alert(1)",
        "/%0d%0aSet-Cookie:x=1",
        "/\r\nLocation: https://evil.test",
        "",
    ],
)
def test_sign_in_redirects_only_to_paths_of_its_own_origin(next_path: str) -> None:
    viewer = page_viewer()
    answer = viewer.client.post(
        "/sign-in",
        data={"token": "sign-in:admin:j1", "next": next_path},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/")
    assert not location.startswith(("//", "/\\"))
    assert "evil" not in location or location.startswith("/%")
    assert "\r" not in location
    assert "\n" not in location


def test_the_api_needs_the_csrf_token_with_the_session_cookie() -> None:
    viewer = page_viewer()
    csrf = signed_in(viewer)
    refused = viewer.client.get("/api/activity_logs")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    wrong = viewer.client.get("/api/activity_logs", headers={"X-CSRF-Token": csrf[:-1] + "x"})
    assert wrong.status_code == 403
    assert viewer.reader.calls == []
    answer = viewer.client.get("/api/activity_logs", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200
    assert answer.json()["data"] == [RECORD]
    assert [account for account, _ in viewer.reader.calls] == ["acme"]
    (event,) = viewer.publisher.events
    assert event["actor"]["id"] == "u-admin"


def test_a_bearer_request_ignores_the_cookie() -> None:
    viewer = page_viewer()
    signed_in(viewer, "admin")
    answer = viewer.client.get("/api/activity_logs", headers={"Authorization": "Bearer auditor"})
    assert answer.status_code == 200
    (event,) = viewer.publisher.events
    assert event["actor"]["id"] == "u-aud"


def test_an_ended_or_altered_session_is_401_no_session() -> None:
    clock = Clock()
    viewer = page_viewer(clock)
    csrf = signed_in(viewer)
    cookie = viewer.client.cookies[COOKIE_NAME]
    viewer.client.cookies.clear()
    viewer.client.cookies.set(COOKIE_NAME, cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))
    altered = viewer.client.get("/api/activity_logs", headers={"X-CSRF-Token": csrf})
    assert altered.status_code == 401
    assert altered.json()["error"]["code"] == "no_session"
    viewer.client.cookies.clear()
    viewer.client.cookies.set(COOKIE_NAME, cookie)
    assert viewer.client.get("/api/session").status_code == 200
    clock.now += 601
    ended = viewer.client.get("/api/session")
    assert ended.status_code == 401
    assert "session has ended" in ended.json()["error"]["message"]


def test_signing_out_needs_the_csrf_token_and_clears_the_cookie() -> None:
    viewer = page_viewer()
    csrf = signed_in(viewer)
    assert viewer.client.post("/sign-out").status_code == 403
    answer = viewer.client.post("/sign-out", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 204
    assert answer.headers["set-cookie"].startswith(f"{COOKIE_NAME}=; Max-Age=0")
    assert viewer.client.get("/api/session").status_code == 401


def test_a_member_is_told_which_role_they_need() -> None:
    viewer = page_viewer()
    signed_in(viewer, "member")
    session = viewer.client.get("/api/session").json()
    assert session["accounts"] == []
    assert "you need the Admin role or the activity audit privilege" in session["denied_reason"]


def test_a_partner_admin_may_open_their_own_and_each_enabled_managed_account() -> None:
    viewer = page_viewer()
    csrf = signed_in(viewer, "partner")
    assert viewer.client.get("/api/session").json()["accounts"] == [
        "partnerco",
        "managed-a",
        "managed-b",
    ]
    answer = viewer.client.get(
        "/api/activity_logs?account_id=managed-b", headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 200
    assert [account for account, _ in viewer.reader.calls] == ["managed-b"]


def test_the_form_export_streams_a_file_for_the_session_with_its_csrf_field() -> None:
    viewer = page_viewer()
    csrf = signed_in(viewer)
    form = {"csrf_token": csrf, "format": "csv", "outcome": "failure"}
    answer = viewer.client.post("/api/activity_logs/export", data=form)
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="audit-log-acme.csv"'
    assert answer.content == b'{"a":1}\n{"a":2}\n'
    ((account, query),) = viewer.reader.calls
    assert account == "acme"
    assert query.format == "csv"
    assert query.filters.outcome == "failure"
    (event,) = viewer.publisher.events
    assert event["action"] == "audit_log.exported"


@pytest.mark.parametrize(
    "form",
    [{"format": "csv"}, {"csrf_token": "nope"}, {"csrf_token": "{csrf}", "x": "{csrf}"}],
    ids=["missing", "wrong", "unknown-parameter"],
)
def test_the_form_export_refuses_without_its_csrf_field_or_with_a_bad_field(
    form: dict[str, str],
) -> None:
    viewer = page_viewer()
    csrf = signed_in(viewer)
    data = {name: value.format(csrf=csrf) for name, value in form.items()}
    answer = viewer.client.post(
        "/api/activity_logs/export", data={**data, "back": "/?outcome=failure"}
    )
    assert answer.status_code in (400, 403)
    assert viewer.reader.calls == []
    # A person's browser posted it: the answer is a page saying why, linking back.
    assert answer.headers["content-type"].startswith("text/html")
    assert "Export refused" in answer.text
    assert 'href="/?outcome=failure"' in answer.text


def test_a_refused_export_form_never_links_elsewhere() -> None:
    viewer = page_viewer()
    signed_in(viewer)
    answer = viewer.client.post("/api/activity_logs/export", data={"back": "//evil.test/<script>"})
    assert answer.status_code == 403
    assert 'href="/"' in answer.text
    assert "evil" not in answer.text


def test_the_form_export_refuses_other_bodies() -> None:
    viewer = page_viewer()
    csrf = signed_in(viewer)
    as_json = viewer.client.post("/api/activity_logs/export", json={"csrf_token": csrf})
    assert as_json.status_code == 415
    assert "application/x-www-form-urlencoded" in as_json.text
    huge = viewer.client.post(
        "/api/activity_logs/export", data={"csrf_token": csrf, "q": "x" * 300_000}
    )
    assert huge.status_code == 413


def test_the_page_has_a_strict_content_security_policy_and_no_framing() -> None:
    viewer = page_viewer()
    answer = viewer.client.get("/")
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cross-origin-opener-policy"] == "same-origin"
    assert "<script" not in re.sub(
        r'<script type="module" src="/static/[\w./-]+"></script>', "", answer.text
    )
    assert not re.search(r"\son\w+=", answer.text)  # no inline event handlers
    api = viewer.client.get("/api/activities")
    assert api.headers["content-security-policy"].startswith("default-src 'none'")


def test_framing_by_listed_origins_makes_the_cookie_cross_site() -> None:
    page = PageServices(
        sessions=SessionCodec(KEY, ttl_s=600),
        sign_ins=SignInLedger(),
        managed_by=lambda partner: frozenset(),
        catalog=load_catalog(),
        embedded=True,
    )
    viewer = fakes.make_viewer(
        FakeVerifier(), FACTS.get, page=page, frame_ancestors="https://app.example.com"
    )
    answer = viewer.client.get("/sign-in?token=sign-in:admin:j1", follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    assert "SameSite=None" in cookie
    assert "Secure" in cookie
    assert "Partitioned" in cookie
    shown = viewer.client.get("/")
    assert shown.headers["content-security-policy"].endswith(
        "frame-ancestors https://app.example.com"
    )
    assert "x-frame-options" not in shown.headers


def test_the_catalog_serves_every_activity_with_its_words() -> None:
    viewer = page_viewer()
    answer = viewer.client.get("/api/activities").json()
    catalog = load_catalog()
    assert [a["action"] for a in answer["activities"]] == [a.action for a in catalog.activities]
    assert {c["id"] for c in answer["categories"]} == {c.id for c in catalog.categories}
    stopped = next(a for a in answer["activities"] if a["action"] == "recipe.stopped")
    assert stopped["description"]


def test_the_page_files_are_served_with_their_types() -> None:
    viewer = page_viewer()
    script = viewer.client.get("/static/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert script.headers["cache-control"] == "no-cache"
    assert viewer.client.get("/static/app.css").headers["content-type"].startswith("text/css")
    assert viewer.client.get("/static/../page.py").status_code == 404


def test_the_page_preloads_every_module_it_has() -> None:
    index = (STATIC_DIR / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/([\w.]+)">', index))
    modules = {path.name for path in STATIC_DIR.glob("*.js")} - {"app.js"}
    assert preloaded == modules, "list each module of viewer/static in index.html"


def test_a_sign_in_form_too_large_or_not_a_form_is_refused_with_a_page() -> None:
    viewer = page_viewer()
    huge = viewer.client.post(
        "/sign-in", data={"token": "sign-in:admin:j1", "pad": "x" * 40_000}, follow_redirects=False
    )
    assert huge.status_code == 413
    assert huge.headers["content-type"].startswith("text/html")
    assert "set-cookie" not in huge.headers
    as_json = viewer.client.post(
        "/sign-in", json={"token": "sign-in:admin:j2"}, follow_redirects=False
    )
    assert as_json.status_code == 415
    assert "Sign-in refused" in as_json.text
