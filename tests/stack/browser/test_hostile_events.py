"""Events are tenant input: markup in a resource name, a user agent, an actor's name, a
detail value or a change is shown as the text it is, never run (no ``window.__xss``, no
alert, no element made of it, no CSP violation)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.stack.browser.page import ViewerPage
from tests.stack.browser.seed import (
    HOSTILE_WORKSPACE,
    XSS_ACTOR,
    XSS_AFTER,
    XSS_AGENT,
    XSS_BEFORE,
    XSS_DETAIL,
    XSS_FIELD,
    XSS_IMG,
    XSS_SCRIPT,
)
from tests.stack.browser.service import Viewer

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.browser]

_INJECTED = """
return document.querySelectorAll(
  'img[src="x"], img[onerror], svg[onload], [onmouseover], iframe, script:not([src])'
).length;
"""


def _assert_nothing_ran(page: ViewerPage) -> None:
    assert page.js("return window.__xss;") is None
    assert page.js(_INJECTED) == 0
    page.assert_clean()


def test_markup_in_events_is_shown_as_text(page: ViewerPage, viewer: Viewer) -> None:
    seed = viewer.seed
    page.sign_in(viewer.token(), f"/?{seed.range_query()}&workspace_id={HOSTILE_WORKSPACE['id']}")
    assert page.settled(since=0).state == "ready"
    hostile = seed.marked_all("hostile-")
    assert set(page.row_ids()) == {e["event_id"] for e in hostile}
    resources = [page.cells(e["event_id"])["resource"] for e in hostile]
    assert any(XSS_IMG in text for text in resources), resources
    assert any(XSS_SCRIPT in text for text in resources), resources
    users = page.cells(seed.marked("hostile-fields")["event_id"])["user"]
    assert XSS_ACTOR["name"] in users or XSS_ACTOR["email"] in users, users
    _assert_nothing_ran(page)

    page.open_event(seed.marked("hostile-agent")["event_id"])
    assert XSS_AGENT in page.text("#detail-request")
    _assert_nothing_ran(page)
    page.el("#detail-close").click()
    page.wait(lambda: not page.look().dialog, "the dialog to close")

    page.open_event(seed.marked("hostile-fields")["event_id"])
    assert XSS_DETAIL in page.text("#detail-fields")
    assert page.changes() == [(XSS_FIELD, XSS_BEFORE, XSS_AFTER)]
    # Hovering the "before" cell would run an onmouseover handler made of it.
    page.el("#detail-changes .c-before").click()
    page.screenshot("detail-hostile-event")
    _assert_nothing_ran(page)


def test_markup_typed_into_the_filters_is_not_run(page: ViewerPage, viewer: Viewer) -> None:
    page.sign_in(viewer.token(), f"/?{viewer.seed.range_query()}")
    assert page.settled(since=0).state == "ready"
    page.set_field("#f-q", XSS_IMG)
    page.apply()
    assert ("q", XSS_IMG) in page.query()
    assert page.field_value("#f-q") == XSS_IMG
    assert set(page.row_ids()) == {viewer.seed.marked("hostile-img")["event_id"]}
    _assert_nothing_ran(page)
    page.open(f"/?{viewer.seed.range_query()}&q={quote(XSS_SCRIPT)}")
    assert page.field_value("#f-q") == XSS_SCRIPT
    _assert_nothing_ran(page)
