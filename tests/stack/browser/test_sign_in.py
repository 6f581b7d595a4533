"""Signing in (docs/viewer-page.md, "Signing in"): the platform's link lands on the page
signed in, a token is exchanged once, an invalid one gets a page that says what to do, the
session cookie is out of scripts' reach, signing out ends it; and the security headers of
the page's answers."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from tests.stack.browser.page import ViewerPage
from tests.stack.browser.seed import ACCOUNT_A
from tests.stack.browser.service import Viewer

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.browser]


def _refused_page(page: ViewerPage) -> str:
    """The plain page of a refused sign-in: not the viewer, and its text."""
    body = page.text("body")
    assert not page.els("#viewer") or not page.shown("#viewer")
    return body.lower()


def test_the_link_lands_on_the_page_signed_in_and_the_cookie_is_http_only(
    page: ViewerPage, viewer: Viewer
) -> None:
    page.sign_in(viewer.token(name="Ada Admin"), f"/?{viewer.seed.range_query()}")
    look = page.settled(since=0)
    assert look.viewer
    assert not look.signed_out
    assert not look.forbidden
    assert look.state == "ready"
    # next= was followed: the range is the one asked for, and the token is not in the URL.
    assert "token" not in page.driver.current_url
    assert dict(page.query())["range"] == "custom"
    assert page.total() == len(viewer.seed.events[ACCOUNT_A])
    cookie = page.driver.get_cookie("auditlog_session")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie.get("sameSite") == "Lax"
    assert cookie["path"] == "/"
    assert "auditlog_session" not in page.js("return document.cookie;")
    page.screenshot("table")
    page.assert_clean()


def test_a_token_is_exchanged_once(page: ViewerPage, viewer: Viewer) -> None:
    token = viewer.token()
    page.sign_in(token)
    assert page.settled(since=0).viewer
    page.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    page.sign_in(token)
    text = _refused_page(page)
    assert "again" in text, text  # what to do: open the audit log again from the platform
    assert page.driver.get_cookie("auditlog_session") is None
    page.screenshot("sign-in-refused-token-used-twice")
    # The refusal is a 401, said in words.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{viewer.url}/sign-in?token={quote(token)}", timeout=30)
    with refused.value as answer:
        assert answer.code == 401
        assert answer.headers.get_content_type() == "text/html"
        assert "again" in answer.read().decode().lower()


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1LTEifQ."],
    ids=["garbage", "unsigned"],
)
def test_an_invalid_token_gets_a_page_that_says_what_to_do(page: ViewerPage, token: str) -> None:
    page.sign_in(token)
    text = _refused_page(page)
    assert "again" in text, text
    assert page.driver.get_cookie("auditlog_session") is None


def test_without_a_session_the_page_says_how_to_sign_in(page: ViewerPage) -> None:
    look = page.open("/")
    assert look.signed_out
    assert not page.shown("#viewer")
    assert page.text("#signed-out").strip()
    page.screenshot("signed-out")
    page.assert_clean()


def test_signing_out_ends_the_session(page: ViewerPage, viewer: Viewer) -> None:
    page.sign_in(viewer.token())
    assert page.settled(since=0).viewer
    page.el("#sign-out").click()
    page.wait(lambda: page.look().signed_out, "the signed-out view after signing out")
    assert page.driver.get_cookie("auditlog_session") is None
    # ...and it stays ended: the page loaded again has no session.
    assert page.open("/").signed_out
    page.assert_clean()


def test_the_api_refuses_a_cookie_without_the_csrf_header(page: ViewerPage, viewer: Viewer) -> None:
    page.sign_in(viewer.token())
    assert page.settled(since=0).viewer
    answers = page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const session = await (await fetch('/api/session')).json();"
        "const without = await fetch('/api/activity_logs?page[size]=1');"
        "const withIt = await fetch('/api/activity_logs?page[size]=1',"
        "  {headers: {'X-CSRF-Token': session.csrf_token}});"
        "done([without.status, (await without.json()).error.code, withIt.status]);"
    )
    assert answers == [403, "csrf_failed", 200]


def _headers(url: str) -> dict[str, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as exc:
        with exc:
            return {k.lower(): v for k, v in exc.headers.items()}


@pytest.mark.parametrize("path", ["/", "/sign-in?token=x"], ids=["page", "refused-sign-in"])
def test_html_answers_carry_the_security_headers(viewer: Viewer, path: str) -> None:
    headers = _headers(viewer.url + path)
    assert headers["content-type"].startswith("text/html")
    policy = {
        part.strip().split(" ", 1)[0]: part.strip()
        for part in headers["content-security-policy"].split(";")
        if part.strip()
    }
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert "unsafe-eval" not in headers["content-security-policy"]
    assert policy["default-src"] == "default-src 'none'"
    assert policy["script-src"] == "script-src 'self'"
    assert policy["style-src"] == "style-src 'self'"
    assert policy["base-uri"] == "base-uri 'none'"
    assert policy["form-action"] == "form-action 'self'"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert headers.get("x-frame-options", "DENY").upper() == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-resource-policy"] == "same-origin"
    assert headers["permissions-policy"]


def test_static_files_are_served_with_their_types_and_nosniff(viewer: Viewer) -> None:
    headers = _headers(f"{viewer.url}/static/app.js")
    assert headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cross-origin-resource-policy"] == "same-origin"


def test_the_sign_in_form_posted_by_the_platform(page: ViewerPage, viewer: Viewer) -> None:
    """``POST /sign-in`` (token and next as form fields, out of the URL), as a platform's
    page submits it into a new window or a frame."""
    page.driver.get("about:blank")
    page.js(
        "const form = document.createElement('form');"
        "form.method = 'POST'; form.action = arguments[0];"
        "for (const [name, value] of [['token', arguments[1]], ['next', arguments[2]]]) {"
        "  const input = document.createElement('input');"
        "  input.type = 'hidden'; input.name = name; input.value = value; form.append(input);"
        "}"
        "document.body.append(form); form.submit();",
        f"{viewer.url}/sign-in",
        viewer.token(),
        f"/?{viewer.seed.range_query()}&outcome=failure",
    )
    page.wait(lambda: page.driver.current_url.startswith(viewer.url + "/?"), "the page")
    look = page.settled(since=0)
    assert look.viewer
    assert ("outcome", "failure") in page.query()
    assert "token" not in page.driver.current_url
    assert page.driver.get_cookie("auditlog_session") is not None
